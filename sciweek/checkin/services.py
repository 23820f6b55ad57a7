"""Check-in rules: scanning tickets, walk-ins, self check-in, undo, API tokens, checkers.

A scan enters through ``scan`` alone, which takes the PostgreSQL fast path (``fast``: one
statement, cached permissions) when it is on, and the general path (``_scan_ticket``) on
SQLite, with ``SCIWEEK_CHECKIN_FAST_PATH=0``, or when the statement leaves a scan to it.
Both decide with the same rules: ``Registration.scan_refusal`` (may this ticket be checked
in here?) and ``scan_outcome`` (the answer, in order), applied to a loaded row here and
compiled into the statement there.

One live check-in per registration and session is guarded by the database (partial
unique index ``uq_checkins_live``): two devices scanning one ticket at the same moment both
``INSERT ... ON CONFLICT DO NOTHING``; one inserts, the other's insert does nothing and it
answers ``already_checked_in`` with the winner's time. A device's repeated scan (same
nonce) is answered from the scan log, never checked in twice.
"""

from __future__ import annotations

import secrets
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from flask_babel import gettext as _
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import joinedload, selectinload

from .. import signals
from ..database import begin_write
from ..extensions import db
from ..i18n import LOCAL_TZ, format_span, format_time, to_local
from ..identity import IdentityError, mask_phone, normalize_phone
from ..models import (
    TOWN_ORDER,
    Activity,
    ActivityKind,
    ActivitySession,
    ActivityStatus,
    ApiToken,
    CheckIn,
    CheckInMethod,
    Registration,
    RegistrationStatus,
    Role,
    ScanLog,
    ScanResult,
    Town,
    User,
    Village,
    checker_assignments,
    scan_outcome,
    short_code_preference,
    utcnow,
)
from ..permissions import activities_visible_to, can_check_in, can_override_checkin_window
from ..placenames import natural_key
from ..registration import services as registration_services
from ..registration.tickets import normalize_short_code
from ..tokens import hash_secret
from . import fast, windows
from .codes import (
    ScannedCode,
    loggable_text,
    parse_scanned_code,
    read_self_code,
    read_sheet_code,
)

# Offline scans older than this are refused rather than silently back-dated.
LATE_SCAN_LIMIT = timedelta(days=14)
CLOCK_SKEW = timedelta(minutes=5)
NONCE_MAX = 64


class CheckInProblem(Exception):
    """A request that cannot be answered with a scan result (HTTP 400); message is for people."""

    def __init__(
        self,
        message: str,
        sessions: list[dict] | None = None,
        *,
        kind: str = "bad_request",
        field: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.sessions = sessions
        self.kind = kind  # the API's error kind (docs/checkin_api.md, "Errors")
        self.field = field  # the body's field at fault, if one is


@dataclass
class ScanAnswer:
    """The answer to one scan, as the API contract describes it."""

    result: str
    session_id: int
    registration: Registration | None = None
    checked_in_at: datetime | None = None
    checkin_id: int | None = None
    scanned_at: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)
    wrong_activity_title: str | None = None
    person: dict | None = None
    # For a ``not_now`` answer: the session's times and its window (``checkin.windows``).
    outside: windows.NotNow | None = None

    def snapshot(self) -> None:
        """Copy what the answer shows of the registration, so no reload follows the commit."""
        if self.registration is not None and self.result != ScanResult.WRONG_ACTIVITY:
            r = self.registration
            self.person = _person(r.id, r.name, r.phone, r.short_code)

    @property
    def conflict(self) -> bool:
        """An offline scan of a ticket someone else had already checked in."""
        return self.result == ScanResult.ALREADY_CHECKED_IN and self.scanned_at is not None

    def message(self) -> str:
        if self.result == ScanResult.OK:
            return _("签到成功")
        if self.result == ScanResult.ALREADY_CHECKED_IN:
            return _("已签到（%(time)s）", time=format_time(self.checked_in_at))
        if self.result == ScanResult.WRONG_ACTIVITY:
            if self.wrong_activity_title:
                return _("不是本活动的票：%(title)s", title=self.wrong_activity_title)
            return _("不是本活动的票")
        if self.result == ScanResult.CANCELLED:
            return _("报名已取消")
        if self.result == ScanResult.WAITLISTED:
            return _("候补中，尚未确认名额")
        if self.result == ScanResult.UNDONE:
            return _("已撤销签到")
        if self.result == ScanResult.NOT_NOW:
            return self.outside.message() if self.outside is not None else _("不在签到时间")
        return _("无效票码")

    def as_json(self) -> dict:
        if self.person is None:
            self.snapshot()
        data = {
            "result": self.result,
            "registration": self.person,
            "checked_in_at": _iso(self.checked_in_at),
            "session_id": self.session_id,
            "checkin_id": self.checkin_id,
            "message": self.message(),
        }
        if self.scanned_at is not None:
            data["scanned_at"] = _iso(self.scanned_at)
            data["conflict"] = self.conflict
        if self.counts:
            data["counts"] = self.counts
        if self.result == ScanResult.NOT_NOW and self.outside is not None:
            data.update(self.outside.as_json())
        return data


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _person(registration_id: int, name: str, phone: str | None, short_code: str) -> dict:
    """Who a ticket belongs to, as an answer shows them (phone masked)."""
    return {
        "id": registration_id,
        "name": name,
        "phone_masked": mask_phone(phone),
        "short_code": short_code,
    }


# --- sessions -----------------------------------------------------------------


def session_choice(session: ActivitySession) -> dict:
    return {
        "id": session.id,
        "starts_at": _iso(session.starts_at),
        "ends_at": _iso(session.ends_at),
        "label": format_span(session.starts_at, session.ends_at),
    }


def pick_session(activity: Activity, session_id: int | None, at: datetime) -> ActivitySession:
    """The session a scan is for: the one named, the one whose check-in window holds ``at``
    (``windows.CheckInWindow.sessions_open``), or the next one today.

    Raises CheckInProblem (listing the sessions) when that is not clear.
    """
    sessions = list(activity.sessions)
    if session_id is not None:
        for session in sessions:
            if session.id == session_id:
                return session
        raise CheckInProblem(_("场次不属于此活动。"), [session_choice(s) for s in sessions])
    if len(sessions) == 1:
        return sessions[0]
    under_way = windows.checkin_window().sessions_open(sessions, at)
    if len(under_way) == 1:
        return under_way[0]
    if not under_way:
        today = to_local(at).date()
        later_today = [
            s for s in sessions if s.starts_at > at and to_local(s.starts_at).date() == today
        ]
        if later_today:
            return later_today[0]
    raise CheckInProblem(_("请选择场次。"), [session_choice(s) for s in sessions])


def sheet_code_fresh(session: ActivitySession, now: datetime) -> bool:
    """The self check-in code printed on a session's paper 签到表 (``codes.make_sheet_code``)
    works while the session's check-in window is open (``windows.checkin_window``). Paper
    cannot rotate like the projector's code, so a photo of it works as long."""
    return windows.checkin_window().state(session, now) == windows.WindowState.OPEN


# The door list: the coming week first, past sessions on a page of their own.
DOOR_WEEK_DAYS = 7
DOOR_LIST_LIMIT = 200


def _door_sessions(user: User):
    """Sessions of published activities ``user`` may check in for, with their activity."""
    visible = activities_visible_to(user).where(Activity.status == ActivityStatus.PUBLISHED)
    return (
        select(ActivitySession)
        .join(Activity, Activity.id == ActivitySession.activity_id)
        .where(Activity.id.in_(visible.with_only_columns(Activity.id)))
        .options(selectinload(ActivitySession.activity).selectinload(Activity.departments))
    )


def week_ahead(now: datetime) -> tuple[datetime, datetime]:
    """[start of today, end of the seventh day after today) in Asia/Shanghai: the door's
    week, which the back-office dashboard shows too."""
    today = datetime.combine(to_local(now).date(), time.min, LOCAL_TZ)
    return today, today + timedelta(days=DOOR_WEEK_DAYS + 1)


def door_sessions_ahead(user: User, now: datetime) -> tuple[list, list]:
    """(today and the next seven days, later): sessions in time order. Today's sessions stay
    in the first list after they ended (late arrivals, a scanner that was offline)."""
    today, week_end = week_ahead(now)
    in_order = _door_sessions(user).order_by(ActivitySession.starts_at, ActivitySession.id)
    week = db.session.scalars(
        in_order.where(
            ActivitySession.ends_at >= today, ActivitySession.starts_at < week_end
        ).limit(DOOR_LIST_LIMIT)
    ).all()
    later = db.session.scalars(
        in_order.where(ActivitySession.starts_at >= week_end).limit(DOOR_LIST_LIMIT)
    ).all()
    return list(week), list(later)


def door_sessions_past(user: User, now: datetime) -> list[ActivitySession]:
    """Sessions that ended before today, the most recent first."""
    today = datetime.combine(to_local(now).date(), time.min, LOCAL_TZ)
    return list(
        db.session.scalars(
            _door_sessions(user)
            .where(ActivitySession.ends_at < today)
            .order_by(ActivitySession.starts_at.desc(), ActivitySession.id.desc())
            .limit(DOOR_LIST_LIMIT)
        )
    )


def parse_scan_time(raw: object, now: datetime) -> datetime | None:
    """An offline scan's ISO 8601 time; a time without zone is Asia/Shanghai."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > 40:
        raise CheckInProblem(_("scanned_at 应为 ISO 8601 时间。"), field="scanned_at")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise CheckInProblem(_("scanned_at 应为 ISO 8601 时间。"), field="scanned_at") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    if value > now + CLOCK_SKEW:
        raise CheckInProblem(_("scanned_at 在未来，请检查设备时间。"), field="scanned_at")
    if value < now - LATE_SCAN_LIMIT:
        raise CheckInProblem(_("scanned_at 太久以前，不能补录。"), field="scanned_at")
    return value


# --- scanning -----------------------------------------------------------------


def session_counts(activity: Activity, session_id: int) -> dict[str, int]:
    """Checked in at this session / confirmed places (the live counter), and the people
    admitted beyond capacity when there are any (``counts_of``)."""
    checked_in = db.session.scalar(
        select(func.count(CheckIn.id)).where(
            CheckIn.session_id == session_id, CheckIn.undone_at.is_(None)
        )
    )
    return fast.counts_of(
        int(checked_in or 0), activity.confirmed_count, activity.over_capacity_count
    )


def _logged_scan(user_id: int | None, nonce: str | None) -> ScanLog | None:
    if not nonce or user_id is None:
        return None
    return db.session.scalar(
        select(ScanLog).where(ScanLog.user_id == user_id, ScanLog.nonce == nonce)
    )


def _answer_from_log(log: ScanLog, activity: Activity) -> ScanAnswer:
    """The same answer a repeated request got the first time."""
    registration = (
        db.session.get(Registration, log.registration_id) if log.registration_id else None
    )
    answer = ScanAnswer(
        result=log.result,
        session_id=log.session_id or 0,
        registration=registration,
        checked_in_at=log.checked_in_at,
        checkin_id=log.checkin_id,
        scanned_at=log.scanned_at,
    )
    if registration is not None and log.result == ScanResult.WRONG_ACTIVITY:
        other = registration.activity
        answer.wrong_activity_title = _public_title(other.status, other.title)
    if log.result == ScanResult.NOT_NOW and log.session_id is not None:
        session = db.session.get(ActivitySession, log.session_id)
        if session is not None:
            answer.outside = windows.not_now(session, log.scanned_at or log.recorded_at)
    answer.counts = session_counts(activity, answer.session_id)
    return answer


def _public_title(status: str, title: str) -> str | None:
    """An activity's title as a wrong-activity answer may name it: not a draft's."""
    return title if status != ActivityStatus.DRAFT else None


def _find_registration(activity: Activity, code: ScannedCode) -> Registration | None:
    if code.kind == "secret":
        return registration_services.registration_by_secret(code.value)
    return db.session.scalar(
        select(Registration)
        .where(Registration.short_code == code.value)
        .order_by(short_code_preference(activity.id))
        .limit(1)
    )


# Compiled once per database (engine dialect) and form: SQLAlchemy 2.0 does not cache
# statements with ON CONFLICT, and would otherwise compile these on every scan.
_INSERT_STATEMENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_DIALECT_INSERT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _insert_unless_exists(model, values: dict, conflict_columns: list[str], where=None):
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: the new id, or None if the unique
    index (``conflict_columns``, partial when ``where``) already holds a row.

    One statement instead of look-up, savepoint, insert and release. Under a race the
    loser's INSERT waits for the winner's transaction and then does nothing, on
    PostgreSQL (row lock on the index entry) as on SQLite (one writer at a time).
    """
    # Core on the session's connection (same transaction): no ORM bookkeeping needed
    # for a row nobody loads in this request.
    connection = db.session.connection()
    forms = _INSERT_STATEMENTS.setdefault(connection.dialect, {})
    key = (model, tuple(conflict_columns), str(where), tuple(sorted(values)))
    compiled = forms.get(key)
    if compiled is None:
        table = model.__table__
        stmt = (
            _DIALECT_INSERT[connection.dialect.name](table)
            .values({name: bindparam(name, type_=table.c[name].type) for name in values})
            .on_conflict_do_nothing(index_elements=conflict_columns, index_where=where)
            .returning(table.c.id)
        )
        compiled = forms[key] = stmt.compile(dialect=connection.dialect)
    return connection.execute(compiled, values).scalar()


def _live_checkin(registration_id: int, session_id: int) -> tuple[int, datetime] | None:
    row = db.session.execute(
        select(CheckIn.id, CheckIn.checked_in_at).where(
            CheckIn.registration_id == registration_id,
            CheckIn.session_id == session_id,
            CheckIn.undone_at.is_(None),
        )
    ).first()
    return (row.id, row.checked_in_at) if row is not None else None


# --- the one check-in at the door ---------------------------------------------------------

# Who is checked in at a door: a registration found (a scanned ticket; None when the code
# matched none), or a function that finds or makes it (a walk-in's registration, a roster
# cadre's, an admission over capacity), called only when the check-in may happen now; it
# returns the registration and the method to record (a walk-in admitted over capacity is
# an ``over_capacity`` check-in).
DoorPerson = Registration | Callable[[], tuple[Registration, CheckInMethod]] | None


def check_in_at_door(
    user: User | fast.DoorUser | None,
    session: ActivitySession,
    person: DoorPerson,
    method: CheckInMethod,
    *,
    nonce: str | None = None,
    scanned_at: datetime | None = None,
    override_reason: str | None = None,
    logged_code: str | None = None,
    on_paper_at: datetime | None = None,
) -> ScanAnswer:
    """Check someone in at ``session``: the one way every door does it (ticket scans on the
    general path, roster check-ins, self check-in, walk-ins, admissions over capacity, paper
    sheets). Writes the scan log (flushed; the caller's request commits) and answers.

    In order: a ``nonce`` this user sent before gets the stored answer and nothing is
    written. The session's check-in window is judged at ``scanned_at`` (an offline device's
    time) or now (``checkin.windows``); outside it, unless an organizer gives
    ``override_reason`` (the caller has checked ``can_override_checkin_window``), the answer is
    ``not_now``: a ``person`` function is not called (nobody is registered), a registration
    found is not checked in, and only the scan log is written. Else the registration's
    refusal (``Registration.scan_refusal``: cancelled, waitlisted, another activity's) answers,
    or it is checked in, once (``uq_checkins_live``: of two devices, one makes the check-in,
    the other is told ``already_checked_in`` with its time).

    ``on_paper_at``: a paper 签到表 typed in afterwards; the check-in gets that time (the
    session's start), and neither the window nor the refusal applies: the sheet has its own
    rules (``paper.paper_entry_refusal``: a session that was held, within its entry period;
    confirmed registrations only, also of a training cancelled after that session).
    ``logged_code``: what the scan log keeps as the code (the registration's short code when
    not given). The fast path (``checkin.fast``) makes the same decisions for
    scans in one statement (``scan_outcome``).
    """
    user_id = user.id if user is not None else None
    if callable(person):
        # Replays first: the function may write (a registration), which a resent request
        # must not do twice.
        stored = _logged_scan(user_id, nonce)
        if stored is not None:
            return _answer_from_log(stored, session.activity)
    activity = session.activity
    at = on_paper_at or scanned_at or utcnow()
    outside = windows.not_now(session, at) if on_paper_at is None else None
    # The reason is kept only when it made a difference: the window was closed.
    override_reason = override_reason if outside is not None else None
    not_now = outside is not None and override_reason is None
    if callable(person):
        if outside is not None and not_now:
            return _log_not_now(user_id, activity, session, outside, method=method, nonce=nonce)
        person, method = person()
    registration = person
    refusal = (
        registration.scan_refusal(activity.id)
        if registration is not None and on_paper_at is None
        else None
    )
    # A resent scan (same nonce) must leave no trace: what follows is undone to this
    # savepoint when the scan log already holds the nonce. Without a nonce, no savepoint.
    savepoint = db.session.begin_nested() if nonce is not None else None
    answer = ScanAnswer(
        result=ScanResult.INVALID,
        session_id=session.id,
        registration=registration,
        scanned_at=scanned_at,
    )
    created = False
    if registration is not None and refusal is None:
        if not_now:
            # Outside the window nothing is written; a check-in made earlier still answers.
            answer.checkin_id, answer.checked_in_at = _live_checkin(
                registration.id, session.id
            ) or (None, None)
        else:
            answer.checkin_id, answer.checked_in_at, created = _record_checkin(
                registration, session, user_id, at, method, override_reason
            )
    answer.result = scan_outcome(
        unknown=registration is None,
        refused=refusal is not None,
        refusal=refusal,
        checked_in_now=created,
        checked_in_before=answer.checkin_id is not None and not created,
        not_now=not_now,
    )
    if answer.result == ScanResult.NOT_NOW:
        answer.outside = outside
    if answer.result == ScanResult.WRONG_ACTIVITY:
        other = registration.activity
        answer.wrong_activity_title = _public_title(other.status, other.title)
    logged = _write_scan_log(
        user_id,
        nonce,
        activity,
        session,
        registration_id=registration.id if registration is not None else None,
        checkin_id=answer.checkin_id,
        method=str(method),
        result=str(answer.result),
        code=logged_code if logged_code is not None else _short_code_of(registration),
        scanned_at=scanned_at,
        checked_in_at=answer.checked_in_at,
        window_override_reason=override_reason,
    )
    if logged is None:
        # This device already sent this scan (same nonce): give the stored answer, and
        # undo what this scan wrote.
        savepoint.rollback()
        return _stored_answer(user_id, nonce, activity)
    answer.counts = session_counts(activity, session.id)
    answer.snapshot()
    if savepoint is not None:
        savepoint.commit()
    return answer


def _write_scan_log(
    user_id: int | None,
    nonce: str | None,
    activity: Activity,
    session: ActivitySession,
    **fields,
) -> int | None:
    """One scan log row; None when this user's ``nonce`` is logged already (a resend)."""
    return _insert_unless_exists(
        ScanLog,
        {
            "user_id": user_id,
            "nonce": nonce,
            "activity_id": activity.id,
            "session_id": session.id,
            "code": "",
            "recorded_at": utcnow(),
            **fields,
        },
        ["user_id", "nonce"],
    )


def _short_code_of(registration: Registration | None) -> str:
    return registration.short_code if registration is not None else ""


def _stored_answer(user_id: int | None, nonce: str | None, activity: Activity) -> ScanAnswer:
    """The answer stored for a nonce whose scan log row this request could not insert."""
    stored = _logged_scan(user_id, nonce)
    if stored is None:  # pragma: no cover
        raise RuntimeError("scan log conflict without a stored scan")
    return _answer_from_log(stored, activity)


def _record_checkin(
    registration: Registration,
    session: ActivitySession,
    user_id: int | None,
    at: datetime,
    method: str,
    window_override_reason: str | None = None,
) -> tuple[int, datetime, bool]:
    """(id, time) of the live check-in for (registration, session), and whether we made it.

    The partial unique index ``uq_checkins_live`` decides who wins when two devices scan
    one ticket at the same moment; the loser reports the winner's check-in.
    ``window_override_reason``: why the user checks the person in outside the window.
    """
    new_id = _insert_unless_exists(
        CheckIn,
        {
            "registration_id": registration.id,
            "session_id": session.id,
            "checked_in_at": at,
            "recorded_at": utcnow(),
            "method": str(method),
            "checked_in_by_id": user_id,
            "window_override_reason": window_override_reason,
        },
        ["registration_id", "session_id"],
        where=CheckIn.undone_at.is_(None),
    )
    if new_id is not None:
        return new_id, at, True
    existing = _live_checkin(registration.id, session.id)
    if existing is None:  # pragma: no cover - the conflicting row vanished (undone meanwhile)
        raise RuntimeError("check-in conflict without a live check-in")
    return existing[0], existing[1], False


def _log_not_now(
    user_id: int | None,
    activity: Activity,
    session: ActivitySession,
    outside: windows.NotNow,
    *,
    method: str,
    nonce: str | None,
) -> ScanAnswer:
    """Answer ``not_now`` to a door action that names no ticket yet (a walk-in, a roster
    cadre without a registration), writing only the scan log."""
    logged = _write_scan_log(
        user_id, nonce, activity, session, method=str(method), result=str(ScanResult.NOT_NOW)
    )
    if logged is None:  # the same nonce, sent twice at once: the first one's answer
        return _stored_answer(user_id, nonce, activity)
    return ScanAnswer(
        result=ScanResult.NOT_NOW,
        session_id=session.id,
        outside=outside,
        counts=session_counts(activity, session.id),
    )


class ScanNotAllowed(Exception):
    """The user may not check in for this activity (the API answers 403)."""


class NoSuchActivity(Exception):
    """The scan names an activity that does not exist (404)."""


class UnknownUser(Exception):
    """The token's cached user no longer exists (401)."""


class OverrideNotAllowed(Exception):
    """Checking someone in outside the session's window is for the activity's organizers and
    admins (``permissions.can_override_checkin_window``); checkers get a 403."""


def door_user_for_token(raw: str) -> User | fast.DoorUser | None:
    """The token's user for the scan URL: on the fast path a ``fast.DoorUser`` snapshot from
    the per-process cache, else ``user_for_token``."""
    if fast.enabled():
        return fast.door_user_for_token(raw, user_for_token)
    return user_for_token(raw)


def scan(
    user: User | fast.DoorUser,
    activity_id: int,
    text: str,
    *,
    base_url: str | Sequence[str],
    session_id: int | None = None,
    nonce: str | None = None,
    scanned_at: object = None,
    override_reason: str | None = None,
) -> ScanAnswer:
    """Scan ``text`` (ticket URL, bare secret or short code) at the door of ``activity_id``:
    the one entry for a scan. Checks that ``user`` may check in there, picks the session,
    checks in, logs the scan and commits.

    ``scanned_at`` is an offline device's time as sent (ISO 8601 text) or None; the
    session's check-in window is judged at that time (``checkin.windows``). A repeated
    ``nonce`` gets the stored answer. ``override_reason``: an organizer checks the person in
    even outside the window ("仍然签到"; rare, so always on the general path). Raises
    ``NoSuchActivity``, ``ScanNotAllowed``, ``OverrideNotAllowed``, ``UnknownUser``, and
    ``CheckInProblem`` for a bad time or an unclear session.
    """
    if fast.enabled() and override_reason is None:
        answer = _scan_fast(
            user,
            activity_id,
            text,
            base_url=base_url,
            session_id=session_id,
            nonce=nonce,
            scanned_at=scanned_at,
        )
        if answer is not None:
            return answer
    person = user if isinstance(user, User) else db.session.get(User, user.id)
    if person is None:
        raise UnknownUser
    activity = db.session.get(Activity, activity_id, options=[joinedload(Activity.sessions)])
    if activity is None:
        raise NoSuchActivity
    if not can_check_in(person, activity):
        raise ScanNotAllowed
    if override_reason is not None and not can_override_checkin_window(person, activity):
        raise OverrideNotAllowed
    now = utcnow()
    at = parse_scan_time(scanned_at, now)
    session = pick_session(activity, session_id, at or now)
    return _scan_ticket(
        person,
        activity,
        session,
        text,
        base_url=base_url,
        nonce=nonce,
        scanned_at=at,
        override_reason=override_reason,
    )


def _scan_fast(
    user: User | fast.DoorUser,
    activity_id: int,
    text: str,
    *,
    base_url: str | Sequence[str],
    session_id: int | None,
    nonce: str | None,
    scanned_at: object,
) -> ScanAnswer | None:
    """``scan`` on the fast path; None when the cached activity or session has gone (another
    process deleted it): then nothing was written, and the general path decides afresh."""
    try:
        activity = fast.door_activity(activity_id, user)
    except PermissionError:
        raise ScanNotAllowed from None
    if activity is None:
        raise NoSuchActivity
    now = utcnow()
    at = parse_scan_time(scanned_at, now)
    session = pick_session(activity, session_id, at or now)
    # The window is decided here, from the cached session times; the statement is told.
    outside = windows.not_now(session, at or now)
    try:
        done = fast.scan_ticket(
            user,
            activity,
            session,
            text,
            base_url=base_url,
            nonce=nonce,
            scanned_at=at,
            not_now=outside is not None,
        )
    except fast.StaleCache:
        return None
    if done is None:
        # Nothing was written: a repeated nonce, or a race lost to a check-in the statement
        # could not see. The general path answers (from the scan log, for a nonce; with
        # the winner's check-in, for a race): its statements see what was committed since
        # (READ COMMITTED); objects this request loaded are read afresh.
        db.session.expire_all()
        return _scan_ticket(
            user,
            db.session.get(Activity, activity.id),
            db.session.get(ActivitySession, session.id),
            text,
            base_url=base_url,
            nonce=nonce,
            scanned_at=at,
        )
    answer = ScanAnswer(
        result=done.result,
        session_id=session.id,
        checked_in_at=done.checked_in_at,
        checkin_id=done.checkin_id,
        scanned_at=at,
        counts=done.counts,
    )
    if done.result == ScanResult.WRONG_ACTIVITY:
        answer.wrong_activity_title = _public_title(*done.ticket_activity)
    elif done.registration is not None:
        answer.person = _person(*done.registration)
    if done.result == ScanResult.NOT_NOW:
        answer.outside = outside
    return answer


def _scan_ticket(
    user: User | fast.DoorUser,
    activity: Activity,
    session: ActivitySession,
    text: str,
    *,
    base_url: str | Sequence[str],
    nonce: str | None = None,
    scanned_at: datetime | None = None,
    override_reason: str | None = None,
) -> ScanAnswer:
    """The general path of ``scan`` (any database): check in whoever ``text`` belongs to.

    Every scan is logged, failed ones too. A repeated nonce returns the stored answer.
    The caller has checked that ``user`` may check in for ``activity`` (and override the
    window, with ``override_reason``).
    """
    begin_write()  # SQLite: decide on the latest state, under the write lock
    code = parse_scanned_code(text, base_url)
    registration = _find_registration(activity, code) if code is not None else None
    return check_in_at_door(
        user,
        session,
        registration,
        CheckInMethod.SCAN,
        nonce=nonce,
        scanned_at=scanned_at,
        logged_code=code.loggable if code is not None else loggable_text(text),
        override_reason=override_reason,
    )


# --- walk-ins (also without a phone), admissions over capacity (超额签到) ---------------


@dataclass(frozen=True)
class WalkIn:
    """Someone registered at the door: a name and a phone, or, without a phone (无手机,
    ``phone`` None), a name and the village they live in."""

    name: str
    phone: str | None = None
    village_id: int | None = None


def admit_walk_in(
    user: User,
    activity: Activity,
    session: ActivitySession,
    person: WalkIn,
    *,
    nonce: str | None = None,
    over_capacity: bool = False,
    override_reason: str | None = None,
) -> ScanAnswer:
    """Register someone at the door and check them in at once (``check_in_at_door``).

    A person already registered (same phone; without a phone, same name and village) is
    checked in on that registration. When the activity is full the person is waitlisted,
    unless ``over_capacity`` (an organizer's 超额签到, ``permissions.can_admit_over_capacity``,
    checked by the caller): then admitted beyond capacity
    (``registration.services.admit_over_capacity``) and checked in. Walk-ins without a phone
    are for activities other than trainings: at a training only roster cadres come without
    one. Outside the session's check-in window nobody is registered: the answer is
    ``not_now`` (logged), unless an organizer gives ``override_reason``.

    Raises RegistrationRefused for a bad name, phone or village, or a closed activity, and
    OverrideNotAllowed for an override by someone who may not.
    """
    if override_reason is not None and not can_override_checkin_window(user, activity):
        raise OverrideNotAllowed
    # A bad name or phone is refused next to its field whatever the time (the registration
    # checks them again).
    request = _walk_in_request(activity, person)

    def registered() -> tuple[Registration, CheckInMethod]:
        try:
            registration = registration_services.register_for_activity(
                activity.id, request, walk_in=True, waitlist_when_full=over_capacity
            ).registration
        except registration_services.AlreadyRegistered as exc:
            registration = exc.registration
        if over_capacity and registration.status == RegistrationStatus.WAITLISTED:
            registration_services.admit_over_capacity(registration, user.id)
            return registration, CheckInMethod.OVER_CAPACITY
        return registration, CheckInMethod.WALK_IN

    begin_write()  # SQLite: decide on the latest state, under the write lock
    return check_in_at_door(
        user,
        session,
        registered,
        CheckInMethod.WALK_IN,
        nonce=nonce,
        override_reason=override_reason,
    )


def walk_ins_without_phone_allowed(activity: Activity) -> bool:
    """Everywhere but at trainings, whose phone-less attendees are roster cadres."""
    return activity.kind != ActivityKind.TRAINING


def village_choices(activity: Activity) -> list[tuple[str, list[Village]]]:
    """Villages by town for a walk-in without a phone: the activity's town first."""
    towns = db.session.scalars(
        select(Town).options(selectinload(Town.villages)).order_by(*TOWN_ORDER)
    ).all()
    ordered = sorted(towns, key=lambda town: town.id != activity.town_id)
    return [
        (town.name, sorted(town.villages, key=lambda v: natural_key(v.name)))
        for town in ordered
        if town.villages
    ]


def _walk_in_request(
    activity: Activity, person: WalkIn
) -> registration_services.RegistrationRequest:
    """The registration a walk-in asks for; a bad name, phone or village refused now."""
    registration_services.clean_name(person.name)
    if person.phone is not None:
        try:
            normalize_phone(person.phone)
        except IdentityError as exc:
            raise registration_services.RegistrationRefused(str(exc), field="phone") from None
        return registration_services.RegistrationRequest(name=person.name, phone=person.phone)
    if not walk_ins_without_phone_allowed(activity):
        raise registration_services.RegistrationRefused(
            _(
                "培训签到只认花名册：没有手机的干部，请按姓名在花名册中找到本人后签到，"
                "不能作为无手机现场人员登记。"
            ),
            field="phone",
        )
    village = db.session.get(Village, person.village_id) if person.village_id else None
    if village is None:
        raise registration_services.RegistrationRefused(
            _("没有手机的，请选择所在村/社区。"), field="village_id"
        )
    return registration_services.RegistrationRequest(
        name=person.name,
        phone="",
        town_id=village.town_id,
        village_id=village.id,
        without_phone=True,
    )


class NoSuchRegistration(Exception):
    """The registration to admit is not one of this activity's (the API answers 404)."""


def admit_registration_over_capacity(
    user: User,
    activity: Activity,
    session: ActivitySession,
    registration_id: int,
    *,
    nonce: str | None = None,
    override_reason: str | None = None,
) -> ScanAnswer:
    """An organizer admits a waitlisted person at the door beyond capacity (超额签到) and
    checks them in (``check_in_at_door``). Someone confirmed meanwhile (another device
    admitted them, a place was freed) is simply checked in; a cancelled registration is
    answered ``cancelled``. Outside the session's window nobody is admitted (``not_now``)
    unless an organizer gives ``override_reason``. The caller has checked that ``user``
    may admit over capacity here.
    """
    if override_reason is not None and not can_override_checkin_window(user, activity):
        raise OverrideNotAllowed
    begin_write()  # SQLite: decide on the latest state, under the write lock
    registration = db.session.get(Registration, registration_id)
    if registration is None or registration.activity_id != activity.id:
        raise NoSuchRegistration

    def admitted() -> tuple[Registration, CheckInMethod]:
        if registration.status == RegistrationStatus.WAITLISTED:
            # Decided again under the activity's lock: another device may have admitted them.
            registration_services.admit_over_capacity(registration, user.id)
        return registration, CheckInMethod.OVER_CAPACITY

    return check_in_at_door(
        user,
        session,
        admitted,
        CheckInMethod.OVER_CAPACITY,
        nonce=nonce,
        override_reason=override_reason,
    )


class SelfCheckInRefused(Exception):
    """Self check-in refused; ``field`` names the form field the message belongs next to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def self_code_session(key: str, code: str, now: datetime) -> ActivitySession:
    """The session a projector code, or a printed sign-in sheet's code, is for; refuses
    forged and expired codes."""
    session_id, fresh = read_self_code(key, code, now.timestamp())
    printed_for = read_sheet_code(key, code) if session_id is None else None
    session_id = session_id or printed_for
    session = db.session.get(ActivitySession, session_id) if session_id else None
    if session is None:
        raise SelfCheckInRefused(_("签到二维码无效。"))
    if printed_for is not None and not sheet_code_fresh(session, now):
        # The printed code works only within the session's check-in window: say when it is.
        outside = windows.not_now(session, now)
        raise SelfCheckInRefused(outside.message() if outside else _("签到二维码无效。"))
    if printed_for is None and not fresh:
        raise SelfCheckInRefused(_("签到二维码已过期，请重新扫描现场大屏上的二维码。"))
    if session.activity.status != ActivityStatus.PUBLISHED:
        raise SelfCheckInRefused(_("活动未开放签到。"))
    return session


# Self check-in needs proof held by the person, never a phone number alone: anyone can
# type a colleague's number (代签, false training attendance that counts for coverage).
# Each proof is a small class; ``_registration_proven_by`` checks it. Roster cadres have
# their own proofs, an SMS code among them (``roster_door._CADRE_PROOFS``).


@dataclass(frozen=True)
class HeldTicket:
    """The ticket is on this device: ``registration_id`` is among ``held``, the ids in the
    signed device cookie (``registration.device``)."""

    registration_id: int | None
    held: frozenset[int]


@dataclass(frozen=True)
class PhoneAndShortCode:
    """The phone registered with and the ticket's 6-character short code."""

    phone: str
    short_code: str


SelfCheckInProof = HeldTicket | PhoneAndShortCode


def tickets_held_for(activity: Activity, held: frozenset[int]) -> list[Registration]:
    """The registrations of ``activity`` whose tickets this device holds."""
    if not held:
        return []
    return list(
        db.session.scalars(
            select(Registration)
            .where(Registration.activity_id == activity.id, Registration.id.in_(sorted(held)))
            .order_by(Registration.id)
        )
    )


def _registration_proven_by(activity: Activity, proof: SelfCheckInProof) -> Registration:
    if isinstance(proof, HeldTicket):
        registration = (
            db.session.get(Registration, proof.registration_id)
            if proof.registration_id in proof.held
            else None
        )
        if registration is None or registration.activity_id != activity.id:
            raise SelfCheckInRefused(_("本机没有这张电子票，请填写手机号和票码签到。"))
        return registration
    if isinstance(proof, PhoneAndShortCode):
        try:
            phone = normalize_phone(proof.phone)
        except IdentityError as exc:
            raise SelfCheckInRefused(str(exc), field="phone") from None
        short_code = normalize_short_code(proof.short_code)
        if short_code is None:
            raise SelfCheckInRefused(
                _("票码应为 6 位字母和数字，见电子票二维码下方。"), field="short_code"
            )
        registration = db.session.scalar(
            select(Registration).where(
                Registration.activity_id == activity.id,
                Registration.short_code == short_code,
                Registration.phone == phone,
            )
        )
        if registration is None:
            # One answer whether the phone is registered or the code is wrong: the page
            # must not tell a stranger who registered.
            raise SelfCheckInRefused(
                _("手机号与票码不符。票码是电子票二维码下方的 6 位字母和数字。"),
                field="short_code",
            )
        return registration
    raise TypeError(f"not a self check-in proof: {proof!r}")


def self_check_in(session: ActivitySession, proof: SelfCheckInProof) -> ScanAnswer:
    """A participant checks themself in at ``session`` (from ``self_code_session``).

    ``proof`` shows the registration is theirs; raises SelfCheckInRefused otherwise.
    The answer names the person; pages show that name masked (``identity.mask_name``).
    """
    begin_write()  # SQLite: decide on the latest state, under the write lock
    activity = session.activity
    registration = _registration_proven_by(activity, proof)
    # Outside the session's check-in window the answer is not_now (checkin.windows).
    return check_in_at_door(None, session, registration, CheckInMethod.SELF)


def undo_check_in(checkin: CheckIn, user: User) -> ScanAnswer:
    """Take a check-in back. The row stays, marked undone; the undo is logged.

    A conditional UPDATE: of two organizers undoing at once, one wins, the other is told.
    """
    begin_write()
    registration = checkin.registration
    undone_at = utcnow()
    taken_back = db.session.execute(
        update(CheckIn)
        .where(CheckIn.id == checkin.id, CheckIn.undone_at.is_(None))
        .values(undone_at=undone_at, undone_by_id=user.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not taken_back:
        raise CheckInProblem(_("此签到已撤销。"), kind="already_undone")
    # Keep the loaded object in step.
    checkin.undone_at, checkin.undone_by_id = undone_at, user.id
    db.session.add(
        ScanLog(
            user_id=user.id,
            activity_id=registration.activity_id,
            session_id=checkin.session_id,
            registration_id=registration.id,
            checkin_id=checkin.id,
            method="undo",
            result=ScanResult.UNDONE,
            code=registration.short_code,
            checked_in_at=checkin.checked_in_at,
        )
    )
    db.session.flush()
    signals.checkins_changed.send(checkin)
    return ScanAnswer(
        result=ScanResult.UNDONE,
        session_id=checkin.session_id,
        registration=registration,
        checkin_id=checkin.id,
        counts=session_counts(registration.activity, checkin.session_id),
    )


# --- roster for offline scanning -------------------------------------------------


def roster(activity: Activity) -> dict:
    """Everything a scanner needs to decide offline. Secret hashes only, never secrets."""
    live = db.session.execute(
        select(CheckIn.registration_id, CheckIn.session_id, CheckIn.checked_in_at)
        .join(Registration, Registration.id == CheckIn.registration_id)
        .where(Registration.activity_id == activity.id, CheckIn.undone_at.is_(None))
    ).all()
    checked: dict[int, dict[str, str]] = {}
    for registration_id, session_id, at in live:
        checked.setdefault(registration_id, {})[str(session_id)] = at.isoformat()
    registrations = db.session.scalars(
        select(Registration)
        .where(Registration.activity_id == activity.id)
        .order_by(Registration.id)
    )
    return {
        "activity": {"id": activity.id, "title": activity.title, "status": activity.status},
        "sessions": [session_choice(s) for s in activity.sessions],
        # The offline scanner applies the sessions' check-in windows with these settings.
        "checkin_window": windows.checkin_window().settings(),
        "generated_at": utcnow().isoformat(),
        "registrations": [
            {
                "id": r.id,
                "secret_sha256": r.secret_hash,
                "short_code": r.short_code,
                "name": r.name,
                "phone_masked": mask_phone(r.phone),
                "status": r.effective_status,
                "over_capacity": r.over_capacity,
                "checked_in": checked.get(r.id, {}),
            }
            for r in registrations
        ],
    }


# --- API tokens -------------------------------------------------------------------

TOKEN_PREFIX = "swk_"  # noqa: S105 - a label, not a secret
TOKEN_TOUCH_INTERVAL = timedelta(minutes=10)


def create_api_token(user: User, name: str = "") -> tuple[ApiToken, str]:
    """A new token for ``user``; the raw value is returned once and never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=(name or "").strip()[:100],
        token_hash=hash_secret(raw),
        prefix=raw[:8],
    )
    db.session.add(token)
    db.session.flush()
    # No signal: the scan caches hold only tokens that were found, never this new one.
    return token, raw


def user_for_token(raw: str) -> User | None:
    """The enabled staff user holding a live token, or None."""
    if not raw or len(raw) > 200:
        return None
    token = db.session.scalar(
        select(ApiToken)
        .options(joinedload(ApiToken.user))
        .where(ApiToken.token_hash == hash_secret(raw), ApiToken.revoked_at.is_(None))
    )
    if token is None or not token.user.is_enabled or not token.user.is_staff:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL:
        # Noting when a token was used is not an edit of the token: it clears no scan
        # caches. A GET (the roster download) may get here: take the write lock first.
        # Authentication commits nothing: the request's boundary does, with the request's
        # own changes (a request that fails notes the use at the next one).
        token_id = token.id
        begin_write()
        db.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    return token.user


def revoke_api_token(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.flush()
        signals.door_access_changed.send(token)


def tokens_of(user: User) -> list[ApiToken]:
    return list(
        db.session.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
        )
    )


# --- checkers -----------------------------------------------------------------------


class CheckerError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def assign_checker(activity: Activity, username: str) -> User:
    """Let a checker account scan for ``activity``."""
    user = db.session.scalar(select(User).where(User.username == (username or "").strip()))
    if user is None or user.role != Role.CHECKER:
        raise CheckerError(_("没有这个签到员账号。"))
    if activity not in user.assigned_activities:
        user.assigned_activities.append(activity)
        db.session.flush()
        signals.door_access_changed.send(activity)
    return user


def remove_checker(activity: Activity, user: User) -> None:
    if activity in user.assigned_activities:
        user.assigned_activities.remove(activity)
        db.session.flush()
        signals.door_access_changed.send(activity)


def assigned_checkers(activity: Activity) -> list[User]:
    return list(
        db.session.scalars(
            select(User)
            .join(checker_assignments, checker_assignments.c.user_id == User.id)
            .where(checker_assignments.c.activity_id == activity.id)
            .order_by(User.username)
        )
    )


def checker_accounts() -> list[User]:
    return list(
        db.session.scalars(
            select(User).where(User.role == Role.CHECKER, User.is_enabled).order_by(User.username)
        )
    )
