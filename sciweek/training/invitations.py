"""Whose roster cadres a training is for: the towns it names, or the whole district.

A training's invited cadres are found and checked in at its door (``checkin.roster_door``)
without having registered online: towns summon their cadres, the roster is the invitation
list. A cadre is invited when the training invites their town (``Activity.roster_towns``)
or the whole district (``Activity.roster_whole_district``), and they are on the roster
during the training: joined on or before its last day, not left before its first day.
Their town and village are those of their roster period during the training
(``periods.periods_during``): a cadre who has since moved is still, for a past training,
a cadre of the town they served in then.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import ColumnElement, Select, Subquery, and_, exists, false, or_, select, true

from ..extensions import db
from ..i18n import to_local
from ..models import (
    Activity,
    ActivityKind,
    ActivitySession,
    ActivityStatus,
    Cadre,
    CadrePeriod,
    Town,
    Village,
    activity_roster_towns,
    utcnow,
)
from .periods import period_during, periods_during
from .services import TrainingError


def roster_dates(activity: Activity) -> tuple[date, date] | None:
    """The first and last local day of the training's sessions (None without sessions)."""
    if not activity.sessions:
        return None
    first = min(s.starts_at for s in activity.sessions)
    last = max(s.ends_at for s in activity.sessions)
    return to_local(first).date(), to_local(last).date()


def training_periods(activity: Activity) -> Subquery:
    """Per cadre on the roster during the training: their roster period then (columns
    cadre_id, town_id, village_id, posts; none for a training without sessions)."""
    dates = roster_dates(activity)
    if dates is None:
        return periods_during(date.min, date.min).where(false()).subquery("training_period")
    return periods_during(*dates).subquery("training_period")


def invited_periods(activity: Activity, town_id: int | None = None) -> Subquery:
    """Per cadre ``activity`` is for (of ``town_id`` only, when given): their roster period
    during it (columns cadre_id, town_id, village_id, posts)."""
    dates = roster_dates(activity)
    stmt = periods_during(*dates) if dates else periods_during(date.min, date.min)
    served = stmt.selected_columns
    if not activity.invites_roster or dates is None:
        stmt = stmt.where(false())
    elif not activity.roster_whole_district:
        stmt = stmt.where(
            exists().where(
                activity_roster_towns.c.activity_id == activity.id,
                activity_roster_towns.c.town_id == served.town_id,
            )
        )
    if town_id is not None:
        stmt = stmt.where(served.town_id == town_id)
    return stmt.subquery("invited_period")


def invited_filter(activity: Activity, town_id: int | None = None) -> ColumnElement[bool]:
    """SQL: this cadre (``Cadre``) is invited to ``activity`` (as a cadre of ``town_id``,
    when given).

    The Python twin, without the roster dates, is ``Activity.invites_cadres_of``.
    """
    return Cadre.id.in_(select(invited_periods(activity, town_id).c.cadre_id))


def invited_cadres(activity: Activity, town_id: int | None = None) -> Select:
    """The cadres ``activity`` is for (of ``town_id`` only, when given)."""
    return select(Cadre).where(invited_filter(activity, town_id))


def invited_cadre(activity: Activity, cadre_id: int) -> Cadre | None:
    """The cadre with this id, when ``activity`` is for them."""
    return db.session.scalar(invited_cadres(activity).where(Cadre.id == cadre_id))


def villages_at_training(activity: Activity, cadre_ids: list[int]) -> dict[int, str]:
    """The village each of these cadres served in during the training (by cadre id; absent
    for a cadre off the roster then)."""
    if not cadre_ids:
        return {}
    served = training_periods(activity)
    rows = db.session.execute(
        select(served.c.cadre_id, Village.name)
        .join(Village, Village.id == served.c.village_id)
        .where(served.c.cadre_id.in_(cadre_ids))
    )
    return {cadre_id: name for cadre_id, name in rows}


def period_at_training(activity: Activity, cadre: Cadre) -> CadrePeriod | None:
    """The cadre's roster period during the training (None: off the roster then)."""
    dates = roster_dates(activity)
    return period_during(cadre.id, *dates) if dates else None


def set_roster_towns(activity: Activity, *, whole_district: bool, town_ids: list[int]) -> None:
    """Name the cadres a training is for: the whole district, or the towns ``town_ids``.

    Only trainings invite cadres; an activity of another kind keeps none (an organizer who
    turns a training into outreach gets a refusal while towns are still named).
    """
    wanted = set(town_ids)
    if activity.kind != ActivityKind.TRAINING:
        if whole_district or wanted:
            raise TrainingError(_("只有培训活动可以指定参训干部。"))
        activity.roster_whole_district = False
        activity.roster_towns = []
        return
    towns = list(db.session.scalars(select(Town).where(Town.id.in_(wanted)))) if wanted else []
    if len(towns) != len(wanted):
        raise TrainingError(_("所选镇街不存在。"))
    activity.roster_whole_district = whole_district
    # The whole district includes every town: naming some as well would mean nothing.
    activity.roster_towns = [] if whole_district else towns
    db.session.flush()


# Trainings a coordinator's town is invited to are listed on the town's page from this long ago.
RECENT_TRAININGS = timedelta(days=30)


def invites_town(town_id: int | None) -> ColumnElement[bool]:
    """SQL: the activity (``Activity``) is a training for the roster cadres of ``town_id``
    (it names the town or the whole district); with None, of any town. The Python twins
    are ``Activity.invites_cadres_of`` and ``Activity.invites_roster``."""
    town_named = exists().where(activity_roster_towns.c.activity_id == Activity.id)
    if town_id is not None:
        town_named = town_named.where(activity_roster_towns.c.town_id == town_id)
    return and_(
        Activity.kind == ActivityKind.TRAINING,
        or_(Activity.roster_whole_district == true(), town_named),
    )


def trainings_inviting(town_id: int, now: datetime | None = None) -> list[Activity]:
    """Published trainings inviting this town's cadres, ending after a month ago, by start."""
    since = (now or utcnow()) - RECENT_TRAININGS
    last_end = (
        select(ActivitySession.ends_at)
        .where(ActivitySession.activity_id == Activity.id)
        .correlate(Activity)
        .order_by(ActivitySession.ends_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    activities = db.session.scalars(
        select(Activity)
        .where(
            invites_town(town_id),
            Activity.status == ActivityStatus.PUBLISHED,
            last_end >= since,
        )
        .order_by(Activity.id)
    ).all()
    return sorted(activities, key=lambda a: (a.starts_at or since, a.id))
