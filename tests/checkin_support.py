"""Helpers for the check-in tests: tickets, API tokens and a live gunicorn server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from sciweek.checkin.services import create_api_token
from sciweek.extensions import db
from sciweek.registration.services import RegistrationRequest, register_for_activity

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def issue_ticket(activity, name="张三", phone="13800138000", **kwargs):
    """Register someone and return the IssuedTicket (registration + secret)."""
    return register_for_activity(
        activity.id, RegistrationRequest(name=name, phone=phone), walk_in=True, **kwargs
    )


def token_for(user, name="测试设备") -> str:
    _token, raw = create_api_token(user, name)
    db.session.commit()
    return raw


def bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """``gunicorn 'sciweek:create_app()'`` in a subprocess against a given database."""

    def __init__(
        self,
        database_url: str,
        instance_path: Path,
        *,
        workers: int = 2,
        threads: int = 1,
        env: dict | None = None,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "SCIWEEK_DATABASE_URL": database_url,
            "SCIWEEK_INSTANCE_PATH": str(instance_path),
            "SCIWEEK_BASE_URL": self.url,
            **(env or {}),
        }
        self.args = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--log-level",
            "warning",
            "sciweek:create_app()",
        ]
        self.process: subprocess.Popen | None = None
        self.log_path = instance_path / "gunicorn.log"

    def start(self, timeout: float = 30.0) -> LiveServer:
        instance = Path(self.env["SCIWEEK_INSTANCE_PATH"])
        instance.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.args,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).text == "ok":
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("gunicorn did not start in time")

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

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
