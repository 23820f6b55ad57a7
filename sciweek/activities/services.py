"""Finding activities for the public: filters, search, month calendar."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask_login import current_user
from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..i18n import LOCAL_TZ, to_local
from ..models import Activity, ActivitySession, ActivityStatus, Campaign, Town
from ..permissions import can_manage_activity

PUBLIC_STATUSES = (ActivityStatus.PUBLISHED, ActivityStatus.CANCELLED)


@dataclass
class ListingFilters:
    kind: str | None = None
    town: Town | None = None
    campaign: Campaign | None = None
    date_from: date | None = None
    date_to: date | None = None
    words: str = ""


def local_day_start(day: date) -> datetime:
    """Midnight of a local (Asia/Shanghai) day, as an aware datetime."""
    return datetime.combine(day, time.min, tzinfo=LOCAL_TZ)


def first_session_start():
    """Correlated subquery: when an activity's first session starts."""
    return (
        select(func.min(ActivitySession.starts_at))
        .where(ActivitySession.activity_id == Activity.id)
        .correlate(Activity)
        .scalar_subquery()
    )


def public_activities(filters: ListingFilters) -> Select:
    """Published and cancelled activities matching ``filters``, soonest first.

    A date range keeps activities with at least one session starting inside it.
    """
    stmt = select(Activity).where(Activity.status.in_(PUBLIC_STATUSES))
    if filters.kind:
        stmt = stmt.where(Activity.kind == filters.kind)
    if filters.town is not None:
        stmt = stmt.where(Activity.town_id == filters.town.id)
    if filters.campaign is not None:
        stmt = stmt.where(Activity.campaign_id == filters.campaign.id)
    session_conditions = []
    if filters.date_from:
        session_conditions.append(ActivitySession.starts_at >= local_day_start(filters.date_from))
    if filters.date_to:
        session_conditions.append(
            ActivitySession.starts_at < local_day_start(filters.date_to + timedelta(days=1))
        )
    if session_conditions:
        stmt = stmt.where(
            exists().where(ActivitySession.activity_id == Activity.id, and_(*session_conditions))
        )
    for word in filters.words.split()[:5]:
        pattern = f"%{_escape_like(word)}%"
        stmt = stmt.where(
            or_(
                Activity.title.ilike(pattern, escape="\\"),
                Activity.description.ilike(pattern, escape="\\"),
                Activity.venue.ilike(pattern, escape="\\"),
            )
        )
    return stmt.options(
        selectinload(Activity.sessions),
        selectinload(Activity.town),
        selectinload(Activity.departments),
    ).order_by(first_session_start().nulls_last(), Activity.id)


def _escape_like(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass
class CalendarDay:
    day: date
    in_month: bool
    sessions: list[ActivitySession]


def month_calendar(year: int, month: int, filters: ListingFilters) -> list[list[CalendarDay]]:
    """Weeks (Monday first) of the month, each day with the sessions starting on it."""
    first = date(year, month, 1)
    last = date(year, month, calendar.monthrange(year, month)[1])
    grid_start = first - timedelta(days=first.weekday())
    grid_end = last + timedelta(days=6 - last.weekday())
    month_filters = ListingFilters(
        kind=filters.kind,
        town=filters.town,
        campaign=filters.campaign,
        date_from=grid_start,
        date_to=grid_end,
        words=filters.words,
    )
    activity_ids = public_activities(month_filters).with_only_columns(Activity.id).order_by(None)
    sessions = db.session.scalars(
        select(ActivitySession)
        .where(
            ActivitySession.activity_id.in_(activity_ids),
            ActivitySession.starts_at >= local_day_start(grid_start),
            ActivitySession.starts_at < local_day_start(grid_end + timedelta(days=1)),
        )
        .options(selectinload(ActivitySession.activity))
        .order_by(ActivitySession.starts_at)
    ).all()
    by_day: dict[date, list[ActivitySession]] = {}
    for session in sessions:
        by_day.setdefault(to_local(session.starts_at).date(), []).append(session)
    weeks, day = [], grid_start
    while day <= grid_end:
        week = []
        for _ in range(7):
            week.append(CalendarDay(day, day.month == month, by_day.get(day, [])))
            day += timedelta(days=1)
        weeks.append(week)
    return weeks


def visible_activity(activity_id: int) -> Activity | None:
    """An activity the current visitor may see: public ones, or drafts they manage."""
    activity = db.session.get(Activity, activity_id, options=[selectinload(Activity.sessions)])
    if activity is None:
        return None
    if activity.status in PUBLIC_STATUSES:
        return activity
    if current_user.is_authenticated and can_manage_activity(current_user, activity):
        return activity
    return None
