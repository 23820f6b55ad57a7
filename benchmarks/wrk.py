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
) -> WrkRun:
    """Run wrk once and return its figures; the load average is read just before.

    With ``stop_when_threads_finish`` the script's threads announce on stdout when their
    share is done (``bench.thread_finished()``); wrk is then ended at once instead of
    idling to the end of ``duration_s``, which becomes an upper bound.

    ``connections_per_worker`` is called halfway through the run: how wrk's kept-alive
    connections sit on the server's workers decides how many cores serve them (all of them
    on one worker leave the other core idle), so every ratio between runs needs it.
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
    )


def _interrupt_until_exit(process: subprocess.Popen) -> None:
    # wrk ends its run early on SIGINT (it ignores the signal for its first instants).
    while process.poll() is None:
        process.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.5)
