"""Coverage at scale on PostgreSQL: computation, the coverage page and the CLI.

Builds two districts in throw-away databases with COPY and times them:

- "real": 20 towns, 300 villages, 2,500 cadres, about 25,000 check-ins (goal: < 100 ms);
- "large": 200 towns, 2,000 villages, 100,000 cadres, 1,000,000 check-ins (goal: < 1 s).

Usage::

    SCIWEEK_BENCH_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/coverage.py [--only real|large] [--keep]

Prints the figures and writes benchmarks/RESULTS_coverage.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import cpu_model  # noqa: E402
from sciweek import create_app  # noqa: E402
from sciweek.extensions import db  # noqa: E402
from sciweek.models import User  # noqa: E402
from sciweek.training.coverage import coverage_by_town  # noqa: E402

YEAR = 2026
RUNS = 7


@dataclass
class Scale:
    name: str
    towns: int
    villages_per_town: int
    cadres: int
    trainings_per_town: int
    sessions_per_training: int
    registrations_per_cadre: int
    strangers: int  # registrations of people on no roster


SCALES = {
    "real": Scale("real", 20, 15, 2_500, 6, 2, 5, 500),
    "large": Scale("large", 200, 10, 100_000, 10, 2, 6, 20_000),
}


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def create_database(admin_url: str) -> str:
    name = f"sciweek_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(_psycopg_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(_psycopg_url(admin_url)).set(database=name).render_as_string(False)


def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    assert name
    assert name.startswith("sciweek_bench_")
    engine = create_engine(_psycopg_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


# C901 counts the small row generators nested in build (they share its cursor and counters);
# build itself is a straight sequence of COPYs.
def build(url: str, scale: Scale) -> dict:  # noqa: C901
    """Fill the schema with COPY; returns row counts."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
    now = datetime.now(UTC)
    counts = {}
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:

        def copy(table: str, columns: list[str], rows) -> int:
            n = 0
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as cp:
                for row in rows:
                    cp.write_row(row)
                    n += 1
            counts[table] = counts.get(table, 0) + n
            return n

        copy("departments", ["id", "code", "name", "former_names"], [(1, "kx", "区科协", "")])
        copy(
            "towns",
            ["id", "code", "name"],
            ((t, f"t{t:03d}", f"第{t}镇") for t in range(1, scale.towns + 1)),
        )
        village_count = scale.towns * scale.villages_per_town
        copy(
            "villages",
            ["id", "town_id", "name"],
            (
                (v, (v - 1) // scale.villages_per_town + 1, f"第{v}村")
                for v in range(1, village_count + 1)
            ),
        )

        def cadre_rows():
            for c in range(1, scale.cadres + 1):
                village = (c - 1) % village_count + 1
                town = (village - 1) // scale.villages_per_town + 1
                left = "2026-06-30" if c % 50 == 0 else None
                yield (
                    c, f"干部{c}", "", "", "村委会委员", town, village,
                    f"13{c:09d}", None, "2020-01-01", left, now, now,
                )  # fmt: skip

        copy(
            "cadres",
            ["id", "name", "gender", "birth_month", "posts", "town_id", "village_id", "phone",
             "id_number", "active_from", "left_on", "created_at", "updated_at"],
            cadre_rows(),
        )  # fmt: skip
        trainings = scale.towns * scale.trainings_per_town
        start = datetime(YEAR, 3, 1, 1, 0, tzinfo=UTC)
        copy(
            "activities",
            ["id", "kind", "title", "description", "town_id", "venue", "audience",
             "confirmed_count", "waitlist_enabled", "status", "cancel_reason", "sequence",
             "created_at", "updated_at"],
            (
                (a, "training", f"培训{a}", "", (a - 1) % scale.towns + 1, "礼堂", "cadres",
                 0, True, "published", "", 0, now, now)
                for a in range(1, trainings + 1)
            ),
        )  # fmt: skip
        spt = scale.sessions_per_training

        def session_rows():
            for a in range(1, trainings + 1):
                for k in range(spt):
                    begins = start + timedelta(days=(a * 3 + k) % 280, hours=k)
                    sid = (a - 1) * spt + k + 1
                    yield (sid, a, begins, begins + timedelta(hours=2), 2, "", now)

        copy(
            "activity_sessions",
            ["id", "activity_id", "starts_at", "ends_at", "credit_hours", "note", "created_at"],
            session_rows(),
        )
        per_town = scale.trainings_per_town
        regs: list[tuple[int, int, str]] = []  # (registration id, activity id, phone)

        def registration_rows():
            rid = 0
            for c in range(1, scale.cadres + 1):
                if c % 5 == 0:
                    continue  # a fifth of cadres never come
                village = (c - 1) % village_count + 1
                town = (village - 1) // scale.villages_per_town + 1
                for j in range(scale.registrations_per_cadre):
                    # Mostly their own town's trainings, sometimes the next town's.
                    host = town if j < scale.registrations_per_cadre - 1 else town % scale.towns + 1
                    activity = (host - 1) + ((c + j) % per_town) * scale.towns + 1
                    rid += 1
                    regs.append((rid, activity, f"13{c:09d}"))
                    # cadre_id: what registering (or importing the roster) stores.
                    yield (rid, activity, f"干部{c}", f"13{c:09d}", town, "confirmed",
                           f"{rid:064x}", f"{rid:06X}"[-6:], False, now, now, c)  # fmt: skip
            for s in range(scale.strangers):
                rid += 1
                activity = s % trainings + 1
                regs.append((rid, activity, f"15{s:09d}"))
                yield (rid, activity, f"群众{s}", f"15{s:09d}", None, "confirmed",
                       f"{rid:064x}", f"{rid:06X}"[-6:], False, now, now, None)  # fmt: skip

        # Distinct activities per cadre keep the (activity, phone) unique index happy.
        copy(
            "registrations",
            ["id", "activity_id", "name", "phone", "town_id", "status", "secret_hash",
             "short_code", "walk_in", "created_at", "updated_at", "cadre_id"],
            registration_rows(),
        )  # fmt: skip

        def checkin_rows():
            cid = 0
            for rid, activity, _phone in regs:
                for k in range(spt):
                    cid += 1
                    yield (cid, rid, (activity - 1) * spt + k + 1, now, now, "scan")

        copy(
            "checkins",
            ["id", "registration_id", "session_id", "checked_in_at", "recorded_at", "method"],
            checkin_rows(),
        )
        for table in ("departments", "towns", "villages", "cadres", "activities",
                      "activity_sessions", "registrations", "checkins"):  # fmt: skip
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return counts


def timed(fn, runs=RUNS) -> tuple[float, float, object]:
    """Median and best wall time in ms over ``runs`` (after one warm-up)."""
    result = fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), min(times), result


def count_queries(app, fn) -> int:
    seen = []

    def listener(conn, cursor, statement, *args):
        seen.append(statement)

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            fn()
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
    return len(seen)


def measure(url: str, scale: Scale, instance: Path) -> dict:
    os.environ["SCIWEEK_INSTANCE_PATH"] = str(instance)
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False}
    )
    with app.app_context():
        db.create_all()
    started = time.perf_counter()
    counts = build(url, scale)
    build_s = time.perf_counter() - started
    with app.app_context():
        admin = User(username="bench-admin", role="admin", display_name="bench")
        admin.set_password("bench-password-1")
        db.session.add(admin)
        db.session.commit()

    def compute():
        with app.app_context():
            return coverage_by_town(YEAR)

    compute_med, compute_best, report = timed(compute)
    queries = count_queries(app, lambda: coverage_by_town(YEAR))

    client = app.test_client()
    client.post("/login", data={"username": "bench-admin", "password": "bench-password-1"})

    def page():
        response = client.get(f"/manage/training/?year={YEAR}")
        assert response.status_code == 200, response.status_code
        return response

    page_med, page_best, _ = timed(page)
    page_queries = count_queries(app, page)

    runner = app.test_cli_runner()

    def cli():
        result = runner.invoke(args=["coverage", "--year", str(YEAR), "--format", "json"])
        assert result.exit_code == 0, (result.output, result.exception)
        return result

    cli_med, cli_best, _ = timed(cli)

    env = dict(os.environ, SCIWEEK_DATABASE_URL=url, SCIWEEK_INSTANCE_PATH=str(instance))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "sciweek", "coverage", "--year", str(YEAR),
         "--format", "json"],
        check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    process_ms = (time.perf_counter() - started) * 1000
    with app.app_context():
        db.engine.dispose()
    return {
        "scale": scale,
        "counts": counts,
        "build_s": build_s,
        "compute": (compute_med, compute_best),
        "queries": queries,
        "page": (page_med, page_best),
        "page_queries": page_queries,
        "cli": (cli_med, cli_best),
        "process_ms": process_ms,
        "cadres": report.cadres,
        "trained": report.trained,
        "coverage": report.coverage,
    }


def machine_info(admin_url: str) -> dict:
    model = cpu_model()
    engine = create_engine(_psycopg_url(admin_url))
    with engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar()
    engine.dispose()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "postgres": version,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def report_markdown(info: dict, results: list[dict]) -> str:
    lines = [
        "# Coverage benchmark",
        "",
        "Produced by `benchmarks/coverage.py` (PostgreSQL, throw-away databases, data loaded",
        "with COPY). Times are the median (best) of 7 runs after a warm-up, in milliseconds,",
        "measured in-process; the page is fetched through Flask's test client as a logged-in",
        'admin, the CLI through Click\'s runner; "process" is one `flask coverage` run as a',
        "fresh process (interpreter and app start-up included).",
        "",
        f"Machine: {info['nproc']} CPUs (nproc), {info['cpu']}; Python {info['python']}; "
        f"PostgreSQL {info['postgres']}; {info['date']}.",
        "",
        "| district | towns | villages | cadres | registrations | check-ins | build (s) "
        "| compute ms | page ms | CLI ms | process ms | queries (compute / page) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s, c = r["scale"], r["counts"]
        lines.append(
            f"| {s.name} | {c['towns']:,} | {c['villages']:,} | {c['cadres']:,} "
            f"| {c['registrations']:,} | {c['checkins']:,} | {r['build_s']:.1f} "
            f"| {r['compute'][0]:.1f} ({r['compute'][1]:.1f}) "
            f"| {r['page'][0]:.1f} ({r['page'][1]:.1f}) "
            f"| {r['cli'][0]:.1f} ({r['cli'][1]:.1f}) | {r['process_ms']:.0f} "
            f"| {r['queries']} / {r['page_queries']} |"
        )
    lines += [
        "",
        "Goals: under 100 ms for a real district (2,500 cadres), under 1 s for the large one.",
        "The query count is the same at both sizes: one query each for towns, targets, the",
        "per-town roster/attendance aggregate and trainings held (plus the session's user",
        "lookup on the page), never one per town or per cadre.",
        "",
    ]
    for r in results:
        lines.append(
            f"- {r['scale'].name}: {r['cadres']:,} cadres counted, {r['trained']:,} trained "
            f"({r['coverage'] * 100:.1f} %)."
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(SCALES))
    parser.add_argument("--keep", action="store_true", help="Keep the databases afterwards.")
    args = parser.parse_args()
    admin_url = os.environ.get(
        "SCIWEEK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    info = machine_info(admin_url)
    results = []
    import tempfile

    for name in [args.only] if args.only else ["real", "large"]:
        scale = SCALES[name]
        url = create_database(admin_url)
        try:
            with tempfile.TemporaryDirectory() as instance:
                print(f"building {name} district ...", flush=True)
                result = measure(url, scale, Path(instance))
                results.append(result)
                print(
                    f"{name}: cadres {result['counts']['cadres']:,}, check-ins "
                    f"{result['counts']['checkins']:,} (built in {result['build_s']:.1f} s); "
                    f"compute {result['compute'][0]:.1f} ms, page {result['page'][0]:.1f} ms, "
                    f"CLI {result['cli'][0]:.1f} ms, process {result['process_ms']:.0f} ms, "
                    f"queries {result['queries']} / page {result['page_queries']}",
                    flush=True,
                )
        finally:
            if not args.keep:
                drop_database(admin_url, url)
    markdown = report_markdown(info, results)
    print(markdown)
    if not args.only:
        (ROOT / "benchmarks" / "RESULTS_coverage.md").write_text(markdown, encoding="utf-8")


if __name__ == "__main__":
    main()
