"""One commit point: the request, the command or the job commits; services only flush.

A service (``*/services.py``) changes rows and flushes; it never commits or rolls back.
Whoever called it decides, once, at its boundary:

* **A request** commits in ``after_request`` when its response is a success or a redirect
  (status < 400) and rolls back otherwise (4xx, 5xx, and an exception, which becomes a 500
  whose response passes through ``after_request`` too). ``after_request`` runs before the
  response leaves the application, so a redirect after a POST reaches the browser only
  once its change is committed, and a commit that fails turns into a 500 instead of a
  success that was never stored. No view streams a response that reads the database; one
  that did would have to read inside ``stream_with_context`` and commit nothing there.
* **A ``flask`` command** commits when it returns (or exits with status 0) and rolls back
  when it fails: ``@commits`` on the command.
* **Anything else** (tests, scripts, ``demo.seed_demo``'s callers) commits itself.

Within that one transaction a route that catches a service's refusal and answers with
the form again (status 200) wraps the call in ``all_or_nothing()``: a savepoint, so what
the refused call wrote is undone and the rest of the request still commits.

The deliberate exceptions, each written where it happens:

* ``database.begin_write()`` (SQLite) commits a *reading* transaction in progress before
  it begins ``BEGIN IMMEDIATE``: call it before the first write of a request.
* ``finish_reading()`` ends a reading transaction before slow work that needs no database
  (the roster upload parses the file holding no lock).
* ``registration.services.register_for_activity`` retries on a short-code collision
  inside a savepoint, and check-in's fast path (``checkin/fast.py``, PostgreSQL) runs its
  one statement on its own connection in autocommit.

Work that must follow a commit — forgetting cached door permissions — is queued with
``after_commit(fn)``: it runs once the transaction it belongs to has committed, and is
dropped when that transaction rolls back. Its mirror ``after_rollback(fn)`` undoes work
done outside the database for rows that are not kept — a file written to the storage for a
photo row — when the transaction (or the savepoint) it was queued in rolls back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import Flask, Response
from sqlalchemy import event
from sqlalchemy.orm import Session

from .database import begin_write
from .extensions import db

_AFTER_COMMIT = "sciweek_after_commit"
_AFTER_ROLLBACK = "sciweek_after_rollback"


def init_app(app: Flask) -> None:
    app.after_request(_commit_or_roll_back)
    app.teardown_request(_roll_back_after_unhandled_error)


def _commit_or_roll_back(response: Response) -> Response:
    """The request's one commit point (see the module docstring)."""
    if not db.session.registry.has():
        return response  # the request never opened a session (a scan's fast path)
    session = db.session()
    if not session.in_transaction() and not session.info.get(_AFTER_COMMIT):
        return response  # nothing read or written through the session
    if response.status_code < 400:
        db.session.commit()
    else:
        db.session.rollback()
    return response


def _roll_back_after_unhandled_error(error: BaseException | None) -> None:
    """An exception no handler answered (``PROPAGATE_EXCEPTIONS``, as in tests and debug
    mode) skips ``after_request``: roll back here, even if the app context lives on."""
    if error is not None:
        db.session.rollback()


def commits(command: Callable) -> Callable:
    """For ``flask`` commands: commit when the command succeeds, roll back when it fails.

    Success is returning, or ``sys.exit(0)``; an exception (``click.ClickException``, a
    non-zero exit) rolls back and goes on. Put it directly above the function.
    """

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            result = command(*args, **kwargs)
        except SystemExit as exc:
            if exc.code in (None, 0):
                db.session.commit()
            else:
                db.session.rollback()
            raise
        except BaseException:
            db.session.rollback()
            raise
        db.session.commit()
        return result

    return run


@contextmanager
def all_or_nothing() -> Iterator[None]:
    """A savepoint around a service call whose refusal the caller answers itself.

    The block's changes are flushed when it ends and stay in the request's transaction;
    when it raises (a refusal, an ``IntegrityError`` at the flush), they are undone, the
    session stays usable for rendering the answer, and the exception goes on.
    """
    # SQLite: a savepoint is for writing; take the write lock first, since begin_write()
    # must not commit the outer transaction from inside the savepoint.
    begin_write()
    with db.session.begin_nested():
        yield


def finish_reading() -> None:
    """End the transaction in progress, which has written nothing, before slow work.

    Rolls back rather than commits: should anything have been flushed, it is not
    committed half-way through the request.
    """
    db.session.rollback()


def after_commit(fn: Callable[[], None], session: Session | None = None) -> None:
    """Run ``fn`` once the current transaction commits; forget it if it rolls back."""
    session = session if session is not None else db.session()
    session.info.setdefault(_AFTER_COMMIT, []).append(fn)


def after_commit_once(key: str, fn: Callable[[], None], session: Session | None = None) -> None:
    """``after_commit(fn)``, unless a function was already queued under ``key`` in this
    transaction (e.g. one delivery job per transaction, however many messages it wrote)."""
    session = session if session is not None else db.session()
    queued = session.info.setdefault(_AFTER_COMMIT, [])
    if any(getattr(queued_fn, "sciweek_once_key", None) == key for queued_fn in queued):
        return
    fn.sciweek_once_key = key  # type: ignore[attr-defined]
    queued.append(fn)


def after_rollback(fn: Callable[[], None], session: Session | None = None) -> None:
    """Run ``fn`` if the transaction in progress — or the savepoint, inside
    ``all_or_nothing()`` — rolls back; forget it once the whole transaction commits."""
    session = session if session is not None else db.session()
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_AFTER_ROLLBACK, []).append((transaction, fn))


def _inside(transaction, outer) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the transaction has not committed yet
    session.info.pop(_AFTER_ROLLBACK, None)
    for fn in session.info.pop(_AFTER_COMMIT, ()):
        fn()


@event.listens_for(Session, "after_soft_rollback")
def _forget_after_rollback(session: Session, previous_transaction) -> None:
    # A savepoint's rollback keeps the queue: running one more invalidation is harmless,
    # missing one is not. The outermost transaction's rollback drops it.
    if previous_transaction.parent is None:
        session.info.pop(_AFTER_COMMIT, None)
    queued = session.info.get(_AFTER_ROLLBACK)
    if queued:
        undone = [fn for transaction, fn in queued if _inside(transaction, previous_transaction)]
        session.info[_AFTER_ROLLBACK] = [
            (transaction, fn)
            for transaction, fn in queued
            if not _inside(transaction, previous_transaction)
        ]
        for fn in undone:
            fn()
