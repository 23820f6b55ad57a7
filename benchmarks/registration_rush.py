"""Registration rush: N attempts by C concurrent clients for an activity with P places.

Starts the app under gunicorn (4 workers by default) on PostgreSQL and on SQLite,
and measures, in the same run and with the same client, the trivial /healthz
endpoint as the ceiling. Usage:

    .venv/bin/python benchmarks/registration_rush.py [--attempts 2000] [--concurrency 50]
        [--places 20] [--workers 4] [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Every attempt is a real browser-like POST with its own session cookie and CSRF token
(fetched beforehand, not timed).
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from benchmarks.machine import cpu_model  # noqa: E402
from sciweek import create_app  # noqa: E402
from sciweek.extensions import db  # noqa: E402
from sciweek.models import Activity, Registration  # noqa: E402
from tests.conftest import Factory, PostgresServer, local  # noqa: E402
from tests.live_server import CSRF_RE, LiveServer  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Client:
    """One keep-alive connection per thread, like a phone holding its connection."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method, path, body=None, headers=None):
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                data = response.read()
                return response, data
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt:
                    raise
        raise RuntimeError("unreachable")


def prepare(port: int, activity_id: int, n: int) -> list[tuple[str, str]]:
    """(cookie, csrf token) for each attempt."""

    def one(_):
        client = Client(port)
        response, data = client.request("GET", f"/activities/{activity_id}")
        cookie = next(
            value.split(";")[0]
            for key, value in response.getheaders()
            if key.lower() == "set-cookie" and value.startswith("session=")
        )
        token = CSRF_RE.search(data.decode()).group(1)
        client.conn.close()
        return cookie, token

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(one, range(n)))


def timed_run(
    port: int, jobs: list, concurrency: int, send
) -> tuple[float, list[float], list[int]]:
    latencies: list[float] = []
    codes: list[int] = []
    clients: dict[int, Client] = {}
    import threading

    def work(job):
        me = threading.get_ident()
        client = clients.setdefault(me, Client(port))
        start = time.perf_counter()
        code = send(client, job)
        latencies.append(time.perf_counter() - start)
        codes.append(code)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(work, jobs))
    return time.perf_counter() - started, latencies, codes


def run_backend(name: str, url: str, args, tmp: Path) -> dict:
    os.environ["SCIWEEK_INSTANCE_PATH"] = str(tmp / f"{name}-setup")
    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.create_all()
        activity = Factory().activity(
            title="抢票压测",
            capacity=args.places,
            waitlist_enabled=True,
            sessions=[(local(2099, 6, 1, 9), local(2099, 6, 1, 11))],
        )
        activity_id = activity.id
        db.session.remove()
        db.engine.dispose()
    server = LiveServer(
        url,
        tmp / f"{name}-server",
        workers=args.workers,
        threads=args.threads,
        SCIWEEK_REGISTRATION_RATE_LIMIT="1000000 per minute",
    ).start()
    try:
        port = server.port
        tokens = prepare(port, activity_id, args.attempts)

        def health(client, _job):
            response, _ = client.request("GET", "/healthz")
            return response.status

        ceiling_time, ceiling_lat, _ = timed_run(
            port, range(args.attempts), args.concurrency, health
        )

        def register(client, job):
            n, (cookie, token) = job
            body = urlencode({"csrf_token": token, "name": f"压测{n}", "phone": f"139{n:08d}"})
            response, _ = client.request(
                "POST",
                f"/activities/{activity_id}/register",
                body=body,
                headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"},
            )
            return response.status

        elapsed, latencies, codes = timed_run(
            port, list(enumerate(tokens)), args.concurrency, register
        )
    finally:
        server.stop()
    with app.app_context():
        counts = dict(
            db.session.execute(
                select(Registration.status, func.count())
                .where(Registration.activity_id == activity_id)
                .group_by(Registration.status)
            ).all()
        )
        confirmed_count = db.session.get(Activity, activity_id).confirmed_count
        db.session.remove()
        db.engine.dispose()
    return {
        "backend": name,
        "rps": args.attempts / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "ceiling_rps": args.attempts / ceiling_time,
        "ceiling_p50_ms": statistics.median(ceiling_lat) * 1000,
        "ceiling_p99_ms": percentile(ceiling_lat, 0.99) * 1000,
        "confirmed": counts.get("confirmed", 0),
        "confirmed_count": confirmed_count,
        "waitlisted": counts.get("waitlisted", 0),
        "errors": sum(1 for c in codes if c >= 500 or c == 0),
        "other": sorted({c for c in codes if c not in (303,)}),
    }


def machine() -> str:
    cpu = cpu_model()
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--places", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per worker (gthread); 1 = sync workers"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "SCIWEEK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(
        f"{args.attempts} attempts, {args.concurrency} concurrent clients, "
        f"{args.places} places, gunicorn {args.workers} workers x {args.threads} threads"
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        server = PostgresServer(args.postgres)
        pg_url = server.create_database()
        try:
            results.append(run_backend("postgresql", pg_url, args, Path(tmp)))
        finally:
            server.drop_database(pg_url)
        if not args.skip_sqlite:
            results.append(
                run_backend("sqlite", f"sqlite:///{Path(tmp) / 'rush.sqlite3'}", args, Path(tmp))
            )
    header = (
        f"{'backend':<11} {'reg/s':>7} {'p50 ms':>7} {'p99 ms':>7} | {'ceiling/s':>9} "
        f"{'p50 ms':>7} {'p99 ms':>7} | {'ratio':>5} | confirmed waitlisted errors"
    )
    print(header)
    ok = True
    for r in results:
        print(
            f"{r['backend']:<11} {r['rps']:7.0f} {r['p50_ms']:7.1f} {r['p99_ms']:7.1f} | "
            f"{r['ceiling_rps']:9.0f} {r['ceiling_p50_ms']:7.1f} {r['ceiling_p99_ms']:7.1f} | "
            f"{r['rps'] / r['ceiling_rps']:5.2f} | {r['confirmed']:9d} {r['waitlisted']:10d} "
            f"{r['errors']:6d}  other codes: {r['other']}"
        )
        ok &= r["confirmed"] == args.places == r["confirmed_count"] and r["errors"] == 0
    print("capacity held" if ok else "CAPACITY VIOLATED OR ERRORS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
