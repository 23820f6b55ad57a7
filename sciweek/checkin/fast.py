"""The scan hot path on PostgreSQL: cached door permissions and one SQL statement per scan.

``POST /api/v1/checkins`` is the one URL that many phones hit at once. On PostgreSQL it
costs one statement, run in autocommit (one statement is one transaction: no BEGIN and
COMMIT round trips, and an error anywhere in it undoes all of it):

* **Cached look-ups.** Each process keeps, for ``SCIWEEK_CHECKIN_CACHE_SECONDS`` (default
  10 s, 0 turns the caches off):

  - token hash → the token's user (id, role, department), filled by
    ``services.user_for_token`` (which also refuses disabled and non-staff users);
  - activity id → its sessions (to pick the session);
  - (user, activity) → whether the user may check in there, decided by
    ``permissions.can_check_in`` on the real rows.

  A change made through this process (revoking a token, disabling a user, assigning a
  checker, editing an activity or its sessions) clears the caches at once (see
  ``_forget_on_flush``); other processes see it within the cache time. What a scan
  *decides* — the registration, its status, the activity's cancellation, the check-in —
  is never cached: the statement reads it.

* **One statement** (data-modifying CTEs): find the registration (by secret hash or
  short code) with its activity, decide the refusal (wrong activity, cancelled,
  waitlisted), ``INSERT`` the check-in ``ON CONFLICT DO NOTHING`` (the partial unique
  index ``uq_checkins_live`` decides races, as on the general path), read the live
  check-in when there was one already, ``INSERT`` the scan-log row ``ON CONFLICT
  (user_id, nonce) DO NOTHING``, and read the activity's confirmed places.

  Two cases leave the statement to the general path in ``services``: a repeated nonce
  (the scan log already holds the answer, and a guard fails the whole statement if it
  would otherwise have checked in — a resent scan that was refused or undone since) and
  a race lost to a check-in committed after this statement's snapshot began (the insert
  did nothing, but the winner's row is not visible to the same statement). In both
  nothing was written, and ``services.scan_ticket`` runs in a new transaction, which
  answers from the scan log or sees the winner.

* **The live counter** (``counts.checked_in``) is counted in that statement at most once a
  second per session and process (``COUNT_SECONDS``); in between, the process adds its own
  new check-ins to the last count. Check-ins made through other processes show within a
  second; an undo here makes the next scan count afresh.

SQLite keeps the general path (``services.scan_ticket``) entirely.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from datetime import datetime
from time import monotonic

from flask import current_app
from sqlalchemy import Integer, String, bindparam, event, text
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import joinedload

from ..extensions import db
from ..identity import mask_phone
from ..manage.permissions import can_check_in
from ..models import (
    Activity,
    ActivitySession,
    ActivityStatus,
    ApiToken,
    CheckIn,
    Department,
    ScanResult,
    User,
    utcnow,
)
from ..models.types import UTCDateTime
from ..registration.tickets import hash_secret, is_well_formed_secret
from . import services
from .codes import loggable_text, parse_scanned_code

DEFAULT_CACHE_SECONDS = 10.0
# The live counter (answer["counts"]["checked_in"]) is counted afresh at most this often
# per session and process; in between, this process adds its own new check-ins.
COUNT_SECONDS = 1.0
# A cache this big is not a working set any more; start again rather than grow.
CACHE_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class DoorUser:
    """What the scan needs of a token's user (``services.scan_ticket`` uses ``id`` only)."""

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
# Rows whose change may change who may scan where (or which sessions there are).
_WATCHED = (ApiToken, User, Activity, ActivitySession, Department)


@event.listens_for(OrmSession, "after_flush")
def _forget_on_flush(session, _flush_context) -> None:
    """A token, user, activity, session or department written by this process: forget all.

    A check-in written through the ORM (an undo) makes the live counts be counted afresh.
    """
    counts_only = False
    for instance in (*session.new, *session.dirty, *session.deleted):
        if isinstance(instance, _WATCHED):
            for caches in list(_ALL_CACHES):
                caches.clear()
            return
        counts_only = counts_only or isinstance(instance, CheckIn)
    if counts_only:
        for caches in list(_ALL_CACHES):
            caches.clear_counts()


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
    """Whether this app scans on the fast path (PostgreSQL)."""
    return _caches().postgresql


def door_user_for_token(raw: str) -> DoorUser | None:
    """The token's user as a snapshot, from the cache or ``services.user_for_token``."""
    if not raw or len(raw) > 200:
        return None
    caches = _caches()
    key = hash_secret(raw)
    user = caches.get(caches.users, key)
    if user is None:
        found = services.user_for_token(raw)
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


# --- the statement --------------------------------------------------------------------

_SCAN_SQL = """
WITH reg AS (
    SELECT r.id, r.activity_id, r.name, r.phone, r.short_code, r.status,
           a.status AS activity_status, a.title AS activity_title
    FROM registrations r JOIN activities a ON a.id = r.activity_id
    WHERE {where}
),
decided AS (
    SELECT reg.*,
           CASE WHEN reg.activity_id <> :activity_id THEN 'wrong_activity'
                WHEN reg.activity_status = 'cancelled' OR reg.status = 'cancelled'
                    THEN 'cancelled'
                WHEN reg.status = 'waitlisted' THEN 'waitlisted'
           END AS refusal
    FROM reg
),
ins AS (
    INSERT INTO checkins (registration_id, session_id, checked_in_at, recorded_at, method,
                          checked_in_by_id)
    SELECT d.id, CAST(:session_id AS integer), CAST(:at AS timestamptz),
           CAST(:now AS timestamptz), CAST(:method AS varchar), CAST(:user_id AS integer)
    FROM decided d
    WHERE d.refusal IS NULL
    ON CONFLICT (registration_id, session_id) WHERE undone_at IS NULL DO NOTHING
    RETURNING id, checked_in_at
),
existing AS (
    SELECT c.id, c.checked_in_at FROM checkins c JOIN decided d ON c.registration_id = d.id
    WHERE d.refusal IS NULL AND c.session_id = :session_id AND c.undone_at IS NULL
),
outcome AS (
    SELECT d.id AS registration_id, d.activity_id, d.name, d.phone, d.short_code,
           d.activity_status, d.activity_title,
           CASE WHEN d.id IS NULL THEN 'invalid'
                WHEN d.refusal IS NOT NULL THEN d.refusal
                WHEN i.id IS NOT NULL THEN 'ok'
                WHEN e.id IS NOT NULL THEN 'already_checked_in'
           END AS result,
           COALESCE(i.id, e.id) AS checkin_id,
           COALESCE(i.checked_in_at, e.checked_in_at) AS checked_in_at
    FROM (SELECT 1) AS one
    LEFT JOIN decided d ON true
    LEFT JOIN ins i ON true
    LEFT JOIN existing e ON true
),
logged AS (
    INSERT INTO scan_log (user_id, nonce, activity_id, session_id, registration_id, checkin_id,
                          method, result, code, scanned_at, checked_in_at, recorded_at)
    SELECT CAST(:user_id AS integer), CAST(:nonce AS varchar), CAST(:activity_id AS integer),
           CAST(:session_id AS integer), o.registration_id, o.checkin_id,
           CAST(:method AS varchar), o.result, CAST(:code AS varchar),
           CAST(:scanned_at AS timestamptz), o.checked_in_at, CAST(:now AS timestamptz)
    FROM outcome o
    WHERE o.result IS NOT NULL
    ON CONFLICT (user_id, nonce) DO NOTHING
    RETURNING id
)
SELECT o.registration_id, o.activity_id, o.name, o.phone, o.short_code, o.activity_status,
       o.activity_title, o.result, o.checkin_id, o.checked_in_at,
       (SELECT id FROM logged) AS log_id,
       {live} AS live,
       (SELECT confirmed_count FROM activities WHERE id = :activity_id) AS expected,
       -- A resent nonce whose first scan did not check in (refused, or undone since) must
       -- not check in now: fail the statement, which undoes all of it (see scan_ticket).
       1 / CASE WHEN (SELECT id FROM logged) IS NULL AND EXISTS (SELECT 1 FROM ins)
                THEN 0 ELSE 1 END AS guard
FROM outcome o
"""

_WHERE = {
    "secret": "r.secret_hash = :lookup",
    "short_code": "r.activity_id = :activity_id AND r.short_code = :lookup",
    "none": "false AND r.secret_hash = :lookup",
}


# The live count, left out while the process's cached count is fresh (COUNT_SECONDS).
_LIVE = {
    True: "(SELECT count(*) FROM checkins WHERE session_id = :session_id AND undone_at IS NULL)",
    False: "CAST(NULL AS bigint)",
}


def _statement(where: str, live: str):
    return (
        text(_SCAN_SQL.format(where=where, live=live))
        .bindparams(
            bindparam("lookup", type_=String()),
            bindparam("activity_id", type_=Integer()),
            bindparam("session_id", type_=Integer()),
            bindparam("user_id", type_=Integer()),
            bindparam("nonce", type_=String()),
            bindparam("method", type_=String()),
            bindparam("code", type_=String()),
            bindparam("at", type_=UTCDateTime()),
            bindparam("now", type_=UTCDateTime()),
            bindparam("scanned_at", type_=UTCDateTime()),
        )
        .columns(checked_in_at=UTCDateTime())
    )


# Built once, so SQLAlchemy compiles each once per process.
_STATEMENTS = {
    (kind, count): _statement(where, live)
    for kind, where in _WHERE.items()
    for count, live in _LIVE.items()
}


def scan_ticket(
    user,
    activity: DoorActivity,
    session: DoorSession,
    text_scanned: str,
    *,
    base_url: str,
    nonce: str | None = None,
    scanned_at: datetime | None = None,
    method: str = "scan",
) -> services.ScanAnswer:
    """``services.scan_ticket`` in one statement; same answers, same rows written."""
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
    }
    # One statement is one transaction: run it in autocommit, which spares the BEGIN and
    # COMMIT round trips. An error anywhere in it (the guard, a foreign key) undoes all of it.
    try:
        with db.engine.connect() as connection:
            row = (
                connection.execution_options(isolation_level="AUTOCOMMIT")
                .execute(_STATEMENTS[kind, cached_count is None], params)
                .one()
            )
    except IntegrityError:
        # A foreign key to a session or activity deleted since it was cached. The rollback
        # expires whatever this request's ORM session loaded, so the caller reads afresh.
        db.session.rollback()
        caches.clear()
        raise StaleCache from None
    except DataError as exc:
        if getattr(exc.orig, "sqlstate", None) != "22012":  # not the guard's division by zero
            raise
        row = None
    if row is None or row.result is None or row.log_id is None:
        # Nothing was written: a race lost to a check-in this statement could not see,
        # or a repeated nonce. The general path answers (from the scan log, for a nonce).
        db.session.rollback()
        full_activity = db.session.get(Activity, activity.id)
        full_session = db.session.get(ActivitySession, session.id)
        return services.scan_ticket(
            user,
            full_activity,
            full_session,
            text_scanned,
            base_url=base_url,
            nonce=nonce,
            scanned_at=scanned_at,
            method=method,
        )
    answer = services.ScanAnswer(
        result=ScanResult(row.result),
        session_id=session.id,
        checked_in_at=row.checked_in_at,
        checkin_id=row.checkin_id,
        scanned_at=scanned_at,
    )
    created = row.result == ScanResult.OK
    if created:
        answer.checked_in_at = at
    if row.result == ScanResult.WRONG_ACTIVITY:
        if row.activity_status != ActivityStatus.DRAFT:
            answer.wrong_activity_title = row.activity_title
    elif row.registration_id is not None:
        answer.person = {
            "id": row.registration_id,
            "name": row.name,
            "phone_masked": mask_phone(row.phone),
            "short_code": row.short_code,
        }
    if cached_count is None:
        # The statement's snapshot does not hold its own new check-in.
        live = int(row.live) + created
        caches.counted(session.id, live)
    else:
        live = caches.bump(session.id, cached_count, created)
    answer.counts = {"checked_in": live, "expected": int(row.expected or 0)}
    return answer
