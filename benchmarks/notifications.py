"""Notification benchmark: cancelling an activity with 10,000 registrants (PostgreSQL).

Measures, in one run:

- time to enqueue: the cancellation's transaction writing 10,000 outbox messages, with its
  commit and the one job published to the broker (goal < 2 s);
- delivery rate: a Celery worker with 2 processes on Redis delivering them through the fake
  HTTP gateway (``tests/fake_sms.py``, its own process), from the first message sent to the
  last (goal >= 200 messages/s);
- duplicates: SMS delivered twice (goal 0), and requests repeated to the gateway;
- beside the fake gateway's own ceiling: 2 client processes posting straight to it.

Usage (from the repository root)::

    .venv/bin/python benchmarks/notifications.py \\
        --postgres-url postgresql://postgres@127.0.0.1:5432/postgres \\
        --redis-url redis://127.0.0.1:6379/14

Figures are printed (not written to RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import requests
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.feeds import create_database, drop_database  # noqa: E402
from benchmarks.machine import cpu_model  # noqa: E402

DEFAULT_URL = os.environ.get(
    "SCIWEEK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DEFAULT_REDIS = os.environ.get("SCIWEEK_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
GATEWAY_KEY = "bench-key"


def start_gateway() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_sms", "--port", "0", "--key", GATEWAY_KEY],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def stats(url: str) -> dict:
    with urllib.request.urlopen(url + "/stats", timeout=10) as response:
        return json.load(response)


def _post_many(url: str, start: int, n: int) -> None:
    session = requests.Session()
    headers = {"Authorization": f"Bearer {GATEWAY_KEY}"}
    for i in range(start, start + n):
        key = f"ceiling-{i}"
        body = {"phone": "13700000000", "text": "【科普报名】活动取消：测试", "id": key}
        session.post(url, json=body, headers={**headers, "Idempotency-Key": key}, timeout=10)


def gateway_ceiling(url: str, n: int = 4000, clients: int = 2) -> float:
    """Messages/s the fake gateway takes from ``clients`` processes posting directly."""
    per = n // clients
    procs = [
        multiprocessing.Process(target=_post_many, args=(url, i * per, per)) for i in range(clients)
    ]
    started = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return per * clients / (time.perf_counter() - started)


def setup(url: str, instance: str, n: int):
    """Schema, one activity with ``n`` confirmed registrants; returns (app, activity id)."""
    from sciweek import create_app
    from sciweek.extensions import db

    os.environ["SCIWEEK_INSTANCE_PATH"] = instance
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
        for statement in (
            "INSERT INTO departments (name, code, former_names) VALUES ('区科协', 'kx', '')",
            "INSERT INTO activities (kind, title, description, venue, audience, capacity,"
            " confirmed_count, waitlist_enabled, status, cancel_reason, sequence,"
            " created_at, updated_at)"
            " VALUES ('outreach', '科普大讲堂', '', '文化礼堂', 'public', NULL, :n, true,"
            " 'published', '', 0, now(), now())",
            "INSERT INTO activity_sessions (activity_id, starts_at, ends_at, note, created_at)"
            " VALUES (1, now() + interval '3 days', now() + interval '3 days 2 hours', '', now())",
        ):
            db.session.execute(text(statement), {"n": n})
        db.session.execute(
            text(
                "INSERT INTO registrations (activity_id, name, phone, status, secret_hash,"
                " short_code, walk_in, created_at, updated_at)"
                " SELECT 1, '报名' || g, '137' || lpad(g::text, 8, '0'), 'confirmed',"
                " md5(g::text) || md5('x' || g::text), lpad(g::text, 6, '0'), false, now(), now()"
                " FROM generate_series(1, :n) g"
            ),
            {"n": n},
        )
        db.session.commit()
    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres-url", default=DEFAULT_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--registrants", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()

    queue = f"sciweek-bench-{uuid.uuid4().hex[:8]}"
    env = {
        "SCIWEEK_BROKER_URL": args.redis_url,
        "SCIWEEK_JOBS_QUEUE": queue,
        "SCIWEEK_SMS_BACKEND": "http",
        "SCIWEEK_SMS_HTTP_KEY": GATEWAY_KEY,
        "SCIWEEK_SMS_QUIET_HOURS": "off",
        "SCIWEEK_SMS_DAILY_CAP": "0",
    }
    tmp = Path(tempfile.mkdtemp(prefix="sciweek-bench-notify-"))
    url = create_database(args.postgres_url)
    gateway, gateway_url = start_gateway()
    ceiling_gateway, ceiling_url = start_gateway()
    worker = None
    try:
        env["SCIWEEK_SMS_HTTP_URL"] = gateway_url + "/send"
        os.environ.update(env)  # the benchmark's own app publishes like the web app
        from sciweek.extensions import db
        from sciweek.manage.services import cancel_activity
        from sciweek.models import Activity

        app = setup(url, str(tmp / "instance"), args.registrants)
        print(f"machine: {cpu_model()}, {os.cpu_count()} cores; load {os.getloadavg()}", flush=True)
        ceiling = gateway_ceiling(ceiling_url + "/send")
        print(f"fake gateway ceiling (2 client processes): {ceiling:.0f} messages/s", flush=True)

        with app.app_context():
            activity = db.session.get(Activity, 1)
            started = time.perf_counter()
            cancel_activity(activity, "场地临时维修，改期另行通知")
            db.session.commit()  # + the dispatch job published after commit
            enqueue = time.perf_counter() - started
            queued = db.session.scalar(text("SELECT count(*) FROM outbox_messages"))
            db.session.rollback()
        print(f"enqueue: {queued} messages in {enqueue:.2f} s (goal < 2 s)", flush=True)

        worker_env = {**os.environ, **env, "SCIWEEK_DATABASE_URL": url}
        worker = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("celery")),
                "-A",
                "sciweek.worker",
                "worker",
                "--concurrency",
                str(args.processes),
                "-Q",
                queue,
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"{queue}@bench",
            ],  # fmt: skip
            cwd=ROOT,
            env=worker_env,
            start_new_session=True,
        )
        print(f"load before delivery {os.getloadavg()}", flush=True)
        deadline = time.monotonic() + 600
        with app.app_context():
            while time.monotonic() < deadline:
                sent = db.session.scalar(
                    text("SELECT count(*) FROM outbox_messages WHERE status = 'sent'")
                )
                db.session.rollback()
                if sent >= queued:
                    break
                time.sleep(0.5)
            first, last, sent = db.session.execute(
                text(
                    "SELECT min(sent_at), max(sent_at), count(*) FROM outbox_messages"
                    " WHERE status = 'sent'"
                )
            ).one()
            by_status = dict(
                db.session.execute(
                    text("SELECT status, count(*) FROM outbox_messages GROUP BY status")
                ).all()
            )
        seconds = (last - first).total_seconds() if sent > 1 else float("nan")
        rate = (sent - 1) / seconds if sent > 1 else 0.0
        received = stats(gateway_url)
        # Each registrant has one message: an SMS beyond one per phone is a duplicate.
        duplicates = received["delivered"] - received["phones"]
        print(
            f"delivery: {sent} sent in {seconds:.1f} s = {rate:.0f} messages/s with "
            f"{args.processes} worker processes (goal >= 200); statuses {by_status}",
            flush=True,
        )
        print(
            f"gateway: {received['requests']} requests, {received['delivered']} SMS to "
            f"{received['phones']} phones, {received['repeated_requests']} repeated requests; "
            f"duplicates delivered: {duplicates} (goal 0)",
            flush=True,
        )
        print(f"rate / gateway ceiling: {rate / ceiling:.2f}; load {os.getloadavg()}", flush=True)
        ok = sent == queued == args.registrants and duplicates == 0
        return 0 if ok else 1
    finally:
        if worker is not None:
            os.killpg(worker.pid, 15)
            worker.wait(30)
        for process in (gateway, ceiling_gateway):
            process.terminate()
            process.wait(10)
        drop_database(args.postgres_url, url)


if __name__ == "__main__":
    raise SystemExit(main())
