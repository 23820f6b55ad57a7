"""Calendar feed benchmark: 10,000 sessions on PostgreSQL, served by gunicorn, load from wrk.

Creates a throw-away database, bulk-inserts activities and sessions with
``generate_series``, starts ``gunicorn wsgi:app`` (2 sync workers) against it and
measures, each beside the trivial ``/healthz`` endpoint of the same server in the same run:

- build time of the full ``/calendar.ics`` (10,000 events), of a 50-event feed
  (``?campaign=1``) and of one activity's ``.ics``: sequential GETs, the feed changed in
  the database before each one (min/median/p50),
- with wrk: requests/s and p50/p99 of repeated GETs of each unchanged feed (a cached body)
  and of conditional GETs answered 304, and of ``/healthz`` (the ceiling);
- beside each unchanged body, the same bytes served as a static file by the same server
  (Flask's static route, which gunicorn sends with ``sendfile``): the ceiling of "a feed
  at the speed of a static file". For the 8 MB feed this is the fair one: ``/healthz``
  moves a few hundred bytes, so beside it the big body measures the loopback's bandwidth.
  The files are written to the measured checkout's ``static/`` for the run and removed.

The code measured is the checkout given by ``--source`` (default: this one), so the same
script measures a branch before and after a change. For code with per-process remembered
feed versions (``SCIWEEK_FEED_VERSION_CACHE_SECONDS``) it runs two servers: one reading the
version for every request (0 s; builds are measured there, since the benchmark changes the
database behind the server's back) and one with the default.

Usage (from the repository root)::

    .venv/bin/python benchmarks/feeds.py \
        --postgres-url postgresql://postgres@127.0.0.1:5432/postgres [--source /work/main]

Results are printed and written to ``benchmarks/RESULTS_feeds.md`` (``--output``).
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import wrk  # noqa: E402
from benchmarks.machine import cpu_model  # noqa: E402

DEFAULT_URL = os.environ.get(
    "SCIWEEK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SMALL_FEED_ACTIVITIES = 25  # x 2 sessions = 50 events


def psycopg_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


# --- database ------------------------------------------------------------------------


def create_database(admin_url: str) -> str:
    name = f"sciweek_bench_{uuid.uuid4().hex[:12]}"
    engine = create_engine(psycopg_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(psycopg_url(admin_url)).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    assert name
    assert name.startswith("sciweek_bench_")
    engine = create_engine(psycopg_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def create_schema(url: str, instance: str, source: Path = ROOT) -> None:
    """The tables of the code in ``source`` (a subprocess there: its ``sciweek`` wins)."""
    code = (
        "from sciweek import create_app; from sciweek.extensions import db; "
        f"app = create_app({{'SQLALCHEMY_DATABASE_URI': {url!r}}}); "
        "ctx = app.app_context(); ctx.push(); db.create_all(); db.engine.dispose()"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=source,
        env=dict(os.environ, SCIWEEK_INSTANCE_PATH=instance),
        check=True,
    )


def fill(url: str, sessions: int) -> float:
    """Insert ``sessions`` sessions (two per activity), all upcoming; returns seconds."""
    activities = sessions // 2
    started = time.perf_counter()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO towns (id, code, name) VALUES (1, 'chengguan', '城关镇')"))
        conn.execute(text("INSERT INTO villages (id, town_id, name) VALUES (1, 1, '东村')"))
        conn.execute(
            text(
                "INSERT INTO departments (id, code, name, former_names) "
                "VALUES (1, 'kx', '区科协', '')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO campaigns (id, name, kind, starts_on, ends_on) "
                "VALUES (1, '2026年科技活动周', 'st_week', CURRENT_DATE, CURRENT_DATE + 30)"
            )
        )
        conn.execute(
            text(
                """
                INSERT INTO activities (
                    id, kind, title, description, campaign_id, town_id, village_id, venue,
                    latitude, longitude, audience, capacity, confirmed_count, waitlist_enabled,
                    status, cancel_reason, cancelled_at, published_at, sequence,
                    created_at, updated_at)
                SELECT g,
                       (ARRAY['outreach','science_day','st_week','training'])[1 + g % 4],
                       '科技下乡：农技专家进村, 第 ' || g || ' 期; 欢迎参加 🌾',
                       '水稻病虫害防治、果树修剪现场指导。' || repeat('内容较长的简介。', 8),
                       CASE WHEN g <= :small THEN 1 END,
                       1, 1, '村文化礼堂',
                       30.25 + g / 100000.0, 120.125, 'public', 200, 0, true,
                       CASE WHEN g % 50 = 0 THEN 'cancelled' ELSE 'published' END,
                       CASE WHEN g % 50 = 0 THEN '天气原因' ELSE '' END,
                       CASE WHEN g % 50 = 0 THEN now() END,
                       now(), g % 3, now() - interval '1 day', now() - (g || ' seconds')::interval
                FROM generate_series(1, :n) AS g
                """
            ),
            {"n": activities, "small": SMALL_FEED_ACTIVITIES},
        )
        conn.execute(
            text(
                "INSERT INTO activity_departments (activity_id, department_id) "
                "SELECT g, 1 FROM generate_series(1, :n) AS g"
            ),
            {"n": activities},
        )
        conn.execute(
            text(
                """
                INSERT INTO activity_sessions
                    (id, activity_id, starts_at, ends_at, note, created_at)
                SELECT g, (g + 1) / 2,
                       date_trunc('hour', now()) + ((g % 2000) || ' hours')::interval,
                       date_trunc('hour', now()) + ((g % 2000) || ' hours')::interval
                           + interval '2 hours',
                       '', now() - interval '1 day'
                FROM generate_series(1, :n) AS g
                """
            ),
            {"n": activities * 2},
        )
        for table in (
            "towns",
            "villages",
            "departments",
            "campaigns",
            "activities",
            "activity_sessions",
        ):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    return time.perf_counter() - started


# --- HTTP ----------------------------------------------------------------------------


def fetch(port: int, path: str, headers: dict | None = None) -> tuple[int, int, float, dict]:
    """One request on a fresh connection (gunicorn's sync workers close after each)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    result = (response.status, len(body), elapsed, dict(response.getheaders()))
    conn.close()
    return result


def fetch_body(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200, (path, response.status)
    return body


def touch(url: str) -> None:
    """Change activity 1 (in every benchmarked feed), so the next GET must rebuild.

    As the application would: the activity and, where the code counts feed changes
    (``feed_changes``), the ``public`` counter in the same transaction.
    """
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE activities SET updated_at = clock_timestamp() WHERE id = 1"))
        if conn.execute(text("SELECT to_regclass('feed_changes')")).scalar() is not None:
            conn.execute(
                text(
                    "INSERT INTO feed_changes (scope, counter, changed_at) "
                    "VALUES ('public', 1, clock_timestamp()) ON CONFLICT (scope) DO UPDATE "
                    "SET counter = feed_changes.counter + 1, changed_at = clock_timestamp()"
                )
            )
    engine.dispose()


def build_latencies(port: int, path: str, runs: int, url: str) -> tuple[list[float], int]:
    """Cold builds: the feed changes before each request, so no cached body applies."""
    times, size = [], 0
    for _ in range(runs):
        touch(url)
        status, size, elapsed, _headers = fetch(port, path)
        assert status == 200, status
        times.append(elapsed)
    return times, size


def wait_until_up(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited early")
        try:
            if fetch(port, "/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer in time")


def start_server(options, source: Path, url: str, instance: str, extra_env: dict):
    env = dict(
        os.environ,
        SCIWEEK_DATABASE_URL=url,
        SCIWEEK_INSTANCE_PATH=instance,
        SCIWEEK_BASE_URL="https://sciweek.example.cn",
        **extra_env,
    )
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    server = subprocess.Popen(
        [
            gunicorn,
            "-w",
            str(options.workers),
            "-b",
            f"127.0.0.1:{options.port}",
            "--timeout",
            "120",
            "--log-level",
            "warning",
            "wsgi:app",
        ],
        cwd=source,
        env=env,
    )
    wait_until_up(options.port, server)
    return server


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=30)


FEEDS = (
    ("10,000 events", "/calendar.ics"),
    ("50 events", "/calendar.ics?campaign=1"),
    ("one activity", "/activities/1.ics"),
)


def static_twin(options, label: str, body: bytes) -> Path:
    """``body`` as a file in the measured checkout's static folder (removed after the run)."""
    slug = label.split()[0].replace(",", "")
    path = options.source / "static" / f"bench-feed-{slug}-{uuid.uuid4().hex[:8]}.ics"
    path.write_bytes(body)
    options.static_files.append(path)
    return path


def measure_server(options, url: str, *, builds: bool) -> dict:
    """Builds (when asked), then wrk runs against the server on ``options.port``."""
    port, base = options.port, f"http://127.0.0.1:{options.port}"
    result: dict = {"builds": {}, "wrk": [], "sequential": {}, "static": {}}
    first_status, _size, first_time, _headers = fetch(port, "/calendar.ics")
    assert first_status == 200, first_status
    result["first"] = first_time
    if builds:
        for label, path in FEEDS:
            result["builds"][label] = build_latencies(port, path, options.runs, url)
    # One untimed wrk run first: imports, connection pools.
    wrk.run("warm-up", base + "/healthz", "get.lua", connections=4, duration_s=2)

    def run(label, path, script, expected, args=()):
        one = wrk.run(
            label,
            base + path,
            script,
            connections=options.connections,
            duration_s=options.seconds,
            script_args=args,
        )
        problems = one.problems(expected)
        if problems:
            raise RuntimeError(f"{label}: {problems}")
        print(
            f"  {label:<48} {one.rps:8.0f}/s  p50 {one.p50_ms:7.1f} ms  p99 {one.p99_ms:7.1f} ms"
            f"  (load before: {one.load_before})",
            flush=True,
        )
        result["wrk"].append(one)
        return one

    run("`/healthz` (ceiling)", "/healthz", "get.lua", 200)
    for label, path in FEEDS:
        for _ in range(3 * options.workers):  # every worker holds this version's body
            status, _size, _elapsed, headers = fetch(port, path)
        assert status == 200, status
        result["sequential"][label] = [fetch(port, path)[2] for _ in range(3 * options.runs)]
        body = fetch_body(port, path)
        twin = "/static/" + static_twin(options, label, body).name
        assert fetch_body(port, twin) == body
        static_label = f"`/static/…` (the {label} feed's bytes, {len(body):,} B)"
        result["static"][label] = run(static_label, twin, "get.lua", 200)
        run(f"`{path}` ({label}): unchanged, body", path, "get.lua", 200)
        run(
            f"`{path}` ({label}): If-None-Match → 304",
            path,
            "conditional_get.lua",
            304,
            (headers["ETag"],),
        )
    events = fetch(port, "/calendar.ics?campaign=1")
    assert events[0] == 200
    return result


# --- report --------------------------------------------------------------------------


def machine_info(url: str) -> dict[str, str]:
    cpu = cpu_model()
    engine = create_engine(url)
    with engine.connect() as conn:
        pg = conn.execute(text("SHOW server_version")).scalar()
    engine.dispose()
    import gunicorn
    import icalendar

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "postgresql": pg,
        "gunicorn": gunicorn.__version__,
        "icalendar": icalendar.__version__,
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def has_remembered_versions(source: Path) -> bool:
    return "SCIWEEK_FEED_VERSION_CACHE_SECONDS" in (source / "sciweek" / "config.py").read_text()


def report_lines(options, info, fill_seconds, servers) -> list[str]:
    lines = [
        f"### {options.label}",
        "",
        f"`benchmarks/feeds.py --source {options.source}` (commit {info['commit']}): "
        f"PostgreSQL with {options.sessions:,} sessions ({options.sessions // 2:,} public "
        "activities, 2 sessions each, 2% cancelled), `gunicorn wsgi:app` with "
        f"{options.workers} sync workers; wrk ({info['wrk']}, {wrk.THREADS} threads, "
        f"{options.connections} connections, {options.seconds:.0f} s per run) on the same "
        "machine as the server and the database. Builds: sequential GETs on fresh "
        f"connections, the feed changed in the database before each ({options.runs} each).",
        "",
        f"- machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, "
        f"PostgreSQL {info['postgresql']}, gunicorn {info['gunicorn']}; run {info['date']}",
        f"- load average (1/5/15 min) at start: {info['load_start']}; at end: "
        f"{wrk.load_average()}. **The machine is shared with other developers' test runs "
        "and servers**: figures are comparable only within one run, beside its ceiling.",
        f"- bulk insert of {options.sessions:,} sessions: {fill_seconds:.1f} s",
        "",
    ]
    for title, result in servers:
        lines += [f"#### {title}", ""]
        lines.append(
            f"- very first full-feed request after start (cold worker): {ms(result['first'])} ms"
        )
        if result["builds"]:
            lines += ["", "| build (feed changed before each GET) | min ms | median ms | bytes |"]
            lines.append("|---|---:|---:|---:|")
            for label, path in FEEDS:
                times, size = result["builds"][label]
                lines.append(
                    f"| `{path}` ({label}) | {ms(min(times))} | "
                    f"{ms(statistics.median(times))} | {size:,} |"
                )
        lines += ["", "| unchanged feed, sequential GETs (no queueing) | p50 ms | min ms |"]
        lines.append("|---|---:|---:|")
        for label, path in FEEDS:
            times = result["sequential"][label]
            lines.append(
                f"| `{path}` ({label}) | {statistics.median(times) * 1000:.1f} | "
                f"{min(times) * 1000:.1f} |"
            )
        ceiling = result["wrk"][0]
        lines += [
            "",
            "| wrk | req/s | ÷ `/healthz` | ÷ static file of the same bytes | p50 ms | p99 ms "
            "| load before |",
            "|---|---:|---:|---:|---:|---:|---|",
        ]
        twins = {
            f"`{path}` ({label}): unchanged, body": result["static"].get(label)
            for label, path in FEEDS
        }
        for one in result["wrk"]:
            twin = twins.get(one.label)
            versus_static = f"{one.rps / twin.rps:.2f}" if twin is not None else "–"
            lines.append(
                f"| {one.label} | {one.rps:,.0f} | {one.rps / ceiling.rps:.2f} | {versus_static} | "
                f"{one.p50_ms:.1f} | {one.p99_ms:.1f} | {one.load_before} |"
            )
        lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=DEFAULT_URL)
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout to measure")
    parser.add_argument("--label", default="this checkout", help="heading of the results")
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--runs", type=int, default=7, help="timed builds per feed")
    parser.add_argument("--seconds", type=float, default=10, help="per wrk run")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "RESULTS_feeds.md"))
    options = parser.parse_args()
    options.source = options.source.resolve()
    options.static_files = []

    load_start = wrk.load_average()
    print(f"load average at start: {load_start}; load generator: {wrk.wrk_version()}")
    instance = tempfile.mkdtemp(prefix="sciweek-bench-")
    url = create_database(options.postgres_url)
    servers = []
    try:
        create_schema(url, instance, options.source)
        fill_seconds = fill(url, options.sessions)
        print(f"inserted {options.sessions} sessions in {fill_seconds:.1f} s")
        if has_remembered_versions(options.source):
            plan = [
                (
                    "feed version read for every request (0 s remembered)",
                    {"SCIWEEK_FEED_VERSION_CACHE_SECONDS": "0"},
                    True,
                ),
                ("feed versions remembered per process (default, 5 s)", {}, False),
            ]
        else:
            plan = [("feed version from the aggregate query", {}, True)]
        for title, extra_env, builds in plan:
            print(f"== {title}", flush=True)
            server = start_server(options, options.source, url, instance, extra_env)
            try:
                servers.append((title, measure_server(options, url, builds=builds)))
            finally:
                stop_server(server)
        info = machine_info(url)
    finally:
        drop_database(options.postgres_url, url)
        shutil.rmtree(instance, ignore_errors=True)
        for path in options.static_files:
            path.unlink(missing_ok=True)
    info["load_start"] = load_start
    info["wrk"] = wrk.wrk_version()
    info["commit"] = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=options.source,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    report = "\n".join(report_lines(options, info, fill_seconds, servers))
    print(report)
    Path(options.output).write_text(report + "\n", encoding="utf-8")
    print(f"written to {options.output}")


if __name__ == "__main__":
    main()
