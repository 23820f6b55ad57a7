"""Counting changes that calendar feeds show, in the transaction that makes them.

A feed's ETag is built from the counters of its scopes (``models.FeedChange``), so
answering a poll costs one indexed read instead of an aggregate over every session. For
that to be right, every change a feed shows must raise a counter in its own transaction:

* ORM changes are found here, after each flush, from what the flush wrote: activities
  (any column but the place count), their sessions and departments, towns, villages,
  campaigns and departments raise ``public``; registrations, and a user's role,
  department, town and checker assignments raise that user's scope.
* Statements that bypass the ORM call :func:`note_feed_change` themselves (the
  registration insert, ``registration/services.py``).

A change raises the counter even when no feed's bytes change (a department renamed,
a session's note): a rebuild costs little, a stale feed is wrong.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from time import monotonic
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import InstanceState, Session

from .models import (
    Activity,
    ActivitySession,
    Campaign,
    Department,
    FeedChange,
    Registration,
    Town,
    User,
    Village,
    utcnow,
)
from .transactions import after_commit

PUBLIC_SCOPE = "public"
_PENDING = "sciweek_feed_changes_noted"
# Columns whose change alone is not something a feed shows (the place count changes with
# every registration; raising ``public`` for it would serialise registrations on one row).
_ACTIVITY_COLUMNS_NOT_SHOWN = frozenset({"confirmed_count", "updated_at"})
_PUBLIC_MODELS = (ActivitySession, Town, Village, Campaign, Department)
_REGISTRATION_FIELDS = ("status", "user_id", "activity_id")
_USER_FIELDS = ("role", "department_id", "department", "town_id", "town", "assigned_activities")
_TABLE = FeedChange.__table__


def user_scope(user_id: int) -> str:
    """The scope of what only ``user_id``'s personal feed shows."""
    return f"user:{user_id}"


def note_feed_change(session: Session, scopes: Iterable[str]) -> None:
    """Count a change of ``scopes`` in ``session``'s transaction.

    The counters are raised just before the transaction commits (rows made as needed),
    after every other write of it: a counter's row lock is taken last and held only
    while the commit lasts. For writers that bypass the ORM; ORM changes are noted by
    the flush hook below.
    """
    session.info.setdefault(_PENDING, set()).update(scopes)


def _raise_counters(session: Session, scopes: Iterable[str]) -> None:
    scopes = sorted(set(scopes))  # one order for every writer
    if not scopes:
        return
    connection = session.connection()
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    now = utcnow()
    for scope in scopes:
        stmt = insert(_TABLE).values(scope=scope, counter=1, changed_at=now)
        connection.execute(
            stmt.on_conflict_do_update(
                index_elements=[_TABLE.c.scope],
                set_={"counter": _TABLE.c.counter + 1, "changed_at": now},
            )
        )
    after_commit(forget_versions, session)


@event.listens_for(Session, "before_commit")
def _raise_noted_counters(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the transaction goes on
    session.flush()  # the last flush comes after this hook otherwise: note what it writes
    _raise_counters(session, session.info.pop(_PENDING, ()))


@event.listens_for(Session, "after_soft_rollback")
def _forget_noted_changes(session: Session, previous_transaction) -> None:
    # A savepoint rolled back keeps what was noted (counting a change that did not happen
    # costs a rebuild; missing one is a stale feed); the whole transaction drops it.
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)


def _changed(obj: Any, names: Iterable[str]) -> bool:
    attrs = inspect(obj).attrs
    return any(attrs[name].history.has_changes() for name in names)


def _activity_changed(activity: Activity) -> bool:
    state: InstanceState = inspect(activity)
    return any(
        attr.history.has_changes()
        for attr in state.attrs
        if attr.key not in _ACTIVITY_COLUMNS_NOT_SHOWN
    )


def _registration_scopes(registration: Registration, *, whole: bool) -> set[str]:
    if not whole and not _changed(registration, _REGISTRATION_FIELDS):
        return set()
    state: InstanceState = inspect(registration)
    user_ids = {registration.user_id, *state.attrs.user_id.history.deleted}
    return {user_scope(user_id) for user_id in user_ids if user_id is not None}


def scopes_changed(session: Session) -> set[str]:
    """The scopes whose feeds the flush in progress changes (read in ``after_flush``)."""
    scopes: set[str] = set()
    for obj in session.new | session.deleted:
        if isinstance(obj, (Activity, *_PUBLIC_MODELS)):
            scopes.add(PUBLIC_SCOPE)
        elif isinstance(obj, Registration):
            scopes |= _registration_scopes(obj, whole=True)
    for obj in session.dirty:
        if isinstance(obj, Activity):
            if _activity_changed(obj):
                scopes.add(PUBLIC_SCOPE)
        elif isinstance(obj, _PUBLIC_MODELS):
            if session.is_modified(obj):
                scopes.add(PUBLIC_SCOPE)
        elif isinstance(obj, Registration):
            scopes |= _registration_scopes(obj, whole=False)
        elif isinstance(obj, User) and _changed(obj, _USER_FIELDS):
            scopes.add(user_scope(obj.id))
    return scopes


@event.listens_for(Session, "after_flush")
def _count_feed_changes(session: Session, flush_context) -> None:
    # After the flush the rows are written (new ones have ids) and new/dirty/deleted and
    # the attributes' history still describe what it wrote.
    note_feed_change(session, scopes_changed(session))


# --- versions read recently, per process ----------------------------------------------


@dataclass
class _Remembered:
    value: Any
    read_at: float
    generation: int


class RecentReads:
    """Small database reads behind a feed's ETag, remembered for ``seconds``.

    A calendar poll must cost less than any database round trip to come near a trivial
    request (issue 15), so each process keeps what it read for a few seconds. A change
    committed by this process forgets everything at once (:func:`forget_versions`);
    another process's change is seen within ``seconds``, and 0 reads every time.
    """

    def __init__(self) -> None:
        self._values: dict[tuple, _Remembered] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple, seconds: float, read: Callable[[], Any]) -> Any:
        if seconds <= 0:
            return read()
        now = monotonic()
        with self._lock:
            remembered = self._values.get(key)
        if (
            remembered is not None
            and remembered.generation == _generation
            and now - remembered.read_at < seconds
        ):
            return remembered.value
        generation = _generation  # before reading: a change during the read is not hidden
        value = read()
        with self._lock:
            if len(self._values) > 10_000:
                self._values.clear()
            self._values[key] = _Remembered(value, now, generation)
        return value


_generation = 0
_generation_lock = threading.Lock()


def forget_versions() -> None:
    """Forget every remembered read in this process: a feed change has just committed."""
    global _generation
    with _generation_lock:
        _generation += 1
