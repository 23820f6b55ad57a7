"""The scan hot path on PostgreSQL: cached door permissions and one SQL statement per scan.

``POST /api/v1/checkins`` is the one URL that many phones hit at once. ``services.scan``
(its only entry) uses this module on PostgreSQL unless ``SCIWEEK_CHECKIN_FAST_PATH`` is off;
then a scan costs one statement, run in autocommit (one statement is one transaction: no
BEGIN and COMMIT round trips, and an error anywhere in it undoes all of it):

* **Cached look-ups.** Each process keeps, for ``SCIWEEK_CHECKIN_CACHE_SECONDS`` (default
  10 s, 0 turns the caches off):

  - token hash → the token's user (id, role, department), filled by
    ``services.user_for_token`` (which also refuses disabled and non-staff users);
  - activity id → its sessions (to pick the session);
  - (user, activity) → whether the user may check in there, decided by
    ``permissions.can_check_in`` on the real rows.

  A change made through this process (revoking a token, disabling a user, assigning a
  checker, editing an activity or its sessions) clears the caches once it has committed
  (the services send ``signals.door_access_changed``); other processes see it within the
  cache time. What a scan *decides* — the registration, its status, the activity's
  cancellation, the check-in — is never cached: the statement reads it.

* **One statement** (data-modifying CTEs, built with SQLAlchemy Core in ``_scan_statement``):
  find the registration (by secret hash or short code) and its refusal, from the same rule
  the general path applies to a loaded row (``Registration.scan_refusal``: wrong activity,
  cancelled, waitlisted); unless the session's check-in window is closed at the scan's time
  (decided in Python before the statement, from the cached session times, and bound as
  ``not_now``: ``checkin.windows``), ``INSERT`` the check-in ``ON CONFLICT DO NOTHING`` (the partial
  unique index ``uq_checkins_live`` decides races, as on the general path); read the live
  check-in when there was one already; answer by the same ``scan_outcome`` as the general
  path; ``INSERT`` the scan-log row ``ON CONFLICT (user_id, nonce) DO NOTHING``; and read
  the activity's confirmed places. Each form of the statement is compiled once per
  process (``_compiled``); a scan binds its values.

  Two cases leave the statement to the general path: a repeated nonce (the scan log
  already holds the answer, and a guard fails the whole statement if it would otherwise
  have checked in — a resent scan that was refused or undone since) and a race lost to a
  check-in committed after this statement's snapshot began (the insert did nothing, but
  the winner's row is not visible to the same statement). In both nothing was written,
  ``scan_ticket`` returns None, and ``services.scan`` runs the general path in a new
  transaction, which answers from the scan log or sees the winner.

* **The live counter** (``counts.checked_in``) is counted in that statement at most once a
  second per session and process (``COUNT_SECONDS``); in between, the process adds its own
  new check-ins to the last count. Check-ins made through other processes show within a
  second; an undo here makes the next scan count afresh.

SQLite, and PostgreSQL with ``SCIWEEK_CHECKIN_FAST_PATH=0``, take the general path in
``services`` for every scan.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from time import monotonic
from typing import Any

import psycopg
from flask import current_app
from sqlalchemy import (
    BigInteger,
    Boolean,
    Integer,
    String,
    bindparam,
    case,
    cast,
    exists,
    false,
    func,
    literal,
    null,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Compiled
from sqlalchemy.orm import joinedload

from .. import signals
from ..extensions import db
from ..models import (
    Activity,
    CheckIn,
    Registration,
    ScanLog,
    ScanResult,
    User,
    scan_outcome,
    short_code_preference,
    utcnow,
)
from ..models.types import UTCDateTime
from ..permissions import can_check_in
from ..registration.tickets import is_well_formed_secret
from ..tokens import hash_secret
from ..transactions import after_commit
from .codes import loggable_text, parse_scanned_code

DEFAULT_CACHE_SECONDS = 10.0
# The live counter (answer["counts"]["checked_in"]) is counted afresh at most this often
# per session and process; in between, this process adds its own new check-ins.
COUNT_SECONDS = 1.0
# A cache this big is not a working set any more; start again rather than grow.
CACHE_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class DoorUser:
    """What the scan needs of a token's user (the scan itself uses ``id`` only)."""

    id: int
    role: str
    department_id: int | None


@dataclass(frozen=True)
class DoorSession:
    id: int
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class DoorActivity:
    """What picking a session needs of an activity (``services.pick_session``)."""

    id: int
    sessions: tuple[DoorSession, ...]


class StaleCache(Exception):
    """The cached activity or session is gone (deleted by another process): the caches
    were cleared and nothing was written; the caller decides on the general path."""


class _Caches:
    def __init__(self, seconds: float, postgresql: bool):
        self.seconds = seconds
        self.postgresql = postgresql
        self.users: dict[str, tuple[float, DoorUser]] = {}
        self.activities: dict[int, tuple[float, DoorActivity]] = {}
        self.permissions: dict[tuple, tuple[float, bool]] = {}
        # session id -> [expires, live check-ins]; a list so it can be bumped in place.
        self.counts: dict[int, list] = {}
        self.counts_lock = threading.Lock()

    def clear(self) -> None:
        self.users.clear()
        self.activities.clear()
        self.permissions.clear()
        self.clear_counts()

    def clear_counts(self) -> None:
        with self.counts_lock:
            self.counts.clear()

    def count(self, session_id: int) -> int | None:
        """The cached live count of a session, None when it must be counted afresh."""
        entry = self.counts.get(session_id)
        if entry is None or entry[0] < monotonic():
            return None
        return entry[1]

    def counted(self, session_id: int, live: int) -> None:
        if self.seconds <= 0:
            return
        with self.counts_lock:
            if len(self.counts) >= CACHE_MAX_ENTRIES:
                self.counts.clear()
            self.counts[session_id] = [monotonic() + COUNT_SECONDS, live]

    def bump(self, session_id: int, cached: int, created: bool) -> int:
        """The cached count plus this scan's new check-in, if any."""
        with self.counts_lock:
            entry = self.counts.get(session_id)
            if entry is None:
                return cached + created
            entry[1] += created
            return entry[1]

    def get(self, table: dict, key):
        entry = table.get(key)
        if entry is None or entry[0] < monotonic():
            return None
        return entry[1]

    def put(self, table: dict, key, value) -> None:
        if self.seconds <= 0:
            return
        if len(table) >= CACHE_MAX_ENTRIES:
            table.clear()
        table[key] = (monotonic() + self.seconds, value)


_ALL_CACHES: weakref.WeakSet[_Caches] = weakref.WeakSet()


def _forget_all() -> None:
    for caches in list(_ALL_CACHES):
        caches.clear()


def _forget_counts() -> None:
    for caches in list(_ALL_CACHES):
        caches.clear_counts()


@signals.door_access_changed.connect
def _forget_all_after_commit(_sender, **_extra) -> None:
    """A token, user, activity, session, checker or department changed: every cache of this
    process forgets all it knows, once the change has committed (forgetting earlier would
    let a scan in between cache the old rows again)."""
    after_commit(_forget_all)


@signals.checkins_changed.connect
def _forget_counts_after_commit(_sender, **_extra) -> None:
    """A check-in taken back (an undo): the live counts are counted afresh after commit."""
    after_commit(_forget_counts)


def _caches() -> _Caches:
    caches = current_app.extensions.get("sciweek_door_caches")
    if caches is None:
        caches = _Caches(
            float(current_app.config.get("SCIWEEK_CHECKIN_CACHE_SECONDS", DEFAULT_CACHE_SECONDS)),
            db.engine.dialect.name == "postgresql",
        )
        current_app.extensions["sciweek_door_caches"] = caches
        _ALL_CACHES.add(caches)
    return caches


def enabled() -> bool:
    """Whether this app scans on the fast path: PostgreSQL, unless
    ``SCIWEEK_CHECKIN_FAST_PATH`` turns it off."""
    return _caches().postgresql and bool(current_app.config.get("SCIWEEK_CHECKIN_FAST_PATH", True))


def door_user_for_token(raw: str, load: Callable[[str], User | None]) -> DoorUser | None:
    """The token's user as a snapshot, from the cache or ``load`` (which refuses unknown,
    revoked, disabled and non-staff users: ``services.user_for_token``)."""
    if not raw or len(raw) > 200:
        return None
    caches = _caches()
    key = hash_secret(raw)
    user = caches.get(caches.users, key)
    if user is None:
        found = load(raw)
        if found is None:  # unknown, revoked or disabled: never cached
            return None
        user = DoorUser(id=found.id, role=found.role, department_id=found.department_id)
        caches.put(caches.users, key, user)
    return user


def door_activity(activity_id: int, user) -> DoorActivity | None:
    """The activity when ``user`` may check in there; None when there is no such activity.

    Raises ``PermissionError`` when the user may not check in for it.
    """
    caches = _caches()
    activity = caches.get(caches.activities, activity_id)
    permission_key = (user.id, user.role, user.department_id, activity_id)
    allowed = caches.get(caches.permissions, permission_key)
    if activity is None or allowed is None:
        row = db.session.get(Activity, activity_id, options=[joinedload(Activity.sessions)])
        if row is None:
            return None
        activity = DoorActivity(
            id=row.id,
            sessions=tuple(DoorSession(s.id, s.starts_at, s.ends_at) for s in row.sessions),
        )
        person = user if isinstance(user, User) else db.session.get(User, user.id)
        allowed = person is not None and can_check_in(person, row)
        caches.put(caches.activities, activity_id, activity)
        caches.put(caches.permissions, permission_key, allowed)
    if not allowed:
        raise PermissionError
    return activity


# --- the statement ---------------------------------------------------------------------

# What the statement is given per scan (typed, so PostgreSQL knows every parameter's type).
_LOOKUP = bindparam("lookup", type_=String())
_ACTIVITY_ID = bindparam("activity_id", type_=Integer())
_SESSION_ID = bindparam("session_id", type_=Integer())
_USER_ID = bindparam("user_id", type_=Integer())
_NONCE = bindparam("nonce", type_=String())
_METHOD = bindparam("method", type_=String())
_CODE = bindparam("code", type_=String())
_AT = bindparam("at", type_=UTCDateTime())
_NOW = bindparam("now", type_=UTCDateTime())
_SCANNED_AT = bindparam("scanned_at", type_=UTCDateTime())
# The session's check-in window was closed at the scan's time (``checkin.windows``, decided
# in Python from the cached session times before the statement): no check-in is inserted.
_NOT_NOW = bindparam("not_now", type_=Boolean())

# How the ticket is found: by the hash of its secret, by its short code (this activity's
# ticket first, else another activity's, which is ``wrong_activity``: the decided CTE takes
# one, ``short_code_preference``), or not at all (the scanned text is no ticket; the scan
# is still logged as invalid).
_FOUND_BY = {
    "secret": lambda: Registration.secret_hash == _LOOKUP,
    "short_code": lambda: Registration.short_code == _LOOKUP,
    "none": false,
}


def _scan_statement(kind: str, count_live: bool):
    """The whole scan as one statement (data-modifying CTEs), from the model's rules.

    ``decided``: the ticket with its refusal (``Registration.scan_refusal``); ``ins``: the
    check-in when there is no refusal, ``ON CONFLICT DO NOTHING`` on ``uq_checkins_live``;
    ``existing``: the live check-in this statement can see when the insert did nothing;
    ``outcome``: the answer (``scan_outcome``); ``logged``: the scan-log row, ``ON CONFLICT
    (user_id, nonce) DO NOTHING``. ``count_live``: count the session's live check-ins too.
    """
    checkins, scan_log = CheckIn.__table__, ScanLog.__table__
    found = (
        select(
            Registration.id,
            Registration.activity_id,
            Registration.name,
            Registration.phone,
            Registration.short_code,
            Registration.scan_refusal(_ACTIVITY_ID).label("refusal"),
            # For the answer to a ticket of another activity (its title, unless a draft).
            Activity.status.label("activity_status"),
            Activity.title.label("activity_title"),
        )
        .join(Activity, Activity.id == Registration.activity_id)
        .where(_FOUND_BY[kind]())
    )
    if kind == "short_code":
        found = found.order_by(short_code_preference(_ACTIVITY_ID)).limit(1)
    decided = found.cte("decided")
    ins = (
        insert(checkins)
        .from_select(
            ["registration_id", "session_id", "checked_in_at", "recorded_at", "method"]
            + ["checked_in_by_id"],
            select(decided.c.id, _SESSION_ID, _AT, _NOW, _METHOD, _USER_ID).where(
                decided.c.refusal.is_(None), _NOT_NOW.is_(False)
            ),
        )
        .on_conflict_do_nothing(
            index_elements=["registration_id", "session_id"],
            index_where=checkins.c.undone_at.is_(None),
        )
        .returning(checkins.c.id, checkins.c.checked_in_at)
        .cte("ins")
    )
    # The ticket's own live check-in, found through ``uq_checkins_live`` by (registration,
    # session). A join with ``decided`` let the planner read every live check-in of the
    # session and keep the ticket's: a cost that grew with each check-in at the door.
    ticket_id = select(decided.c.id).where(decided.c.refusal.is_(None)).scalar_subquery()
    existing = (
        select(checkins.c.id, checkins.c.checked_in_at)
        .where(
            checkins.c.registration_id == ticket_id,
            checkins.c.session_id == _SESSION_ID,
            checkins.c.undone_at.is_(None),
        )
        .cte("existing")
    )
    # One row whatever was found: (SELECT 1) LEFT JOIN each part ON true.
    one = select(literal(1).label("one")).subquery("one")
    outcome = (
        select(
            decided.c.id.label("registration_id"),
            decided.c.activity_id,
            decided.c.name,
            decided.c.phone,
            decided.c.short_code,
            decided.c.activity_status,
            decided.c.activity_title,
            scan_outcome(
                unknown=decided.c.id.is_(None),
                refused=decided.c.refusal.is_not(None),
                refusal=decided.c.refusal,
                checked_in_now=ins.c.id.is_not(None),
                checked_in_before=existing.c.id.is_not(None),
                not_now=_NOT_NOW,
            ).label("result"),
            func.coalesce(ins.c.id, existing.c.id).label("checkin_id"),
            func.coalesce(ins.c.checked_in_at, existing.c.checked_in_at).label("checked_in_at"),
        )
        .select_from(
            one.outerjoin(decided, true()).outerjoin(ins, true()).outerjoin(existing, true())
        )
        .cte("outcome")
    )
    log_columns = ["user_id", "nonce", "activity_id", "session_id", "registration_id"]
    log_columns += ["checkin_id", "method", "result", "code", "scanned_at", "checked_in_at"]
    log_columns += ["recorded_at"]
    logged = (
        insert(scan_log)
        .from_select(
            log_columns,
            select(
                _USER_ID,
                _NONCE,
                _ACTIVITY_ID,
                _SESSION_ID,
                outcome.c.registration_id,
                outcome.c.checkin_id,
                _METHOD,
                outcome.c.result,
                _CODE,
                _SCANNED_AT,
                outcome.c.checked_in_at,
                _NOW,
            ).where(outcome.c.result.is_not(None)),
        )
        .on_conflict_do_nothing(index_elements=["user_id", "nonce"])
        .returning(scan_log.c.id)
        .cte("logged")
    )
    log_id = select(logged.c.id).scalar_subquery()
    live = (
        select(func.count())
        .select_from(checkins)
        .where(checkins.c.session_id == _SESSION_ID, checkins.c.undone_at.is_(None))
        .scalar_subquery()
        if count_live
        else cast(null(), BigInteger)
    )
    return select(
        outcome,
        log_id.label("log_id"),
        live.label("live"),
        select(Activity.confirmed_count)
        .where(Activity.id == _ACTIVITY_ID)
        .scalar_subquery()
        .label("expected"),
        select(Activity.over_capacity_count)
        .where(Activity.id == _ACTIVITY_ID)
        .scalar_subquery()
        .label("over_capacity"),
        # A resent nonce whose first scan did not check in (refused, or undone since) must
        # not check in now: divide by zero, which fails and so undoes the whole statement.
        (literal(1) // case((log_id.is_(None) & exists(select(ins.c.id)), 0), else_=1)).label(
            "guard"
        ),
    )


# SQLAlchemy 2.0 cannot put a statement with ON CONFLICT in its compiled cache (the
# PostgreSQL INSERT has no cache key), so it would compile this one on every scan, which
# costs more than the scan's round trip. Each form is compiled once per app (engine), with
# its parameters' converters; a scan only binds its values and runs the SQL text on the
# driver's connection (SQLAlchemy's execution context would cost a tenth of the request).
_FORMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_COMPILING = threading.Lock()
# A pooled connection found dropped (a database restart) is replaced; so many tries.
_ATTEMPTS = 3


@dataclass(frozen=True)
class _Form:
    """One compiled form of the statement: its SQL text and how its values are bound."""

    compiled: Compiled
    sql: str
    converters: dict[str, Callable[[Any], Any]]

    def values(self, params: dict[str, Any]) -> dict[str, Any]:
        values = dict(self.compiled.construct_params(params) or {})
        for name, convert in self.converters.items():
            values[name] = convert(values[name])
        return values


def _form(dialect, kind: str, count_live: bool) -> _Form:
    forms = _FORMS.get(dialect)
    form = forms.get((kind, count_live)) if forms is not None else None
    if form is None:
        with _COMPILING:
            forms = _FORMS.setdefault(dialect, {})
            form = forms.get((kind, count_live))
            if form is None:
                compiled = _scan_statement(kind, count_live).compile(dialect=dialect)
                converters = {}
                for bind, name in compiled.bind_names.items():
                    convert = bind.type.bind_processor(dialect)
                    if convert is not None:
                        converters[name] = convert
                form = _Form(compiled, compiled.string, converters)
                forms[kind, count_live] = form
    return form


def cast_connection(driver_connection: Any) -> psycopg.Connection:
    """The pooled connection's psycopg connection (this module runs on PostgreSQL only)."""
    if not isinstance(driver_connection, psycopg.Connection):
        raise TypeError("the scan's fast path needs psycopg")
    return driver_connection


class _GuardFailed(Exception):
    """The statement's guard divided by zero: a resent nonce that must not check in."""


def _run(kind: str, count_live: bool, params: dict[str, Any]) -> Any:
    """Run the statement in autocommit (one statement, one transaction: no BEGIN and COMMIT
    round trips; an error anywhere undoes all of it) and return its one row.

    Raises ``StaleCache`` on a foreign-key failure and ``_GuardFailed`` for the guard. A
    connection the server had dropped is thrown away and the statement runs again on
    another: the first attempt then wrote nothing, or it committed and the retry's
    repeated nonce is answered from the scan log.
    """
    engine = db.engine
    form = _form(engine.dialect, kind, count_live)
    values = form.values(params)
    for attempt in range(1, _ATTEMPTS + 1):
        pooled = engine.raw_connection()
        connection = cast_connection(pooled.driver_connection)
        try:
            connection.autocommit = True
            row = connection.execute(form.sql, values).fetchone()
            connection.autocommit = False
            return row
        except psycopg.Error as exc:
            if connection.broken or connection.closed:
                pooled.invalidate(exc)
                if attempt < _ATTEMPTS:
                    continue
                raise
            connection.autocommit = False
            if isinstance(exc, psycopg.errors.IntegrityError):
                raise StaleCache from None
            if exc.sqlstate == "22012":  # division by zero: the guard
                raise _GuardFailed from None
            raise
        finally:
            pooled.close()
    raise AssertionError("unreachable")


def counts_of(checked_in: int, expected: int, over_capacity: int) -> dict[str, int]:
    """The live counter as every answer gives it (this path and ``services.session_counts``):
    ``over_capacity`` only when someone was admitted beyond capacity (超额签到)."""
    counts = {"checked_in": checked_in, "expected": expected}
    if over_capacity:
        counts["over_capacity"] = over_capacity
    return counts


@dataclass(frozen=True)
class FastScan:
    """What the statement decided and wrote; ``services.scan`` makes the answer of it."""

    result: ScanResult
    checkin_id: int | None
    checked_in_at: datetime | None
    counts: dict[str, int]
    # The ticket found (id, name, phone, short_code), and its activity's status and title.
    registration: tuple | None
    ticket_activity: tuple[str, str] | None


def scan_ticket(
    user,
    activity: DoorActivity,
    session: DoorSession,
    text_scanned: str,
    *,
    base_url: str | Sequence[str],
    nonce: str | None = None,
    scanned_at: datetime | None = None,
    method: str = "scan",
    not_now: bool = False,
) -> FastScan | None:
    """The scan in one statement: the same decision and rows as the general path.
    ``not_now``: the session's check-in window is closed at the scan's time (no check-in;
    a live one made earlier still answers ``already_checked_in``).

    None when the statement wrote nothing and the general path must answer (a repeated
    nonce, or a race lost to a check-in the statement could not see). Raises
    ``StaleCache`` when the cached activity or session is gone.
    """
    code = parse_scanned_code(text_scanned, base_url)
    if code is None:
        kind, lookup, logged_code = "none", "", loggable_text(text_scanned)
    elif code.kind == "secret":
        well_formed = is_well_formed_secret(code.value)
        kind = "secret" if well_formed else "none"
        lookup = hash_secret(code.value) if well_formed else ""
        logged_code = code.loggable
    else:
        kind, lookup, logged_code = "short_code", code.value, code.loggable
    now = utcnow()
    at = scanned_at or now
    caches = _caches()
    cached_count = caches.count(session.id)
    params = {
        "lookup": lookup,
        "activity_id": activity.id,
        "session_id": session.id,
        "user_id": user.id,
        "nonce": nonce,
        "method": method,
        "code": logged_code,
        "at": at,
        "now": now,
        "scanned_at": scanned_at,
        "not_now": not_now,
    }
    try:
        row = _run(kind, cached_count is None, params)
    except StaleCache:
        # A foreign key to a session or activity deleted since it was cached. The caller
        # reads afresh what this request's ORM session loaded.
        db.session.expire_all()
        caches.clear()
        raise
    except _GuardFailed:
        return None
    (registration_id, _activity_id, name, phone, short_code, activity_status, activity_title,
     result, checkin_id, checked_in_at, log_id, live_count, expected, over_capacity,
     _guard) = row  # fmt: skip
    if result is None or log_id is None:
        return None
    created = result == ScanResult.OK
    if cached_count is None:
        # The statement's snapshot does not hold its own new check-in.
        live = int(live_count) + created
        caches.counted(session.id, live)
    else:
        live = caches.bump(session.id, cached_count, created)
    found = registration_id is not None
    return FastScan(
        result=ScanResult(result),
        checkin_id=checkin_id,
        # A new check-in answers with the time this scan gave, as on the general path.
        checked_in_at=at if created else _utc(checked_in_at),
        counts=counts_of(live, int(expected or 0), int(over_capacity or 0)),
        registration=(registration_id, name, phone, short_code) if found else None,
        ticket_activity=(activity_status, activity_title) if found else None,
    )


def _utc(value: datetime | None) -> datetime | None:
    """A ``timestamptz`` as the driver reads it, in UTC as ``UTCDateTime`` gives it."""
    return value.astimezone(UTC) if value is not None else None
