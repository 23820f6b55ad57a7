"""A real gunicorn server with several worker processes, for tests that need live HTTP."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

from .waiting import wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """``gunicorn wsgi:app`` in its own process group against a given database."""

    def __init__(
        self,
        database_url: str,
        instance_path: Path,
        workers: int = 4,
        threads: int = 1,
        env: dict | None = None,
        **extra_env: str,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = instance_path / "gunicorn.log"
        self.instance_path = instance_path
        self.env = {
            **os.environ,
            "SCIWEEK_DATABASE_URL": database_url,
            "SCIWEEK_INSTANCE_PATH": str(instance_path),
            "SCIWEEK_SECRET_KEY": "live-test-secret-key-0123456789abcdef",
            "SCIWEEK_BASE_URL": self.url,
            **(env or {}),
            **extra_env,
        }
        self.args = [
            sys.executable, "-m", "gunicorn",
            "--workers", str(workers),
            *(["--worker-class", "gthread", "--threads", str(threads)] if threads > 1 else []),
            "--bind", f"127.0.0.1:{self.port}",
            "--backlog", "2048",
            "--timeout", "60",
            "wsgi:app",
        ]  # fmt: skip
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> LiveServer:
        self.instance_path.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.args,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(self._answers, timeout=timeout, interval=0.1, what="gunicorn's /healthz")
        except TimeoutError:
            self.stop()
            raise
        return self

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()[-2000:]}")
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def worker_pids(self) -> list[int]:
        """The worker processes' ids (Linux: read from /proc)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return sorted(int(child) for child in children)

    def server_pids(self) -> list[int]:
        """gunicorn's master and its workers."""
        return [self.process.pid, *self.worker_pids()]

    def connections_per_worker(self) -> list[int]:
        """How many established client connections each worker holds, in worker_pids order
        (Linux: the port's sockets from /proc/net/tcp*, matched to each worker's fds)."""
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(FileNotFoundError):
                for line in Path(table).read_text().splitlines()[1:]:
                    fields = line.split()
                    local_port = int(fields[1].rsplit(":", 1)[1], 16)
                    if local_port == self.port and fields[3] == "01":  # 01: ESTABLISHED
                        inodes.add(fields[9])
        held = []
        for pid in self.worker_pids():
            count = 0
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    count += target.startswith("socket:[") and target[8:-1] in inodes
            held.append(count)
        return held

    def log(self) -> str:
        return self.log_path.read_text()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def csrf_session(url: str) -> tuple[requests.Session, str]:
    """A browser-like session holding a CSRF token fetched from ``url``."""
    session = requests.Session()
    page = session.get(url, timeout=30)
    page.raise_for_status()
    match = CSRF_RE.search(page.text)
    assert match, "no CSRF token on the page"
    return session, match.group(1)
