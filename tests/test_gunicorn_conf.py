"""gunicorn as deployed (README's command reads the project's gunicorn.conf.py): a connection
that has not sent its request yet must not keep a gthread worker's thread from others."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from .live_server import PROJECT_ROOT, LiveServer
from .waiting import wait_until

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def read_answer(sock: socket.socket) -> bytes:
    """One ``/healthz`` answer (its body is ``ok``) read from a kept-alive connection."""
    sock.settimeout(10)
    data = b""
    while not data.endswith(b"\r\n\r\nok"):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


def test_connections_that_have_sent_nothing_yet_hold_no_thread(tmp_path):
    """gunicorn 27's gthread worker hands every new connection to a thread, which waits up
    to 5 s for its first byte: two silent connections on two threads held a third client
    for 5 s (the paced benchmark's p99 of 0.3-0.7 s at 50 connections on 2 x 8 threads).
    gunicorn.conf.py leaves a connection with nothing to read to the worker's poller."""
    server = LiveServer(
        f"sqlite:///{tmp_path / 'idle.sqlite3'}", tmp_path / "server", workers=1, threads=2
    )
    with server:
        silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
        try:
            time.sleep(0.3)  # both accepted and handed on
            started = time.monotonic()
            response = requests.get(server.url + "/healthz", timeout=10)
            waited = time.monotonic() - started
            assert response.status_code == 200
            assert waited < 1.0, f"{waited:.1f} s behind two silent connections"
            # The silent connections are served when they speak, and stay alive for more.
            for sock in silent:
                for _ in range(2):
                    sock.sendall(REQUEST)
                    assert read_answer(sock).startswith(b"HTTP/1.1 200")
        finally:
            for sock in silent:
                sock.close()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_kept_alive_connections_are_spread_over_the_workers(tmp_path):
    """With one listening socket shared by every worker, a burst of kept-alive connections
    went mostly to whichever worker woke first (wrk's 50 connections: 50/0, 45/5, 3/47 over
    two workers), and that one process's GIL served them all while the other core idled:
    /healthz/db measured 1,429 req/s at 50/0 and 3,244 at 21/29. gunicorn.conf.py gives each
    worker its own socket (SO_REUSEPORT) and the kernel spreads new connections over them."""
    server = LiveServer(
        f"sqlite:///{tmp_path / 'spread.sqlite3'}", tmp_path / "server", workers=2, threads=8
    )
    with server:
        assert len(server.worker_pids()) == 2
        # As a load generator does: every connection opened at once, then a request on each.
        clients = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
        try:
            for sock in clients:
                sock.sendall(REQUEST)
            for sock in clients:
                assert read_answer(sock).startswith(b"HTTP/1.1 200")
            held = server.connections_per_worker()
            assert sum(held) == 50
            # Spread by a hash of each connection's addresses: 25 each on average, and
            # fewer than 10 on one worker about once in 100,000 runs.
            assert min(held) >= 10, f"connections per worker: {held}"
        finally:
            for sock in clients:
                sock.close()


def gunicorn(*bind_args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", *bind_args, "wsgi:app"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_second_server_on_a_taken_port_refuses_to_start(tmp_path):
    """Own sockets per worker (SO_REUSEPORT) must not let a second server share the port."""
    server = LiveServer(f"sqlite:///{tmp_path / 'a.sqlite3'}", tmp_path / "a", workers=2)
    with server:
        second = gunicorn("--bind", f"127.0.0.1:{server.port}", env=server.env)
        try:
            output, _ = second.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            second.kill()
            output, _ = second.communicate()
        assert second.returncode != 0, f"a second server started on the port:\n{output}"
        assert "in use" in output
        assert requests.get(server.url + "/healthz", timeout=10).status_code == 200


def test_a_unix_socket_bind_still_serves(tmp_path):
    """A Unix socket (behind nginx on the same host) keeps gunicorn's one shared socket."""
    path = tmp_path / "sciweek.sock"
    server = LiveServer(f"sqlite:///{tmp_path / 'u.sqlite3'}", tmp_path / "u", workers=2)
    process = gunicorn("--bind", f"unix:{path}", env=server.env)
    try:

        def answer() -> bytes:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(str(path))
                sock.sendall(REQUEST)
                return read_answer(sock)

        wait_until(lambda: path.exists(), timeout=30, what="gunicorn's Unix socket")
        for _ in range(10):
            assert answer().startswith(b"HTTP/1.1 200")
    finally:
        process.terminate()
        process.communicate(timeout=30)
