"""Check-in API throughput and latency on PostgreSQL under gunicorn, driven by wrk.

    .venv/bin/python benchmarks/checkin.py [--worker-classes sync,gthread] [--workers 2]
        [--connections 50,20] [--duration 15] [--postgres-url URL]

Needs wrk (Debian package ``wrk``): a load generator written in C. The Python-thread
client this script used before tops out near 1,300 requests/s on a 2-core machine, so its
ceiling was the client's, not the server's, and scans/s ÷ ceiling flattered.

Creates a throw-away PostgreSQL database (dropped afterwards), seeds one activity with
registrations and a checker's API token, and for each gunicorn worker class (2 workers
each) starts gunicorn and measures, against that one server, for each number of
connections:

1. ``GET /healthz``: the ceiling for any request (no database);
2. ``GET /healthz/db``: the ceiling for a request that makes one database round trip;
3. ``POST /api/v1/checkins`` back to back (``benchmarks/lua/checkin.lua``): every wrk
   thread scans its own slice of never-scanned tickets (read from a file this script
   writes), 30 % of scans repeat a ticket already scanned, every scan has its own nonce
   and a Bearer token;

then a paced row: each of 50 connections scans about once a second (a busy door), for
latency at a realistic load rather than at saturation. wrk paces with the Lua ``delay()``
hook, which waits after wrk has opened the next connection; a sync worker (which closes
the connection after every answer) accepts that idle connection and waits on it, serving
nobody else meanwhile, so with sync workers the paced row measures that wait too. gunicorn
27's gthread worker did the same for up to 5 s per new connection, one thread each, which
was the paced rows' 0.3-0.7 s p99; gunicorn.conf.py now leaves such a connection to the
worker's poller. Behind nginx, as deployed, nginx buffers whole requests and no worker
waits on a client.

Every row records how wrk's connections sat on the two workers halfway through the run
(``per worker``, read from /proc): with all of them on one worker one core idles and that
row's figure halves. gunicorn.conf.py gives each worker its own socket so that the kernel
spreads them; before it, splits of 50/0 made the `/healthz/db` ceiling move 1,010-3,027.

Every row also records where the machine's CPU time went, in milliseconds per answered
request (``CPU ms per request``, from /proc): gunicorn's processes, PostgreSQL's processes,
and the rest (wrk, the kernel's network work, anything else). On a CPU-bound run (idle
near 0 %) requests/s is about the cores' time divided by their sum, so a ratio between two
rows is the ratio of what their requests cost, and the per-part difference says where a
scan's extra cost is spent.

All figures are wrk's: requests/s over the run, p50/p99 from its latency histogram
(``--latency``; wrk 4.1 corrects closed-loop latencies for coordinated omission). After
each worker class the script checks, from the database, that every run was exactly-once:
the check-ins of the tickets a run scanned equal the distinct tickets in its scans (found
by their nonces in the scan log), each announced ``ok`` once; and that wrk saw only
``200`` answers and no socket errors. Any failure is printed and the script exits 1
without writing the results file. The load average before each wrk run is printed, as
other work on the machine lowers every figure.

Prints the report and writes it to benchmarks/RESULTS_checkin.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import secrets
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, distinct, func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import wrk  # noqa: E402
from benchmarks.machine import cpu_model  # noqa: E402
from tests.live_server import LiveServer  # noqa: E402

PACE_MS = 1000  # a door: one scan a second per scanner
BACK_TO_BACK = "POST /api/v1/checkins, back to back"
PACED = "POST /api/v1/checkins, ~1 scan/s per scanner"
PACED_CEILING = "GET /healthz/db, ~1 request/s per connection"


def paced_tickets(args) -> int:
    # Waits of 0.5-1.5 s: at most 2 scans a second per connection, plus a margin.
    return int(args.paced_connections * args.duration * 2.5) + 100


def psycopg_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def seed(database_url: str, registrations: int) -> tuple[int, str, list[str]]:
    """Schema, one activity with confirmed registrations, a checker and their token."""
    from sciweek import create_app
    from sciweek.checkin.services import create_api_token
    from sciweek.extensions import db
    from sciweek.models import Activity, ActivitySession, Department, Registration, User, utcnow
    from sciweek.registration.tickets import new_secret
    from sciweek.tokens import hash_secret

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


@dataclass
class ScanRun:
    """One wrk run of scans: its figures, and what the database says afterwards."""

    wrk: wrk.WrkRun
    nonce_prefix: str
    checks: dict = field(default_factory=dict)


class Tickets:
    """Hands each scan run its own never-scanned tickets, through a file wrk's Lua reads."""

    def __init__(self, secrets_list: list[str], folder: Path):
        self.unused = list(secrets_list)
        self.folder = folder

    def file_for(self, count: int, name: str) -> Path:
        if count > len(self.unused):
            raise SystemExit(
                f"FAILED: {count} tickets wanted for {name}, {len(self.unused)} left: "
                "raise --tickets-per-run"
            )
        chunk, self.unused = self.unused[:count], self.unused[count:]
        path = self.folder / f"tickets-{name}.txt"
        path.write_text("\n".join(chunk) + "\n", encoding="ascii")
        return path


@dataclass
class Door:
    """Scans against one server: each run gets its own tickets and nonce prefix."""

    url: str
    tickets: Tickets
    activity_id: int
    token: str
    repeat_share: float

    def scan(
        self, label: str, count: int, connections: int, duration: float, pace_ms: int = 0, **kw
    ):
        prefix = f"b{uuid.uuid4().hex[:10]}"
        tickets_file = self.tickets.file_for(count, prefix)
        run = wrk.run(
            label,
            self.url,
            "checkin.lua",
            connections=connections,
            duration_s=duration,
            script_args=(
                tickets_file,
                min(wrk.THREADS, connections),
                self.activity_id,
                self.token,
                prefix,
                self.repeat_share,
                pace_ms,
            ),
            **kw,
        )
        return ScanRun(run, prefix)


def verify_exactly_once(engine, scan: ScanRun) -> list[str]:
    """Compare the database with what wrk saw, for the scans of one run."""
    from sciweek.models import CheckIn, ScanLog

    log, checkins = ScanLog.__table__, CheckIn.__table__
    mine = log.c.nonce.like(f"{scan.nonce_prefix}-%")
    with engine.connect() as conn:
        logged, distinct_scanned = conn.execute(
            select(func.count(), func.count(distinct(log.c.registration_id))).where(mine)
        ).one()
        # Plain result names ("ok"), not the enum's repr, in the report.
        results = {
            getattr(result, "value", result): n
            for result, n in conn.execute(
                select(log.c.result, func.count()).where(mine).group_by(log.c.result)
            ).all()
        }
        live_checkins = conn.execute(
            select(func.count())
            .select_from(checkins)
            .where(
                checkins.c.registration_id.in_(select(log.c.registration_id).where(mine)),
                checkins.c.undone_at.is_(None),
            )
        ).scalar()
    run = scan.wrk
    seen = run.counters.get("distinct_tickets_answered", 0)
    scan.checks = {
        "scans logged": logged,
        "distinct tickets scanned": distinct_scanned,
        "check-ins": live_checkins,
        "results logged": results,
        "distinct tickets wrk saw answered": seen,
    }
    problems = []
    if live_checkins != distinct_scanned:
        problems.append(
            f"{live_checkins} check-ins for {distinct_scanned} distinct tickets scanned"
        )
    if results.get("ok", 0) != live_checkins:
        problems.append(f"{results.get('ok', 0)} 'ok' answers logged for {live_checkins} check-ins")
    if set(results) - {"ok", "already_checked_in"}:
        problems.append(f"unexpected results logged: {results}")
    # Scans in flight when wrk stopped reach the server but not wrk: at most one per connection.
    if not run.requests <= logged <= run.requests + run.connections:
        problems.append(f"{logged} scans logged for {run.requests} answered by wrk")
    if not seen <= live_checkins <= seen + run.connections:
        problems.append(f"{live_checkins} check-ins for {seen} distinct tickets wrk saw answered")
    if run.counters.get("tickets_exhausted"):
        problems.append(
            f"ran out of unused tickets {run.counters['tickets_exhausted']} times "
            "(raise --tickets-per-run)"
        )
    unreadable = {k: v for k, v in run.counters.items() if k.startswith("result_")}
    if set(unreadable) - {"result_ok", "result_already_checked_in"}:
        problems.append(f"answers wrk saw: {unreadable}")
    return [f"{run.label}: {p}" for p in problems + run.problems()]


def machine_info(admin_url) -> str:
    cpu = cpu_model()
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        mem = "?"
    engine = create_engine(admin_url)
    with engine.connect() as conn:
        pg = conn.execute(text("SHOW server_version")).scalar()
    engine.dispose()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {mem} RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, PostgreSQL {pg}"
    )


def server_label(worker_class: str, workers: int, threads: int) -> str:
    if worker_class == "gthread":
        return f"{workers} workers × {threads} threads (gthread)"
    return f"{workers} sync workers"


def measure_worker_class(worker_class, args, database_url, instance, tickets, activity_id, token):
    threads = args.threads if worker_class == "gthread" else 1
    label = server_label(worker_class, args.workers, threads)
    print(f"\n== gunicorn {label}", flush=True)
    server = LiveServer(
        database_url, instance / worker_class, workers=args.workers, threads=threads
    )
    rows: list[wrk.WrkRun] = []
    scans: list[ScanRun] = []

    def report(run):
        print(
            f"  {run.label:<44} c={run.connections:<3} {run.rps:8.0f}/s  p50 {run.p50_ms:7.1f} ms"
            f"  p99 {run.p99_ms:7.1f} ms  per worker {split_text(run)}"
            f"  (load before: {run.load_before})",
            flush=True,
        )

    split = {
        "connections_per_worker": server.connections_per_worker,
        "server_pids": server.server_pids,
    }

    with server:
        door = Door(server.url, tickets, activity_id, token, args.repeat_share)
        # Warm-up: imports, connection pools, caches.
        wrk.run("warm-up", server.url + "/healthz/db", "get.lua", connections=8, duration_s=2)
        scans.append(door.scan("warm-up scans", args.tickets_per_run // 4, 8, 2))
        for connections in args.connections:
            for path in ("/healthz", "/healthz/db"):
                run = wrk.run(
                    f"GET {path}",
                    server.url + path,
                    "get.lua",
                    connections=connections,
                    duration_s=args.duration,
                    **split,
                )
                rows.append(run)
                report(run)
            scans.append(
                door.scan(BACK_TO_BACK, args.tickets_per_run, connections, args.duration, **split)
            )
            rows.append(scans[-1].wrk)
            report(scans[-1].wrk)
        # The paced ceiling: the same pace and connections on a single database round trip,
        # so the paced scans' tail can be told apart from the machine's and the server's own.
        run = wrk.run(
            PACED_CEILING,
            server.url + "/healthz/db",
            "get.lua",
            connections=args.paced_connections,
            duration_s=args.duration,
            script_args=(PACE_MS,),
            **split,
        )
        rows.append(run)
        report(run)
        scans.append(
            door.scan(
                PACED,
                paced_tickets(args),
                args.paced_connections,
                args.duration,
                pace_ms=PACE_MS,
                **split,
            )
        )
        rows.append(scans[-1].wrk)
        report(scans[-1].wrk)
    # gunicorn has stopped: every scan that reached it has been answered and written.
    engine = create_engine(psycopg_url(database_url))
    problems = [p for scan in scans for p in verify_exactly_once(engine, scan)]
    for run in rows:
        if run.label.startswith("GET"):
            problems += [f"{run.label} (c={run.connections}): {p}" for p in run.problems()]
    engine.dispose()
    return label, rows, scans, problems


def split_text(run: wrk.WrkRun) -> str:
    return "/".join(map(str, run.split)) if run.split else "?"


def table(label: str, rows: list[wrk.WrkRun], scans: list[ScanRun]) -> list[str]:
    lines = [
        f"### gunicorn {label}",
        "",
        "| load | connections | per worker | requests | req/s | p50 ms | p99 ms | non-2xx "
        "| socket errors | CPU ms per request: server / database / rest | CPU idle "
        "| load average before |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for run in rows:
        non_2xx = sum(n for code, n in run.statuses.items() if not 200 <= code < 300)
        lines.append(
            f"| {run.label} | {run.connections} | {split_text(run)} | {run.requests} "
            f"| {run.rps:,.0f} "
            f"| {run.p50_ms:.1f} | {run.p99_ms:.1f} | {non_2xx} | {run.socket_errors} "
            f"| {run.cpu.text() if run.cpu else '?'} "
            f"| {f'{run.cpu.idle:.0%}' if run.cpu else '?'} | {run.load_before} |"
        )
    lines.append("")
    by_key = {(r.label, r.connections): r for r in rows}
    for run in rows:
        if run.label != BACK_TO_BACK:
            continue
        bare = by_key[("GET /healthz", run.connections)]
        db_ceiling = by_key[("GET /healthz/db", run.connections)]
        lines.append(
            f"- {run.connections} connections: scans/s ÷ `/healthz/db` = "
            f"**{run.rps / db_ceiling.rps:.2f}**, ÷ `/healthz` = **{run.rps / bare.rps:.2f}**"
        )
        if run.cpu and db_ceiling.cpu:
            lines.append(
                f"  - CPU a scan costs beyond a `/healthz/db` request: server "
                f"{run.cpu.server - db_ceiling.cpu.server:+.2f} ms, database "
                f"{run.cpu.database - db_ceiling.cpu.database:+.2f} ms, rest "
                f"{run.cpu.rest - db_ceiling.cpu.rest:+.2f} ms"
            )
    paced = next((r for r in rows if r.label == PACED), None)
    paced_ceiling = next((r for r in rows if r.label == PACED_CEILING), None)
    if paced and paced_ceiling:
        lines.append(
            f"- paced, {paced.connections} connections: scan p50 / p99 {paced.p50_ms:.1f} / "
            f"{paced.p99_ms:.1f} ms beside one database round trip at the same pace "
            f"{paced_ceiling.p50_ms:.1f} / {paced_ceiling.p99_ms:.1f} ms"
        )
    lines.append("")
    lines.append("Exactly-once, from the database after the server stopped:")
    lines.append("")
    for scan in scans:
        c = scan.checks
        lines.append(
            f"- {scan.wrk.label} (c={scan.wrk.connections}): {c['scans logged']} scans logged, "
            f"{c['distinct tickets scanned']} distinct tickets, {c['check-ins']} check-ins, "
            f"results {dict(sorted(c['results logged'].items()))}; wrk saw "
            f"{c['distinct tickets wrk saw answered']} distinct tickets answered"
        )
    lines.append("")
    return lines


def settle(database_url: str) -> None:
    """VACUUM ANALYZE and CHECKPOINT the freshly seeded database, so that autovacuum and
    the checkpointer do not run during the measurements (they took a core from some
    ceiling runs: `/healthz/db` measured 1,010-3,027 req/s in three runs of one hour)."""
    engine = create_engine(psycopg_url(database_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
            conn.execute(text("CHECKPOINT"))
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "SCIWEEK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="A server where a throw-away database may be created.",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--worker-classes",
        default="sync,gthread",
        type=lambda s: [c.strip() for c in s.split(",") if c.strip()],
        help="gunicorn worker classes to measure, one server each (sync, gthread)",
    )
    parser.add_argument("--threads", type=int, default=8, help="threads per gthread worker")
    parser.add_argument(
        "--connections",
        default="50,20",
        type=lambda s: [int(c) for c in s.split(",")],
        help="wrk connections (concurrent clients), one set of rows each",
    )
    parser.add_argument("--paced-connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per wrk run")
    parser.add_argument(
        "--tickets-per-run",
        type=int,
        default=15000,
        help="unused tickets set aside for each back-to-back scan run (enough for 1,400 scans/s)",
    )
    parser.add_argument("--repeat-share", type=float, default=0.3)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "RESULTS_checkin.md"))
    args = parser.parse_args()
    for worker_class in args.worker_classes:
        if worker_class not in ("sync", "gthread"):
            parser.error(f"unknown worker class {worker_class}")

    # Per worker class: a quarter run to warm up, one run per --connections, the paced run.
    per_class = args.tickets_per_run // 4 + len(args.connections) * args.tickets_per_run
    registrations = len(args.worker_classes) * (per_class + paced_tickets(args))

    admin_url = make_url(psycopg_url(args.postgres_url))
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"sciweek_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = admin_url.set(database=name).render_as_string(hide_password=False)
    work = Path(tempfile.mkdtemp(prefix=name))
    # Seeding writes no secret key into the project's own instance folder.
    os.environ["SCIWEEK_INSTANCE_PATH"] = str(work / "setup")
    print(f"load generator: {wrk.wrk_version()}, {wrk.THREADS} threads")
    print(f"seeding {registrations} registrations …", flush=True)
    try:
        activity_id, token, ticket_secrets = seed(database_url, registrations)
        settle(database_url)
        tickets = Tickets(ticket_secrets, work)
        results = [
            measure_worker_class(c, args, database_url, work, tickets, activity_id, token)
            for c in args.worker_classes
        ]
        info = machine_info(admin_url)
    finally:
        admin.dispose()
        with create_engine(admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    lines = [
        "# Check-in API benchmark",
        "",
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')} with `benchmarks/checkin.py`"
        f" (`--workers {args.workers} --worker-classes {','.join(args.worker_classes)}"
        f" --threads {args.threads} --connections {','.join(map(str, args.connections))}"
        f" --duration {args.duration:g}`).",
        "",
        f"Load generator: **{wrk.wrk_version()}**, {wrk.THREADS} threads, with"
        " `benchmarks/lua/*.lua`. Server, database and load generator share the machine.",
        f"Machine: {info}.",
        f"Scans: one activity with {registrations} registrations on a throw-away database; "
        f"{int(args.repeat_share * 100)} % repeats of tickets already scanned, the rest new "
        "check-ins; each scan has its own nonce and is written to the scan log.",
        "",
    ]
    problems = []
    for label, rows, scans, found in results:
        lines += table(label, rows, scans)
        problems += found
    lines += [
        "Closed loops (back to back): each connection sends its next request when the answer",
        "arrives, so latency is mostly queueing at saturation (≈ connections ÷ throughput).",
        "The paced row is a busy door: every scanner scans about once a second. With sync",
        "workers it also measures wrk's pacing: wrk opens the next connection before it",
        "waits, and a sync worker that accepts it waits with it (see the script's docstring).",
        "",
    ]
    if problems:
        lines += ["**FAILED:**", "", *[f"- {p}" for p in problems], ""]
    report = "\n".join(lines)
    print()
    print(report)
    if problems:
        print(f"FAILED: {len(problems)} problem(s); {args.output} not written", file=sys.stderr)
        return 1
    Path(args.output).write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
