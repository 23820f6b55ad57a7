"""gunicorn as deployed (README's command reads the project's gunicorn.conf.py): a connection
that has not sent its request yet must not keep a gthread worker's thread from others."""

from __future__ import annotations

import socket
import time

import requests

from .live_server import LiveServer

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
