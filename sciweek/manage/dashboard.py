"""The back-office home's figures for one user, by role (plain data, no request).

- Admins: every activity's sessions today and in the next seven days (registered / capacity
  / checked in / waitlisted), the activities with a waitlist, the activities without a
  summary (活动总结) a week after they ended, and the towns behind their coverage target.
- Organizers: the same for their department's activities; every town behind its target.
- Coordinators: their town's coverage (trained / cadres / target / gap, untrained cadres)
  and the sessions of trainings held in their town or inviting its cadres.
- Checkers: the sessions they are assigned to today.

"Today" is the Asia/Shanghai date; the week is the door's (``checkin.services.week_ahead``).
Coverage comes from ``training.coverage`` so the dashboard says what the coverage page says.
A fixed number of queries, however many activities or sessions (lists are capped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Select, and_, case, exists, false, func, or_, select

from ..checkin.services import week_ahead
from ..extensions import db
from ..i18n import to_local
from ..models import (
    Activity,
    ActivityKind,
    ActivitySession,
    ActivitySummary,
    CheckIn,
    Registration,
    Role,
    User,
)
from ..permissions import activities_visible_to, coordinator_town_id
from ..training.coverage import TownCoverage, coverage_by_town
from ..training.invitations import invites_town

# An activity's organizer writes its summary within this long after its last session.
SUMMARY_DUE_AFTER = timedelta(days=7)
# Lists are capped; the page says how many more there are and where to find them.
SESSION_LIMIT = 100
WAITLIST_LIMIT = 20
MISSING_SUMMARY_LIMIT = 20


@dataclass(frozen=True)
class SessionFigures:
    """One session in the window, with its activity's places and the session's check-ins."""

    session_id: int
    activity_id: int
    title: str
    kind: ActivityKind
    venue: str
    starts_at: datetime
    ends_at: datetime
    capacity: int | None
    registered: int  # confirmed places (not those admitted beyond capacity)
    over_capacity: int  # admitted at the door beyond capacity (超额签到)
    waitlisted: int
    checked_in: int  # live check-ins at this session
    # A training that invites roster cadres (a coordinator: their town's): its roster door.
    invites_roster: bool


@dataclass(frozen=True)
class WaitlistFigures:
    activity_id: int
    title: str
    starts_at: datetime | None
    capacity: int | None
    registered: int
    waitlisted: int


@dataclass(frozen=True)
class MissingSummary:
    activity_id: int
    title: str
    kind: ActivityKind
    ended_at: datetime


@dataclass
class Dashboard:
    role: Role
    today: date
    year: int
    sessions_today: list[SessionFigures] = field(default_factory=list)
    sessions_week: list[SessionFigures] = field(default_factory=list)  # the next seven days
    sessions_capped: bool = False  # more sessions in the window than shown
    waitlists: list[WaitlistFigures] | None = None
    missing_summaries: list[MissingSummary] | None = None
    missing_summaries_total: int = 0
    towns_below_target: list[TownCoverage] | None = None
    own_town: TownCoverage | None = None

    @property
    def shows_week(self) -> bool:
        """Checkers see today's sessions only."""
        return self.role != Role.CHECKER


def _in_scope(user: User) -> Select:
    """The ids of the activities whose sessions ``user``'s dashboard shows."""
    if user.role == Role.COORDINATOR:
        if user.town_id is None:
            return select(Activity.id).where(false())
        trainings_here = and_(
            Activity.kind == ActivityKind.TRAINING, Activity.town_id == user.town_id
        )
        return select(Activity.id).where(or_(trainings_here, invites_town(user.town_id)))
    return activities_visible_to(user).with_only_columns(Activity.id)


def _number(condition):
    """SQL: how many rows of the group meet ``condition``."""
    return func.sum(case((condition, 1), else_=0))


def _holds_place(*, over_capacity: bool):
    """SQL: a confirmed place, within capacity or (``over_capacity``) admitted beyond it;
    counted apart as the registrants page does (``registration.services.registrant_counts``)."""
    return and_(Registration.is_confirmed, Registration.over_capacity.is_(over_capacity))


def _registration_counts(activity_ids: list[int]) -> dict[int, tuple[int, int, int]]:
    """Per activity: (confirmed places, admitted beyond capacity, waitlisted)."""
    if not activity_ids:
        return {}
    stmt = (
        select(
            Registration.activity_id,
            _number(_holds_place(over_capacity=False)),
            _number(_holds_place(over_capacity=True)),
            _number(Registration.is_waitlisted),
        )
        .where(Registration.activity_id.in_(activity_ids))
        .group_by(Registration.activity_id)
    )
    return {
        row[0]: (int(row[1] or 0), int(row[2] or 0), int(row[3] or 0))
        for row in db.session.execute(stmt)
    }


def _checkin_counts(session_ids: list[int]) -> dict[int, int]:
    """Per session: live check-ins (as the door's counter counts them)."""
    if not session_ids:
        return {}
    stmt = (
        select(CheckIn.session_id, func.count(CheckIn.id))
        .where(CheckIn.session_id.in_(session_ids), CheckIn.undone_at.is_(None))
        .group_by(CheckIn.session_id)
    )
    return {session_id: int(n) for session_id, n in db.session.execute(stmt)}


def _sessions(user: User, start: datetime, end: datetime) -> tuple[list[SessionFigures], bool]:
    """Sessions of published activities in scope meeting [start, end), by start; capped."""
    stmt = (
        select(
            ActivitySession.id,
            ActivitySession.starts_at,
            ActivitySession.ends_at,
            Activity.id,
            Activity.title,
            Activity.kind,
            Activity.venue,
            Activity.capacity,
            invites_town(coordinator_town_id(user)).label("invites_roster"),
        )
        .join(Activity, Activity.id == ActivitySession.activity_id)
        .where(
            Activity.id.in_(_in_scope(user)),
            Activity.is_published,
            ActivitySession.counts_for_coverage,  # not cancelled
            ActivitySession.ends_at >= start,
            ActivitySession.starts_at < end,
        )
        .order_by(ActivitySession.starts_at, ActivitySession.id)
        .limit(SESSION_LIMIT + 1)
    )
    rows = db.session.execute(stmt).all()
    capped = len(rows) > SESSION_LIMIT
    rows = rows[:SESSION_LIMIT]
    places = _registration_counts(sorted({row[3] for row in rows}))
    checked_in = _checkin_counts([row[0] for row in rows])
    figures = []
    for row in rows:
        registered, over_capacity, waitlisted = places.get(row[3], (0, 0, 0))
        figures.append(
            SessionFigures(
                session_id=row[0],
                starts_at=row[1],
                ends_at=row[2],
                activity_id=row[3],
                title=row[4],
                kind=row[5],
                venue=row[6],
                capacity=row[7],
                registered=registered,
                over_capacity=over_capacity,
                waitlisted=waitlisted,
                checked_in=checked_in.get(row[0], 0),
                invites_roster=bool(row[8]),
            )
        )
    return figures, capped


def _last_end():
    """Correlated subquery: when an activity's last session ends."""
    return (
        select(func.max(ActivitySession.ends_at))
        .where(ActivitySession.activity_id == Activity.id)
        .correlate(Activity)
        .scalar_subquery()
    )


def _waitlists(user: User, now: datetime) -> list[WaitlistFigures]:
    """Activities in scope, not yet over, with people waiting for a place; soonest first."""
    first_start = (
        select(func.min(ActivitySession.starts_at))
        .where(ActivitySession.activity_id == Activity.id)
        .correlate(Activity)
        .scalar_subquery()
    )
    waiting = _number(Registration.is_waitlisted)
    stmt = (
        select(
            Activity.id,
            Activity.title,
            first_start.label("starts_at"),
            Activity.capacity,
            _number(_holds_place(over_capacity=False)).label("registered"),
            waiting.label("waitlisted"),
        )
        .join(Registration, Registration.activity_id == Activity.id)
        .where(
            Activity.id.in_(_in_scope(user)),
            Activity.is_published,
            _last_end() >= now,
        )
        .group_by(Activity.id, Activity.title, Activity.capacity)
        .having(waiting > 0)
        .order_by(first_start, Activity.id)
        .limit(WAITLIST_LIMIT)
    )
    return [
        WaitlistFigures(
            activity_id=row.id,
            title=row.title,
            starts_at=row.starts_at,
            capacity=row.capacity,
            registered=int(row.registered),
            waitlisted=int(row.waitlisted),
        )
        for row in db.session.execute(stmt)
    ]


def _missing_summaries(user: User, now: datetime) -> tuple[list[MissingSummary], int]:
    """Published activities in scope whose last session ended at least a week ago and that
    have no summary yet, the most recently ended first; with how many there are in all."""
    last_end = _last_end()
    summarised = exists().where(ActivitySummary.activity_id == Activity.id)
    stmt = (
        select(
            Activity.id,
            Activity.title,
            Activity.kind,
            last_end.label("ended_at"),
            func.count().over().label("total"),
        )
        .where(
            Activity.id.in_(_in_scope(user)),
            Activity.is_published,
            last_end <= now - SUMMARY_DUE_AFTER,
            ~summarised,
        )
        .order_by(last_end.desc(), Activity.id.desc())
        .limit(MISSING_SUMMARY_LIMIT)
    )
    rows = db.session.execute(stmt).all()
    total = int(rows[0].total) if rows else 0
    return [
        MissingSummary(activity_id=r.id, title=r.title, kind=r.kind, ended_at=r.ended_at)
        for r in rows
    ], total


def build_dashboard(user: User, now: datetime) -> Dashboard:
    """The back-office home of ``user`` at ``now`` (aware)."""
    today_start, week_end = week_ahead(now)
    tomorrow_start = today_start + timedelta(days=1)
    today = to_local(now).date()
    board = Dashboard(role=user.role, today=today, year=today.year)

    end = week_end if board.shows_week else tomorrow_start
    sessions, board.sessions_capped = _sessions(user, today_start, end)
    board.sessions_today = [s for s in sessions if s.starts_at < tomorrow_start]
    board.sessions_week = [s for s in sessions if s.starts_at >= tomorrow_start]

    if user.role in (Role.ADMIN, Role.ORGANIZER):
        board.waitlists = _waitlists(user, now)
        board.missing_summaries, board.missing_summaries_total = _missing_summaries(user, now)
        report = coverage_by_town(board.year)
        board.towns_below_target = sorted(
            (t for t in report.towns if t.below_target), key=lambda t: (-(t.gap or 0), t.code)
        )
    elif user.role == Role.COORDINATOR and user.town_id is not None:
        towns = coverage_by_town(board.year, [user.town_id]).towns
        board.own_town = towns[0] if towns else None
    return board
