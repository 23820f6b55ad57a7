"""Registration rush, driven by wrk: N attempts by C concurrent clients for P places.

    .venv/bin/python benchmarks/registration_rush.py [--attempts 2000] [--concurrency 50]
        [--places 20] [--workers 4] [--threads 1] [--skip-sqlite]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Needs wrk (Debian package ``wrk``), a load generator written in C; the Python-thread
client used before topped out near 1,300 requests/s on a 2-core machine, below the server.

For PostgreSQL, then SQLite, starts the app under gunicorn (4 sync workers by default) and:

1. before anything is timed, fetches the activity page N times with Python, each time
   keeping the new session cookie and the form's CSRF token, and writes one line per
   attempt (cookie, token, name, phone) to a file;
2. measures the ceilings ``GET /healthz`` (no database) and ``GET /healthz/db`` (one
   database round trip) with wrk against the same server and with the same connections;
3. runs the rush: wrk with ``benchmarks/lua/register.lua`` sends every line exactly once
   as a form POST, each wrk thread its own lines.

wrk runs for a duration, not a number of requests, so the Lua script counts: wrk runs one
thread per connection, each thread sends its own lines once, in order, and says on stdout
when all of them are answered; this script then ends wrk. A connection whose lines are
done sends ``GET /healthz`` until then ("fillers", at most the last moments of the rush)
rather than sit idle: a gunicorn sync worker that accepted the connection wrk reopens after
every answer would wait on an idle one and serve nobody else. Fillers are left out of every
registration figure: with one connection per thread each answer belongs to the one request
in flight, so the script times each registration itself (request written to answer read)
and p50/p99 are over the 2,000 registrations only. Registrations/s is the answered
registrations divided by the time from the first registration request to the last
registration answer (a monotonic clock read in the Lua script), not wrk's own duration.

Afterwards it checks in the database that exactly P are confirmed (and the activity's
counter agrees), counts the waitlisted, and treats as errors any 5xx, any status other
than 303, any socket error and any attempt left unanswered. The load average before each
wrk run is printed: other work on the machine lowers every figure. Exits 1 on any error.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from benchmarks import wrk  # noqa: E402
from benchmarks.machine import cpu_model  # noqa: E402
from sciweek import create_app  # noqa: E402
from sciweek.extensions import db  # noqa: E402
from sciweek.models import Activity, Registration  # noqa: E402
from tests.conftest import Factory, PostgresServer, local  # noqa: E402
from tests.live_server import CSRF_RE, LiveServer  # noqa: E402


def fetch_form(port: int, activity_id: int) -> tuple[str, str]:
    """A new visitor: the session cookie and CSRF token of one fresh activity page."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", f"/activities/{activity_id}")
        response = conn.getresponse()
        page = response.read().decode()
        cookie = next(
            value.split(";")[0]
            for key, value in response.getheaders()
            if key.lower() == "set-cookie" and value.startswith("session=")
        )
        return cookie, CSRF_RE.search(page).group(1)
    finally:
        conn.close()


def write_attempts(port: int, activity_id: int, n: int, path: Path) -> None:
    """One line per attempt for register.lua: cookie, token, name, phone (tab-separated)."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        forms = list(pool.map(lambda _: fetch_form(port, activity_id), range(n)))
    with path.open("w", encoding="ascii") as fh:
        for i, (cookie, token) in enumerate(forms):
            fh.write(f"{cookie}\t{quote(token, safe='')}\t{quote(f'压测{i}')}\t139{i:08d}\n")


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
        attempts_file = tmp / f"{name}-attempts.txt"
        write_attempts(server.port, activity_id, args.attempts, attempts_file)
        print(f"{name}: {args.attempts} forms fetched (not timed)", flush=True)
        ceilings = {}
        for path in ("/healthz", "/healthz/db"):
            ceilings[path] = wrk.run(
                f"GET {path}",
                server.url + path,
                "get.lua",
                connections=args.concurrency,
                duration_s=args.ceiling_duration,
                threads=args.concurrency,
            )
            print(
                f"{name}: GET {path}: {ceilings[path].rps:.0f}/s "
                f"(load before: {ceilings[path].load_before})",
                flush=True,
            )
        rush = wrk.run(
            "registrations",
            server.url,
            "register.lua",
            connections=args.concurrency,
            duration_s=args.max_duration,
            script_args=(attempts_file, args.concurrency, activity_id),
            stop_when_threads_finish=True,
            threads=args.concurrency,
        )
        print(
            f"{name}: rush done (load before: {rush.load_before}); registration statuses "
            f"{rush.statuses}, {rush.counters.get('fillers_sent', 0)} fillers",
            flush=True,
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

    answered = sum(rush.statuses.values())
    started = rush.counters.get("min_first_request_us")
    ended = rush.counters.get("max_last_answer_us")
    elapsed = (ended - started) / 1e6 if started and ended else float("nan")
    problems = [f"{name} {run.label}: {p}" for run in ceilings.values() for p in run.problems()]
    problems += [
        f"{name} registrations: {p}" for p in rush.problems(expected=303, answers=args.attempts)
    ]
    if answered != args.attempts or rush.counters.get("attempts_sent") != args.attempts:
        problems.append(
            f"{name}: {rush.counters.get('attempts_sent')} attempts sent, {answered} answered, "
            f"{args.attempts} wanted"
        )
    if rush.counters.get("registrations_lost"):
        problems.append(f"{name}: {rush.counters['registrations_lost']} registrations lost")
    confirmed = counts.get("confirmed", 0)
    if not confirmed == confirmed_count == args.places:
        problems.append(
            f"{name}: {confirmed} confirmed, counter {confirmed_count}, {args.places} places"
        )
    return {
        "backend": name,
        "rps": answered / elapsed,
        "elapsed": elapsed,
        "p50_ms": rush.p50_ms,
        "p99_ms": rush.p99_ms,
        "ceilings": ceilings,
        "rush": rush,
        "confirmed": confirmed,
        "waitlisted": counts.get("waitlisted", 0),
        "errors": sum(n for code, n in rush.statuses.items() if code >= 500)
        + rush.socket_errors
        + (args.attempts - answered),
        "other": {code: n for code, n in rush.statuses.items() if code != 303},
        "problems": problems,
    }


def machine() -> str:
    cpu = cpu_model()
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50, help="wrk connections")
    parser.add_argument("--places", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per worker (gthread); 1 = sync workers"
    )
    parser.add_argument("--ceiling-duration", type=float, default=10.0, help="seconds per ceiling")
    parser.add_argument(
        "--max-duration", type=float, default=120.0, help="give up on the rush after this long"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "SCIWEEK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    if args.attempts < args.concurrency:
        parser.error("--attempts must be at least --concurrency (one wrk thread per connection)")
    server_kind = (
        f"{args.workers} workers × {args.threads} threads (gthread)"
        if args.threads > 1
        else f"{args.workers} sync workers"
    )
    print(f"machine: {machine()}")
    print(f"load generator: {wrk.wrk_version()}, one thread per connection, benchmarks/lua/*.lua")
    print(
        f"{args.attempts} attempts, {args.concurrency} connections, {args.places} places, "
        f"gunicorn {server_kind}"
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
    print()
    print(
        f"{'backend':<11} {'reg/s':>6} {'p50 ms':>7} {'p99 ms':>7} | {'/healthz':>8} "
        f"{'/healthz/db':>11} | {'÷ db':>5} {'÷ bare':>6} | confirmed waitlisted errors "
        "| load average before rush"
    )
    problems = []
    for r in results:
        bare = r["ceilings"]["/healthz"].rps
        with_db = r["ceilings"]["/healthz/db"].rps
        print(
            f"{r['backend']:<11} {r['rps']:6.0f} {r['p50_ms']:7.1f} {r['p99_ms']:7.1f} | "
            f"{bare:8.0f} {with_db:11.0f} | {r['rps'] / with_db:5.2f} {r['rps'] / bare:6.2f} | "
            f"{r['confirmed']:9d} {r['waitlisted']:10d} {r['errors']:6d} | "
            f"{r['rush'].load_before}" + (f"  other statuses: {r['other']}" if r["other"] else "")
        )
        problems += r["problems"]
    spans = " / ".join(f"{r['elapsed']:.2f}" for r in results)
    print(f"(rates over {spans} s: from the first registration request to the last answer)")
    if problems:
        print("FAILED:", *problems, sep="\n  ")
        return 1
    print(f"capacity held: exactly {args.places} confirmed on every database, no errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
