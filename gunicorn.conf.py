"""gunicorn settings read from the project folder (gunicorn's default ``./gunicorn.conf.py``).

Command-line options (workers, bind, ...) still come from the deploy command in README.md.
"""

import errno as _errno
import os as _os
import socket as _socket

from gunicorn import systemd as _systemd
from gunicorn.http import wsgi as _gunicorn_wsgi
from gunicorn.workers import gthread as _gthread

# gunicorn writes "Server: gunicorn" into every response itself (gunicorn/http/wsgi.py:
# ``Response.__init__`` copies the module's SERVER into ``self.version``, and
# ``default_headers`` sends it; HTTP/2 responses reuse it). It has no setting for this,
# and a Server header from the application would be sent in addition, not instead.
# Name the site instead of the server software; workers inherit this from the master.
# tests/test_security_headers.py checks it against a real gunicorn.
_gunicorn_wsgi.SERVER = "sciweek"


# --- gthread: a thread only for a connection that has something to read ------------------
#
# gunicorn 27's gthread worker hands each *new* connection to a pool thread, which then
# waits up to 5 s (``DEFAULT_WORKER_DATA_TIMEOUT``) for the request's first byte before
# giving the connection back to the worker's poller. A client that opens its connection
# before it has a request to send (wrk's paced runs; browsers' and phones' pre-connects)
# so holds one of the ``--threads`` meanwhile, and every request behind it waits: the paced
# check-in benchmark (50 connections, ~1 request/s each, 2 workers x 8 threads) had a p99 of
# 0.3-0.7 s on a bare ``SELECT 1`` (``/healthz/db``) with a p50 of 2 ms. Kept-alive
# connections never had this: they go back to the poller between requests.
#
# Here a new connection with nothing to read yet goes straight to the poller (gunicorn's own
# deferral path, ``_DEFER``), which hands it to a thread once it is readable; one with its
# request already there is served at once, as before. Everything else is gunicorn's (the
# wait for the rest of a request, the body drain, keep-alive). A silent connection is
# closed after ``keepalive`` seconds (gunicorn's deferral path; it was 5 s + ``keepalive``).
# Measured: paced /healthz/db p99 7 ms instead of 0.3-0.7 s (benchmarks/RESULTS.md);
# tests/test_gunicorn_conf.py fails without it. gunicorn is pinned to 27.x in pyproject.toml
# because this uses the worker's internals: the check below stops the server from starting
# rather than silently serving without it.


def _patch_gthread(gthread) -> None:
    missing = [
        name
        for name, where in (("_DEFER", gthread), ("wait_for_data", gthread.TConn))
        if not hasattr(where, name)
    ]
    if missing:
        raise RuntimeError(
            f"gunicorn.conf.py: gunicorn's gthread worker has no {', '.join(missing)}; "
            "review _patch_gthread for this gunicorn version"
        )
    stock_handle = gthread.ThreadWorker.handle
    if getattr(stock_handle, "sciweek_defers_silent_connections", False):
        return

    def handle(self, conn):
        if not conn.initialized and not conn.data_ready and not conn.wait_for_data(0):
            return gthread._DEFER
        return stock_handle(self, conn)

    handle.sciweek_defers_silent_connections = True  # type: ignore[attr-defined]
    gthread.ThreadWorker.handle = handle


_patch_gthread(_gthread)


# --- every worker its own listening socket, so that connections are spread over them ------
#
# gunicorn's master opens one listening socket and every worker accepts from it. A burst of
# new connections then goes mostly to whichever worker wakes first: wrk's 50 kept-alive
# connections landed 50/0, 45/5, 3/47 on two workers, and that one process (one GIL) served
# them all while the other core idled (/healthz/db: 1,429 req/s at 50/0, 3,244 at 21/29).
# A proxy keeping a few long-lived upstream connections would see the same. gunicorn's own
# ``reuse_port`` gives each worker its own socket bound with SO_REUSEPORT (arbiter.py,
# ``spawn_worker``), and the kernel spreads new connections over them by a hash of their
# addresses. It is turned on here for the gthread worker (README's deployment) on TCP binds
# only: Unix sockets cannot be shared so, and sockets handed over by systemd are already
# bound. tests/test_gunicorn_conf.py checks the spread against a real gunicorn.
#
# SO_REUSEPORT would also let a second server started by mistake on the same port share it
# silently instead of failing; the check below keeps gunicorn's "Address already in use".
# Trade-off: connections still waiting in a worker's own queue when that worker stops are
# reset (with one shared socket another worker would have taken them).


def _port_is_free(address: tuple) -> bool:
    family = _socket.AF_INET6 if ":" in address[0] else _socket.AF_INET
    with _socket.socket(family, _socket.SOCK_STREAM) as probe:
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == _errno.EADDRINUSE:
                return False
            raise
    return True


def on_starting(server) -> None:
    cfg = server.cfg
    addresses = cfg.address
    tcp_only = all(isinstance(address, tuple) for address in addresses)
    handed_over = _systemd.listen_fds(unset_environment=False) or "GUNICORN_FD" in _os.environ
    # Only gthread workers: a sync worker busy with one slow request would leave the
    # connections hashed to its own socket waiting while other workers idle (with one shared
    # socket a free worker takes them). A gthread worker's poller accepts while its threads
    # work, with one socket or its own, so its own socket costs it nothing.
    threaded = cfg.worker_class_str.lower().endswith(("gthread", "threadworker"))
    if not threaded or not tcp_only or handed_over or not hasattr(_socket, "SO_REUSEPORT"):
        return
    if "GUNICORN_PID" not in _os.environ:  # not a re-exec (USR2), whose parent holds the port
        taken = [
            f"{host}:{port}" for host, port in addresses if port and not _port_is_free((host, port))
        ]
        if taken:
            raise RuntimeError(f"Address already in use: {', '.join(taken)}")
    cfg.set("reuse_port", True)
