"""Check-in API throughput and latency on PostgreSQL under gunicorn, against a ceiling.

    .venv/bin/python benchmarks/checkin.py [--postgres-url URL] [--workers 2] [--clients 50]

Creates a throw-away PostgreSQL database (dropped afterwards), seeds one activity with
registrations and a checker's API token, starts gunicorn, and measures in the same run:

1. ceiling: ``GET /healthz`` (a trivial view of the same server) with N concurrent clients;
2. scans: ``POST /api/v1/checkins`` with N concurrent scanners, a mix of new check-ins
   and repeats (already checked in), each with its own nonce;
3. paced: N scanners each scanning once per second (a busy door), for latency at a
   realistic load rather than at saturation.

Prints the numbers and writes benchmarks/RESULTS_checkin.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import cpu_model  # noqa: E402


def psycopg_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed(database_url: str, registrations: int) -> tuple[int, str, list[str]]:
    """Schema, one activity with confirmed registrations, a checker and their token."""
    from sciweek import create_app
    from sciweek.checkin.services import create_api_token
    from sciweek.extensions import db
    from sciweek.models import Activity, ActivitySession, Department, Registration, User, utcnow
    from sciweek.registration.tickets import hash_secret, new_secret

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        db.create_all()
        department = Department(code="bench", name="基准测试部门")
        now = utcnow()
        activity = Activity(
            kind="outreach",
            title="基准测试活动",
            status="published",
            departments=[department],
            confirmed_count=registrations,
            sessions=[ActivitySession(starts_at=now, ends_at=now + timedelta(hours=3))],
        )
        checker = User(username="bench-checker", role="checker", display_name="bench")
        checker.set_password(secrets.token_urlsafe(12))
        checker.assigned_activities.append(activity)
        db.session.add_all([activity, checker])
        db.session.flush()
        secrets_list = []
        rows = []
        alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
        codes = set()
        for n in range(registrations):
            secret = new_secret()
            secrets_list.append(secret)
            code = "".join(random.choice(alphabet) for _ in range(6))
            while code in codes:
                code = "".join(random.choice(alphabet) for _ in range(6))
            codes.add(code)
            rows.append(
                {
                    "activity_id": activity.id,
                    "name": f"参与者{n}",
                    "phone": f"138{n:08d}",
                    "status": "confirmed",
                    "secret_hash": hash_secret(secret),
                    "short_code": code,
                    "walk_in": False,
                    "created_at": now,
                    "updated_at": now,
                    "confirmed_at": now,
                }
            )
        db.session.execute(Registration.__table__.insert(), rows)
        _token, raw = create_api_token(checker, "bench")
        db.session.commit()
        activity_id = activity.id
        db.session.remove()
        db.engine.dispose()
    return activity_id, raw, secrets_list


class Gunicorn:
    def __init__(self, database_url: str, instance: Path, workers: int, threads: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "SCIWEEK_DATABASE_URL": database_url,
            "SCIWEEK_INSTANCE_PATH": str(instance),
            "SCIWEEK_BASE_URL": self.url,
        }
        args = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}"]
        args += ["--workers", str(workers), "--log-level", "warning"]
        if threads > 1:
            args += ["--worker-class", "gthread", "--threads", str(threads)]
        args += ["--backlog", "2048", "sciweek:create_app()"]
        self.args, self.env, self.instance = args, env, instance
        self.process: subprocess.Popen | None = None

    def __enter__(self):
        self.instance.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.args, cwd=ROOT, env=self.env, start_new_session=True)
        for _ in range(150):
            try:
                if requests.get(self.url + "/healthz", timeout=1).text == "ok":
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def __exit__(self, *exc):
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=20)


def run_closed_loop(clients: int, duration: float, make_request) -> tuple[list[float], int, float]:
    """``clients`` threads sending back to back for ``duration`` seconds."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start_barrier = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(i):
        http = requests.Session()
        start_barrier.wait()
        while time.perf_counter() < stop_at[0]:
            t0 = time.perf_counter()
            ok = make_request(http)
            latencies[i].append(time.perf_counter() - t0)
            if not ok:
                errors[i] += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + duration
    t_start = time.perf_counter()
    start_barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t_start
    return [x for per in latencies for x in per], sum(errors), elapsed


def run_paced(clients: int, duration: float, interval: float, make_request):
    """``clients`` scanners, each sending one request every ``interval`` seconds."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    t_end = time.perf_counter() + duration

    def worker(i):
        http = requests.Session()
        next_at = time.perf_counter() + random.random() * interval
        while next_at < t_end:
            time.sleep(max(0.0, next_at - time.perf_counter()))
            t0 = time.perf_counter()
            if not make_request(http):
                errors[i] += 1
            latencies[i].append(time.perf_counter() - t0)
            next_at += interval

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x for per in latencies for x in per], sum(errors), duration


def summary(name: str, latencies: list[float], errors: int, elapsed: float) -> dict:
    ordered = sorted(latencies)

    def pct(p):
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0

    return {
        "name": name,
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "mean": statistics.fmean(ordered) * 1000 if ordered else 0,
    }


def machine_info() -> str:
    cpu = cpu_model()
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        mem = "?"
    engine = create_engine(psycopg_url(os.environ["_BENCH_ADMIN_URL"]))
    with engine.connect() as conn:
        pg = conn.execute(text("SHOW server_version")).scalar()
    engine.dispose()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem} RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, PostgreSQL {pg}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "SCIWEEK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="A server where a throw-away database may be created.",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="gthread threads per worker")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--registrations", type=int, default=20000)
    parser.add_argument("--repeat-share", type=float, default=0.3)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "RESULTS_checkin.md"))
    args = parser.parse_args()
    os.environ["_BENCH_ADMIN_URL"] = args.postgres_url

    admin_url = make_url(psycopg_url(args.postgres_url))
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"sciweek_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = admin_url.set(database=name).render_as_string(hide_password=False)
    instance = Path(tempfile.mkdtemp(prefix=name))
    # Seeding and the server share this instance folder (and its generated secret key),
    # and nothing is written into the project's own instance folder.
    os.environ["SCIWEEK_INSTANCE_PATH"] = str(instance)
    try:
        activity_id, token, ticket_secrets = seed(database_url, args.registrations)
        headers = {"Authorization": f"Bearer {token}"}
        fresh = iter(ticket_secrets)
        used: list[str] = []
        lock = threading.Lock()
        results_seen: dict[str, int] = {}

        def scan(http: requests.Session) -> bool:
            with lock:
                repeat = used and random.random() < args.repeat_share
                secret = random.choice(used) if repeat else next(fresh, None)
                if secret is None:
                    secret = random.choice(used)
                elif not repeat:
                    used.append(secret)
            body = {"code": secret, "activity_id": activity_id, "nonce": uuid.uuid4().hex}
            response = http.post(base + "/api/v1/checkins", json=body, headers=headers)
            if response.status_code != 200:
                return False
            result = response.json()["result"]
            with lock:
                results_seen[result] = results_seen.get(result, 0) + 1
            return result in ("ok", "already_checked_in")

        def health(http: requests.Session) -> bool:
            return http.get(base + "/healthz").status_code == 200

        with Gunicorn(database_url, instance, args.workers, args.threads) as server:
            base = server.url
            # Warm-up: imports, connection pools.
            run_closed_loop(8, 2.0, health)
            run_closed_loop(8, 2.0, scan)
            ceiling = summary(
                "GET /healthz (ceiling)", *run_closed_loop(args.clients, args.duration, health)
            )
            scans = summary(
                "POST /api/v1/checkins", *run_closed_loop(args.clients, args.duration, scan)
            )
            paced = summary(
                "POST /api/v1/checkins, 1 scan/s per scanner",
                *run_paced(args.clients, args.duration, 1.0, scan),
            )
        ratio = scans["rps"] / ceiling["rps"]
        info = machine_info()
        lines = [
            "# Check-in API benchmark",
            "",
            f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} with `benchmarks/checkin.py`"
            f" (`--workers {args.workers} --threads {args.threads} --clients {args.clients}"
            f" --duration {args.duration:g}`).",
            "",
            f"Machine: {info}. Server and load generator share the machine.",
            f"Server: gunicorn, {args.workers} workers × {args.threads} threads (gthread), "
            f"one activity with {args.registrations} registrations on a throw-away database.",
            f"Scans: {int(args.repeat_share * 100)}% repeats of tickets already scanned, the rest "
            "new check-ins; each scan has its own nonce and is written to the scan log.",
            "",
            "| load | requests | errors | req/s | p50 ms | p99 ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for row in (ceiling, scans, paced):
            lines.append(
                f"| {row['name']} | {row['requests']} | {row['errors']} | {row['rps']:.0f} "
                f"| {row['p50']:.1f} | {row['p99']:.1f} |"
            )
        lines += [
            "",
            f"Scans/s ÷ ceiling: **{ratio:.2f}** (goal ≥ 0.4).",
            f"Results seen: {', '.join(f'{k} {v}' for k, v in sorted(results_seen.items()))}.",
            "",
            "The first two rows are closed loops (each client sends its next request as soon as",
            "the previous answer arrives), so their latency is mostly queueing at saturation:",
            "with N clients, latency ≈ N ÷ throughput. The paced row is a busy door: every",
            "scanner scans once a second, which is faster than people walk through a door.",
            "",
        ]
        report = "\n".join(lines)
        print(report)
        Path(args.output).write_text(report, encoding="utf-8")
    finally:
        admin.dispose()
        with create_engine(admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
