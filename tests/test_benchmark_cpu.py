"""The benchmarks' CPU accounting (benchmarks/wrk.py): a ratio between two kinds of request is
read beside where each spent the machine's CPU, so the accounting must put time where it went."""

import subprocess
import sys
import time

import pytest

from benchmarks import wrk

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads CPU time from /proc (Linux only)"
)

BUSY = "while True: pass"


def _measure(server_pids, seconds: float, requests: int = 1) -> wrk.CpuUse:
    meter = wrk._CpuMeter(lambda: server_pids)
    meter.start()
    time.sleep(seconds)
    meter.stop()
    return meter.use(requests)


@pytest.fixture
def busy():
    started = []

    def start() -> int:
        process = subprocess.Popen([sys.executable, "-c", BUSY])
        started.append(process)
        return process.pid

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_a_busy_server_process_is_the_server_and_another_busy_process_the_rest(busy):
    server = busy()
    busy()  # another busy process, not the server
    use = _measure([server], 0.6)
    # Each spins one core for the 600 ms window (less what the other work took from it).
    assert use.server >= 250
    assert use.rest >= 250
    assert use.database < use.server / 4  # PostgreSQL was not asked for anything
    assert use.idle < 0.5  # two busy processes on the machine's cores


def test_cpu_is_divided_by_the_requests_answered_and_a_gone_process_is_left_out(busy):
    server = busy()
    meter = wrk._CpuMeter(lambda: [server, 2**22 + 1])  # a pid that does not exist
    meter.start()
    time.sleep(0.5)
    meter.stop()
    one, ten = meter.use(requests=1), meter.use(requests=10)
    assert one.server >= 200
    assert ten.server == pytest.approx(one.server / 10)
