"""Database engine behaviour that differs between SQLite and PostgreSQL.

SQLite: the write lock only when writing
----------------------------------------
SQLite has one write lock per database. In WAL mode (set on every connection) readers
never wait for it and never block the writer, so:

* **Transactions begin DEFERRED** (a plain ``BEGIN``): a request that only reads takes
  no lock and answers while another request writes, however long that one takes.

* **A transaction that will write begins IMMEDIATE**, taking the write lock before its
  first read. SQLite cannot turn a reading transaction into a writing one while another
  connection holds the lock or has committed since the read began: the write fails at
  once with SQLITE_BUSY ("database is locked") instead of waiting for ``busy_timeout``.
  ``BEGIN IMMEDIATE`` waits its turn (up to ``SQLITE_BUSY_TIMEOUT_MS``), and what the
  transaction then reads cannot change until it commits: decisions such as "a place is
  free" or "not checked in yet" are made on the latest data. Two ways in:

  - ``begin_write()``, called by the services that change state, right before the
    reads their change depends on (registering, cancelling, checking in, undoing a
    check-in, noting an API token's use, issuing a personal feed link). It ends a
    read-only transaction in progress (COMMIT: nothing was written; objects loaded so
    far are reloaded when next used) and begins ``BEGIN IMMEDIATE``. This is how GET
    requests that write (a first visit to ``/account/calendar``, a scanner token's first
    use on the roster download) take the lock correctly.
  - Requests with an unsafe method (POST, PUT, PATCH, DELETE), and work outside any
    request (``flask`` commands, scripts, tests), begin every transaction IMMEDIATE: a
    safety net, so a route that writes through the ORM never writes from a reading
    transaction. A view whose POSTs write nothing (the log-in form) is marked
    ``@reads_only`` and begins DEFERRED like a GET.

* **Write transactions stay short.** The lock is held from the transaction's first
  query to COMMIT. Slow work that needs no database — hashing a password, parsing an
  upload — is done before that first query or after committing, never in between
  (``create_user`` hashes first; log-in reads only; the roster upload ends its reading
  transaction before parsing).

PostgreSQL locks rows, not the database: ``begin_write()`` does nothing there, and the
services lock the rows they decide on (see ``registration.services``).

PostgreSQL: a round trip to check a connection only when it may have gone stale
-------------------------------------------------------------------------------
SQLAlchemy's ``pool_pre_ping`` checks every connection it hands out with one round trip,
which doubles the round trips of a request that makes one (a scan at the door). Here a
pooled connection is checked only when it has lain idle for
``SCIWEEK_DATABASE_PING_IDLE_SECONDS`` (default 10 s): a server restarted or a connection
dropped by a firewall during a quiet spell is noticed and replaced before use, as with
``pool_pre_ping``. A connection dropped while in constant use fails the statement that uses
it; SQLAlchemy then invalidates it and every older connection of the pool, so one request
per process sees the error (the scan retries it: ``checkin/fast.py``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextvars import ContextVar
from time import monotonic

from flask import Flask, current_app, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

from .extensions import db
from .models.types import UTCDateTime

SQLITE_BUSY_TIMEOUT_MS = 15000
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

# Connection.info key: the transaction on this connection began IMMEDIATE.
_HOLDS_WRITE_LOCK = "sciweek_holds_write_lock"
# Set by begin_write() around the BEGIN it causes.
_begin_immediate_now: ContextVar[bool] = ContextVar("sciweek_begin_immediate", default=False)


@event.listens_for(Engine, "connect")
def _configure_sqlite(dbapi_connection, connection_record):
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    # Let SQLAlchemy, not the driver, decide when transactions begin (see _begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _writes_by_default() -> bool:
    """Whether a transaction beginning now takes the write lock without being asked."""
    if not has_request_context():
        return True  # flask commands, scripts, tests
    if request.method in SAFE_METHODS:
        return False
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return not getattr(view, "sciweek_reads_only", False)


@event.listens_for(Engine, "begin")
def _begin(conn):
    if conn.dialect.name != "sqlite":
        return
    immediate = _begin_immediate_now.get() or _writes_by_default()
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
    conn.info[_HOLDS_WRITE_LOCK] = immediate


def begin_write(session=None) -> None:
    """Make sure the current transaction may write: on SQLite, hold the write lock.

    Call before the reads a state change depends on, and before changing anything:
    a reading (DEFERRED) transaction in progress is committed — it wrote nothing — and
    a new one begins IMMEDIATE, waiting for the lock if another connection holds it.
    Objects loaded before are expired and reload, current, when next used. Does
    nothing when the transaction already holds the lock, and nothing on PostgreSQL.
    """
    if session is None:
        session = db.session()  # the request's (app context's) Session
    if session.get_bind().dialect.name != "sqlite":
        return
    if session.in_transaction():
        if session.connection().info.get(_HOLDS_WRITE_LOCK):
            return
        session.commit()
    token = _begin_immediate_now.set(True)
    try:
        session.connection()  # BEGIN IMMEDIATE, now
    finally:
        _begin_immediate_now.reset(token)


def reads_only(view: Callable) -> Callable:
    """Mark a view whose unsafe-method requests write nothing to the database.

    Its transactions begin DEFERRED, like a GET's, so it never holds SQLite's write
    lock (the log-in form: password hashing takes 0.1-0.2 s). Should it ever write,
    it must call ``begin_write()`` first. Put it directly above the function.
    """
    view.sciweek_reads_only = True  # type: ignore[attr-defined]
    return view


def render_migration_item(type_, obj, autogen_context):
    """Write our column types into migrations as plain SQLAlchemy types."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def init_app(app: Flask) -> None:
    """Importing this module installs the SQLite listeners; PostgreSQL engines get the
    check of idle connections (see the module docstring)."""
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "postgresql":
        _ping_idle_connections(engine, float(app.config["SCIWEEK_DATABASE_PING_IDLE_SECONDS"]))


_RETURNED_AT = "sciweek_returned_at"


def _ping_idle_connections(engine: Engine, idle_seconds: float) -> None:
    dialect = engine.dialect

    @event.listens_for(engine.pool, "checkin")
    def _returned(dbapi_connection, connection_record) -> None:
        if connection_record is not None:
            connection_record.info[_RETURNED_AT] = monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _check_if_idle(dbapi_connection, connection_record, connection_proxy) -> None:
        returned_at = connection_record.info.get(_RETURNED_AT)
        if returned_at is None or monotonic() - returned_at < idle_seconds:
            return  # just opened, or in use moments ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and checks out another (a new one).
            raise DisconnectionError("idle connection is no longer usable") from exc
