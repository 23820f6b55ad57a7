"""Run wrk, a load generator written in C, with a Lua script from benchmarks/lua/.

A Python client tops out near 1,300 requests/s on a 2-core machine, below what gunicorn
serves, so a ceiling measured with it flatters every ratio; wrk (Debian package ``wrk``)
drives the same server at several times that. Every script here prints, through
``benchmarks/lua/bench.lua``, one ``WRK_JSON {...}`` line that :func:`run` reads back.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

LUA = Path(__file__).resolve().parent / "lua"
THREADS = 2  # one per core: wrk shares the machine with the server and the database


def wrk_binary() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    return path


def wrk_version() -> str:
    result = subprocess.run([wrk_binary(), "-v"], capture_output=True, text=True, check=False)
    first = (result.stdout or result.stderr).splitlines()[0]
    return first.split(" Copyright")[0].strip()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _process_ticks(pid: int) -> int | None:
    """User and system CPU ticks a live process has used; None once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def _postgres_pids() -> list[int]:
    """Every PostgreSQL process on the machine: backends, WAL writer, checkpointer."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    pids.append(int(entry.name))
    return pids


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    total = sum(values[:8])  # without guest time, which steal and user already hold
    return total - idle, total


@dataclass(frozen=True)
class CpuUse:
    """Where the machine's CPU time went during a run, in ms per answered request.

    ``server``: gunicorn's master and workers; ``database``: every PostgreSQL process
    (backends, WAL writer, checkpointer); ``rest``: the load generator, the kernel's
    network work done outside those processes, and anything else running. ``idle``: the
    share of the machine's CPU time nobody used (near 0 means CPU-bound).
    """

    server: float
    database: float
    rest: float
    idle: float

    def text(self) -> str:
        return f"{self.server:.2f} / {self.database:.2f} / {self.rest:.2f}"


def _ticks(pids: list[int]) -> dict[int, int]:
    ticks = {pid: _process_ticks(pid) for pid in pids}
    return {pid: t for pid, t in ticks.items() if t is not None}


class _CpuMeter:
    """CPU ticks used between ``start`` and ``stop`` by the server, PostgreSQL and the rest.

    A process that ends during the run is left out, with its ticks, so the server's pool
    should stay open (gunicorn's workers and their database connections persist through a
    run); its time then shows in ``rest``.
    """

    def __init__(self, server_pids: Callable[[], list[int]]):
        self.server_pids = server_pids

    def _snapshot(self) -> tuple[dict[int, int], dict[int, int], tuple[int, int]]:
        return _ticks(self.server_pids()), _ticks(_postgres_pids()), _machine_ticks()

    def start(self) -> None:
        self.before = self._snapshot()

    def stop(self) -> None:
        self.after = self._snapshot()

    def use(self, requests: int) -> CpuUse:
        server0, database0, (busy0, total0) = self.before
        server1, database1, (busy1, total1) = self.after
        # A process started during the run counts from 0; one that ended is left out.
        server = sum(t - server0.get(pid, 0) for pid, t in server1.items())
        database = sum(t - database0.get(pid, 0) for pid, t in database1.items())
        busy, total = busy1 - busy0, total1 - total0
        per_request_ms = 1000 / CLOCK_TICKS / max(requests, 1)
        return CpuUse(
            server=server * per_request_ms,
            database=database * per_request_ms,
            rest=max(busy - server - database, 0) * per_request_ms,
            idle=(total - busy) / total if total else 0.0,
        )


def load_average() -> str:
    """The 1, 5 and 15-minute load averages, as ``uptime`` shows them."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class WrkRun:
    label: str
    connections: int
    load_before: str
    requests: int
    duration_s: float
    latency_us: dict
    latency_source: str
    errors: dict
    counters: dict
    output: str = field(repr=False)
    # Client connections each server worker held halfway through the run (see ``run``).
    split: list[int] | None = None
    # Where the CPU time went, per answered request (see ``run``'s ``server_pids``).
    cpu: CpuUse | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def p50_ms(self) -> float:
        return self.latency_us["p50"] / 1000

    @property
    def p99_ms(self) -> float:
        return self.latency_us["p99"] / 1000

    @property
    def statuses(self) -> dict[int, int]:
        return {
            int(name.removeprefix("status_")): int(n)
            for name, n in self.counters.items()
            if name.startswith("status_")
        }

    @property
    def socket_errors(self) -> int:
        return sum(self.errors[k] for k in ("connect", "read", "write", "timeout"))

    def unexpected_statuses(self, expected: int = 200) -> dict[int, int]:
        return {code: n for code, n in self.statuses.items() if code != expected}

    def problems(self, expected: int = 200, answers: int | None = None) -> list[str]:
        """What makes this run's figures untrustworthy (empty when none).

        ``answers``: how many answers the script's ``status_*`` counters should add up to
        (default: every request wrk counted).
        """
        answers = self.requests if answers is None else answers
        found = []
        if self.requests == 0:
            found.append("no request answered")
        if self.socket_errors:
            found.append(f"socket errors {self.errors}")
        if self.unexpected_statuses(expected):
            found.append(f"statuses other than {expected}: {self.unexpected_statuses(expected)}")
        if sum(self.statuses.values()) != answers:
            found.append(f"{answers} answers but statuses counted {self.statuses}")
        return found


def run(
    label: str,
    url: str,
    script: str,
    *,
    connections: int,
    duration_s: float,
    script_args: tuple = (),
    stop_when_threads_finish: bool = False,
    threads: int = THREADS,
    connections_per_worker: Callable[[], list[int]] | None = None,
    server_pids: Callable[[], list[int]] | None = None,
) -> WrkRun:
    """Run wrk once and return its figures; the load average is read just before.

    With ``stop_when_threads_finish`` the script's threads announce on stdout when their
    share is done (``bench.thread_finished()``); wrk is then ended at once instead of
    idling to the end of ``duration_s``, which becomes an upper bound.

    ``connections_per_worker`` is called halfway through the run: how wrk's kept-alive
    connections sit on the server's workers decides how many cores serve them (all of them
    on one worker leave the other core idle), so every ratio between runs needs it.

    ``server_pids``: the server's processes; the run then records where the machine's CPU
    time went, per answered request (``CpuUse``): in the server, in PostgreSQL, elsewhere.
    A ratio between two kinds of request is the ratio of what they cost, and this shows
    which part of the machine a difference is spent in.
    """
    threads = min(threads, connections)
    load = load_average()
    args = [
        wrk_binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{int(duration_s)}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(LUA / script),
        url,
    ]
    if script_args:
        args += ["--", *[str(a) for a in script_args]]
    meter = _CpuMeter(server_pids) if server_pids is not None else None
    if meter is not None:
        meter.start()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    split: list[list[int]] = []
    sampler = None
    if connections_per_worker is not None:
        sampler = threading.Timer(duration_s / 2, lambda: split.append(connections_per_worker()))
        sampler.start()
    lines: list[str] = []
    finished = 0
    ender: threading.Thread | None = None
    for line in process.stdout:
        lines.append(line)
        if stop_when_threads_finish and line.startswith("WRK_THREAD_DONE"):
            finished += 1
            if finished == threads:
                ender = threading.Thread(target=_interrupt_until_exit, args=(process,))
                ender.start()
    process.wait()
    if meter is not None:
        meter.stop()
    if ender is not None:
        ender.join()
    if sampler is not None:
        sampler.cancel()
        sampler.join()
    output = "".join(lines)
    report = next((x for x in lines if x.startswith("WRK_JSON ")), None)
    if process.returncode != 0 or report is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output}")
    data = json.loads(report.removeprefix("WRK_JSON "))
    cpu = meter.use(data["requests"]) if meter is not None else None
    own = data.get("own_latency_us")
    return WrkRun(
        label=label,
        connections=connections,
        load_before=load,
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        latency_us=own or data["latency_us"],
        latency_source="timed in Lua, per request" if own else "wrk's histogram",
        errors=data["errors"],
        counters=data["counters"],
        output=output,
        split=split[0] if split else None,
        cpu=cpu,
    )


def _interrupt_until_exit(process: subprocess.Popen) -> None:
    # wrk ends its run early on SIGINT (it ignores the signal for its first instants).
    while process.poll() is None:
        process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.5)
