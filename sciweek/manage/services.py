"""Scheduling rules: saving, publishing and cancelling activities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import func, select

from .. import signals
from ..extensions import db
from ..models import (
    Activity,
    ActivitySession,
    ActivityStatus,
    Audience,
    Campaign,
    CheckIn,
    Department,
    Role,
    User,
    Village,
    utcnow,
)
from ..registration.services import fill_from_waitlist


class SchedulingError(ValueError):
    """A user-facing reason why a scheduling change was refused."""


@dataclass
class ActivityData:
    title: str
    kind: str
    description: str
    department_ids: list[int]
    campaign_id: int | None
    town_id: int | None
    village_id: int | None
    venue: str
    latitude: float | None
    longitude: float | None
    audience: str
    capacity: int | None
    waitlist_enabled: bool
    registration_opens_at: datetime | None
    registration_closes_at: datetime | None
    sessions: list[dict]
    sms_verification: bool = False


def _timing_and_place(activity: Activity) -> tuple:
    """What calendar subscribers see change: times, place and status."""
    return (
        activity.status,
        activity.town_id,
        activity.village_id,
        activity.venue,
        activity.latitude,
        activity.longitude,
        tuple(sorted((s.id, s.starts_at, s.ends_at) for s in activity.sessions)),
    )


def save_activity(activity: Activity | None, data: ActivityData, editor: User) -> Activity:
    """Create or update an activity with its sessions, in the caller's transaction.

    An organizer's own department is always kept among the organizers, so an
    organizer cannot lock themselves out of an activity by editing it.
    """
    creating = activity is None
    if activity is None:
        activity = Activity(status=ActivityStatus.DRAFT, sequence=0)
        before = None
    else:
        before = _timing_and_place(activity)

    department_ids = set(data.department_ids)
    if editor.role == Role.ORGANIZER:
        department_ids.add(editor.department_id)
    departments = db.session.scalars(
        select(Department).where(Department.id.in_(department_ids))
    ).all()
    if len(departments) != len(department_ids):
        raise SchedulingError(_("未知的主办部门。"))
    if data.campaign_id and db.session.get(Campaign, data.campaign_id) is None:
        raise SchedulingError(_("未知的专题。"))
    if data.village_id:
        village = db.session.get(Village, data.village_id)
        if village is None or village.town_id != data.town_id:
            raise SchedulingError(_("所选村/社区不属于所选镇街。"))
    if data.capacity is not None and not creating and data.capacity < activity.confirmed_count:
        raise SchedulingError(
            _("已有 %(n)s 人确认报名，名额不能少于此数。", n=activity.confirmed_count)
        )

    activity.title = data.title.strip()
    activity.kind = data.kind
    activity.description = data.description.strip()
    activity.departments = list(departments)
    activity.campaign_id = data.campaign_id or None
    activity.town_id = data.town_id or None
    activity.village_id = data.village_id or None
    activity.venue = data.venue.strip()
    activity.latitude = data.latitude
    activity.longitude = data.longitude
    activity.audience = data.audience or Audience.PUBLIC
    more_places = not creating and (
        data.capacity is None
        or (activity.capacity is not None and data.capacity > activity.capacity)
    )
    activity.capacity = data.capacity
    activity.waitlist_enabled = data.waitlist_enabled
    activity.sms_verification = data.sms_verification
    activity.registration_opens_at = data.registration_opens_at
    activity.registration_closes_at = data.registration_closes_at
    _apply_sessions(activity, data.sessions)
    db.session.add(activity)
    if not activity.sessions:
        raise SchedulingError(_("至少需要一个场次。"))

    db.session.flush()
    signals.door_access_changed.send(activity)
    if before is not None and before != _timing_and_place(activity):
        activity.sequence += 1
        signals.activity_rescheduled.send(activity)
    if more_places:
        # New places go to the waitlist first, in order, in this same transaction.
        fill_from_waitlist(activity.id)
    return activity


def _apply_sessions(activity: Activity, rows: list[dict]) -> None:
    existing = {s.id: s for s in activity.sessions}
    for row in rows:
        session = existing.get(row["id"]) if row["id"] else None
        if row["id"] and session is None:
            raise SchedulingError(_("场次不属于此活动。"))
        if row["remove"]:
            if session is not None:
                if _has_check_ins(session.id):
                    # Check-ins are attendance (and cadres' credit hours): never dropped.
                    raise SchedulingError(_("该场次已有签到记录，不能删除。"))
                activity.sessions.remove(session)
            continue
        if session is None:
            session = ActivitySession()
            activity.sessions.append(session)
        session.starts_at = row["starts_at"]
        session.ends_at = row["ends_at"]
        session.credit_hours = row["credit_hours"]
        session.note = row["note"]


def _has_check_ins(session_id: int) -> bool:
    return (
        db.session.scalar(select(CheckIn.id).where(CheckIn.session_id == session_id).limit(1))
        is not None
    )


def publish_activity(activity: Activity) -> None:
    if activity.status == ActivityStatus.CANCELLED:
        raise SchedulingError(_("已取消的活动不能再发布。"))
    if not activity.sessions:
        raise SchedulingError(_("至少需要一个场次才能发布。"))
    if activity.status != ActivityStatus.PUBLISHED:
        activity.status = ActivityStatus.PUBLISHED
        activity.published_at = utcnow()
        signals.door_access_changed.send(activity)


@dataclass
class CancellationPlan:
    """What cancelling an activity now does to its sessions."""

    cancelled: list[ActivitySession]  # not begun: cancelled with the activity
    held: list[ActivitySession]  # begun: stay held, their check-ins keep counting


def cancellation_plan(activity: Activity, now: datetime) -> CancellationPlan:
    """Which sessions cancelling ``activity`` at ``now`` cancels, and which stay held."""
    sessions = [s for s in activity.sessions if not s.is_cancelled]
    return CancellationPlan(
        cancelled=[s for s in sessions if not s.has_begun(now)],
        held=[s for s in sessions if s.has_begun(now)],
    )


def cancel_activity(
    activity: Activity, reason: str, now: datetime | None = None
) -> CancellationPlan:
    """Cancel, keeping the activity (and its registrations) for the record.

    Only the sessions that have not begun are cancelled; those that have stay held, and
    their check-ins keep counting (cadre coverage, counts). An activity whose sessions
    have all begun cannot be cancelled any more.
    """
    reason = reason.strip()
    if not reason:
        raise SchedulingError(_("请说明取消原因。"))
    if activity.status == ActivityStatus.CANCELLED:
        raise SchedulingError(_("活动已取消。"))
    now = now or utcnow()
    plan = cancellation_plan(activity, now)
    if not plan.cancelled:
        raise SchedulingError(_("所有场次都已开始，活动不能再取消；已举行场次的签到照常计入。"))
    for session in plan.cancelled:
        session.cancelled_at = now
    activity.status = ActivityStatus.CANCELLED
    activity.cancel_reason = reason
    activity.cancelled_at = now
    activity.sequence += 1
    signals.door_access_changed.send(activity)
    signals.activity_cancelled.send(activity)
    return plan


@dataclass
class VenueConflict:
    session: ActivitySession
    other: ActivitySession


def venue_conflicts(activity: Activity) -> list[VenueConflict]:
    """Sessions of other live activities at the same venue whose times overlap."""
    venue = activity.venue.strip()
    if not venue or not activity.sessions:
        return []
    conflicts: list[VenueConflict] = []
    for session in activity.sessions:
        others = db.session.scalars(
            select(ActivitySession)
            .join(Activity)
            .where(
                Activity.id != activity.id,
                Activity.status != ActivityStatus.CANCELLED,
                func.trim(Activity.venue) == venue,
                (Activity.town_id == activity.town_id)
                if activity.town_id
                else Activity.town_id.is_(None),
                ActivitySession.starts_at < session.ends_at,
                ActivitySession.ends_at > session.starts_at,
            )
        ).all()
        conflicts.extend(VenueConflict(session, other) for other in others)
    # Two sessions of the same activity overlapping each other at one venue.
    ordered = sorted(activity.sessions, key=lambda s: s.starts_at)
    for first, second in zip(ordered, ordered[1:], strict=False):
        if second.starts_at < first.ends_at:
            conflicts.append(VenueConflict(second, first))
    return conflicts
