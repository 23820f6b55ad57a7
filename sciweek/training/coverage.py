"""Training coverage (参训率) by the counting rules in DOMAIN.md, with aggregate queries.

- Denominator: cadres on a town's roster at any time in the year. Where a cadre served
  comes from their roster periods (``periods``): in a year they count for the town of
  their latest period in it, so importing next year's roster never moves last year's.
- Numerator: those cadres whose credited hours in the year, from check-ins at sessions of
  training activities that were not cancelled, reach the town's threshold for the year
  (no threshold set: any attended session). A training cancelled after one of its
  sessions had begun keeps that session: cancelling cancels only the sessions to come.
  Check-ins of every kind count (scanned, self, walk-in, typed in from a paper sheet).
- A cadre counts for the town of their roster period, wherever the training was held;
  that town's threshold decides whether they are trained.
- Attendance belongs to the cadre stored on the registration: linked by phone when
  registering or importing a roster, or by hand.
- The district figure adds up people; it never averages town percentages. Its target is
  the district's own for the year (``DistrictTarget``), else the towns' targets applied to
  their cadres over all the district's cadres (a town without one asks for nobody).

Every figure comes from a fixed number of GROUP BY queries, however many towns or cadres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select
from sqlalchemy.orm import aliased

from ..extensions import db
from ..i18n import LOCAL_TZ, local_today
from ..models import (
    TOWN_ORDER,
    Activity,
    ActivitySession,
    ActivityStatus,
    Cadre,
    CheckIn,
    CoverageTarget,
    DistrictTarget,
    Registration,
    Town,
    Village,
    utcnow,
)
from ..placenames import natural_key
from .periods import periods_in_year

# Within this many percentage points below target a town is "close".
CLOSE_MARGIN = Decimal("10")


@dataclass
class TownCoverage:
    town_id: int
    code: str
    name: str
    cadres: int = 0
    trained: int = 0
    target_percent: Decimal | None = None
    threshold_hours: Decimal | None = None
    attendances: int = 0
    trainings: int = 0
    hours: Decimal = Decimal(0)

    @property
    def coverage(self) -> float:
        return self.trained / self.cadres if self.cadres else 0.0

    @property
    def target(self) -> float | None:
        return float(self.target_percent) / 100 if self.target_percent is not None else None

    @property
    def needed(self) -> int | None:
        """Trained cadres the target asks for."""
        if self.target_percent is None:
            return None
        return math.ceil(self.target_percent * self.cadres / 100)

    @property
    def gap(self) -> int | None:
        """How many more trained cadres reach the target (0 when reached)."""
        needed = self.needed
        return None if needed is None else max(needed - self.trained, 0)

    @property
    def untrained(self) -> int:
        """Cadres not (yet) trained: as many as ``untrained_cadres`` lists."""
        return self.cadres - self.trained

    @property
    def below_target(self) -> bool:
        """A target is set and not reached (status close or behind)."""
        return bool(self.gap)

    @property
    def status(self) -> str:
        """reached, close, behind, or none (no target set)."""
        if self.target_percent is None:
            return "none"
        if self.gap == 0:
            return "reached"
        if Decimal(self.coverage * 100) >= self.target_percent - CLOSE_MARGIN:
            return "close"
        return "behind"

    def as_json(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "cadres": self.cadres,
            "trained": self.trained,
            "coverage": self.coverage,
            "target": self.target,
            "gap": self.gap,
            "attendances": self.attendances,
            "trainings": self.trainings,
            "hours": float(self.hours),
        }


@dataclass
class DistrictCoverage:
    year: int
    towns: list[TownCoverage]
    trainings: int = 0  # distinct trainings held anywhere in the district (期数)
    # The district's own target for the year (目标责任书), if set.
    own_target_percent: Decimal | None = None

    @property
    def cadres(self) -> int:
        return sum(t.cadres for t in self.towns)

    @property
    def trained(self) -> int:
        return sum(t.trained for t in self.towns)

    @property
    def coverage(self) -> float:
        return self.trained / self.cadres if self.cadres else 0.0

    @property
    def attendances(self) -> int:
        return sum(t.attendances for t in self.towns)

    @property
    def hours(self) -> Decimal:
        return sum((t.hours for t in self.towns), Decimal(0))

    @property
    def target_is_own(self) -> bool:
        """Whether the district target is the district's own (else computed from towns')."""
        return self.own_target_percent is not None

    def _asked(self) -> Decimal | None:
        """Target percent × cadres: a hundred times the trained people the target asks for."""
        if self.own_target_percent is not None:
            return self.own_target_percent * self.cadres
        asked = [t.target_percent * t.cadres for t in self.towns if t.target_percent is not None]
        if not asked or not self.cadres:
            return None
        return sum(asked, Decimal(0))

    @property
    def target_percent(self) -> Decimal | None:
        """The district's own target; without one, the towns' targets applied to their
        cadres, over all the district's cadres (a town without a target asks for nobody)."""
        if self.own_target_percent is not None:
            return self.own_target_percent
        asked = self._asked()
        return None if asked is None else asked / self.cadres

    @property
    def target(self) -> float | None:
        percent = self.target_percent
        return float(percent) / 100 if percent is not None else None

    @property
    def needed(self) -> int | None:
        """Trained cadres the district target asks for: ceil(target × district cadres)
        (computed without dividing first, so 80 % of 3 people is 3, not 3 and a rounding)."""
        asked = self._asked()
        return None if asked is None else math.ceil(asked / 100)

    @property
    def gap(self) -> int | None:
        """District 差额: how many more trained cadres reach the district target (0 when
        reached)."""
        needed = self.needed
        return None if needed is None else max(needed - self.trained, 0)

    @property
    def town_gaps(self) -> int | None:
        """The sum of the towns' gaps (not the district gap: a town ahead of its target
        does not make up for one behind)."""
        gaps = [t.gap for t in self.towns if t.gap is not None]
        return sum(gaps) if gaps else None

    def as_json(self) -> dict:
        return {
            "year": self.year,
            "district": {
                "cadres": self.cadres,
                "trained": self.trained,
                "coverage": self.coverage,
                "target": self.target,
                "target_source": None
                if self.target is None
                else ("district" if self.target_is_own else "towns"),
                "gap": self.gap,
                "town_gaps": self.town_gaps,
            },
            "towns": [t.as_json() for t in self.towns],
        }


def year_bounds(year: int) -> tuple[datetime, datetime]:
    """The local calendar year as an aware [start, end) pair."""
    start = datetime(year, 1, 1, tzinfo=LOCAL_TZ)
    return start, datetime(year + 1, 1, 1, tzinfo=LOCAL_TZ)


def counted_checkins(*columns) -> Select:
    """SELECT ``columns`` from the check-ins that count for cadres' coverage, joined to
    their registration, session and activity: live (not undone), of a registration linked
    to a cadre and not cancelled itself, at a session of a training that was held (not
    cancelled). The one statement of which attendance counts: coverage adds these up per
    cadre, the 台账 (``training.ledger``) lists them one by one."""
    return (
        select(*columns)
        .select_from(CheckIn)
        .join(Registration, Registration.id == CheckIn.registration_id)
        .join(ActivitySession, ActivitySession.id == CheckIn.session_id)
        .join(Activity, Activity.id == ActivitySession.activity_id)
        .where(
            CheckIn.undone_at.is_(None),
            Registration.cadre_id.is_not(None),
            Registration.counts_for_coverage,
            Activity.counts_for_coverage,
            ActivitySession.counts_for_coverage,
        )
    )


def in_year(year: int) -> ColumnElement[bool]:
    """The session starts in the local calendar year ``year``."""
    start, end = year_bounds(year)
    return and_(ActivitySession.starts_at >= start, ActivitySession.starts_at < end)


def held_in_year(year: int, now: datetime | None = None) -> ColumnElement[bool]:
    """The session was held in ``year``: not cancelled, begun by ``now`` (default: the
    present; a session planned for December is not one of May's), of an activity that was
    published (a draft was never held). 期数 here and every count of the annual assessment
    use it; a report built from several queries passes the one ``now`` it read to each."""
    start, end = year_bounds(year)
    return and_(
        ActivitySession.counts_for_coverage,
        Activity.status != ActivityStatus.DRAFT,
        ActivitySession.starts_at >= start,
        ActivitySession.starts_at < min(end, now or utcnow()),
    )


def cadre_attendance(year: int):
    """Per cadre: sessions attended in the year (人次) and credited hours.

    A subquery with columns cadre_id, attendances, hours. Attendance belongs to the
    cadre stored on the registration (set by phone when registering or importing a
    roster, or by hand). No DISTINCT is needed: a live check-in is unique per
    registration and session, and an active registration per cadre and activity
    (both partial unique indexes), so (cadre, session) pairs cannot repeat.
    """
    return (
        counted_checkins(
            Registration.cadre_id.label("cadre_id"),
            func.count().label("attendances"),
            # Each session's hours have one decimal; SQLite adds them as floats.
            func.round(func.sum(ActivitySession.hours), 1).label("hours"),
        )
        .where(in_year(year))
        .group_by(Registration.cadre_id)
        .subquery("per_cadre")
    )


def one_decimal(hours) -> Decimal:
    """Hours as read back from the database (SQLite gives floats), to one decimal: a sum
    of hours here, a session's hours in the 台账 (``training.ledger``)."""
    return Decimal(hours or 0).quantize(Decimal("0.1"))


def district_target(year: int) -> Decimal | None:
    """The district's own target percent for ``year``, if set."""
    return db.session.scalar(
        select(DistrictTarget.target_percent).where(DistrictTarget.year == year)
    )


def _is_trained(per_cadre, target):
    return or_(
        and_(target.threshold_hours.is_(None), per_cadre.c.attendances > 0),
        per_cadre.c.hours >= target.threshold_hours,
    )


def coverage_by_town(
    year: int, town_ids: list[int] | None = None, *, now: datetime | None = None
) -> DistrictCoverage:
    """Coverage per town and for the district in ``year`` (five queries in all); 期数 counts
    the trainings held by ``now`` (default: the present)."""
    towns_stmt = select(Town.id, Town.code, Town.name).order_by(*TOWN_ORDER)
    if town_ids is not None:
        towns_stmt = towns_stmt.where(Town.id.in_(town_ids))
    towns = {
        row.id: TownCoverage(town_id=row.id, code=row.code, name=row.name)
        for row in db.session.execute(towns_stmt)
    }

    for row in db.session.execute(
        select(
            CoverageTarget.town_id, CoverageTarget.target_percent, CoverageTarget.threshold_hours
        ).where(CoverageTarget.year == year)
    ):
        if row.town_id in towns:
            towns[row.town_id].target_percent = row.target_percent
            towns[row.town_id].threshold_hours = row.threshold_hours

    per_cadre = cadre_attendance(year)
    period = periods_in_year(year)
    target = aliased(CoverageTarget)
    trained = _is_trained(per_cadre, target)
    stmt = (
        select(
            period.c.town_id,
            func.count(period.c.cadre_id).label("cadres"),
            func.coalesce(func.sum(case((trained, 1), else_=0)), 0).label("trained"),
            func.coalesce(func.sum(per_cadre.c.attendances), 0).label("attendances"),
            func.coalesce(func.sum(per_cadre.c.hours), 0).label("hours"),
        )
        .select_from(period)
        .outerjoin(per_cadre, per_cadre.c.cadre_id == period.c.cadre_id)
        .outerjoin(target, and_(target.town_id == period.c.town_id, target.year == year))
        .group_by(period.c.town_id)
    )
    for row in db.session.execute(stmt):
        town = towns.get(row.town_id)
        if town is None:
            continue
        town.cadres = row.cadres
        town.trained = int(row.trained)
        town.attendances = int(row.attendances)
        town.hours = one_decimal(row.hours)

    held = (
        select(Activity.town_id, func.count(func.distinct(Activity.id)).label("trainings"))
        .join(ActivitySession, ActivitySession.activity_id == Activity.id)
        .where(Activity.counts_for_coverage, held_in_year(year, now))
        .group_by(Activity.town_id)
    )
    district_trainings = 0
    for row in db.session.execute(held):
        district_trainings += row.trainings
        if row.town_id in towns:
            towns[row.town_id].trainings = row.trainings
    if town_ids is not None:
        district_trainings = sum(t.trainings for t in towns.values())
    return DistrictCoverage(
        year=year,
        towns=list(towns.values()),
        trainings=district_trainings,
        own_target_percent=district_target(year),
    )


@dataclass
class UntrainedCadre:
    cadre_id: int
    name: str
    posts: str
    village: str
    phone: str | None
    attendances: int
    hours: Decimal


def untrained_cadres(town_id: int, year: int) -> list[UntrainedCadre]:
    """The town's cadres not (yet) counted as trained in ``year``, by village then name
    (the village of their roster period in the year)."""
    per_cadre = cadre_attendance(year)
    period = periods_in_year(year)
    target = aliased(CoverageTarget)
    trained = _is_trained(per_cadre, target)
    stmt = (
        select(
            Cadre.id,
            Cadre.name,
            period.c.posts,
            Cadre.phone,
            Village.name.label("village"),
            func.coalesce(per_cadre.c.attendances, 0).label("attendances"),
            func.coalesce(per_cadre.c.hours, 0).label("hours"),
        )
        .select_from(period)
        .join(Cadre, Cadre.id == period.c.cadre_id)
        .join(Village, Village.id == period.c.village_id)
        .outerjoin(per_cadre, per_cadre.c.cadre_id == Cadre.id)
        .outerjoin(target, and_(target.town_id == period.c.town_id, target.year == year))
        .where(period.c.town_id == town_id)
        .where(or_(per_cadre.c.cadre_id.is_(None), ~func.coalesce(trained, literal(False))))
    )
    rows = sorted(db.session.execute(stmt), key=lambda r: (natural_key(r.village), r.name, r.id))
    return [
        UntrainedCadre(
            cadre_id=row.id,
            name=row.name,
            posts=row.posts,
            village=row.village,
            phone=row.phone,
            attendances=int(row.attendances),
            hours=one_decimal(row.hours),
        )
        for row in rows
    ]


@dataclass
class UnmatchedAttendee:
    registration_id: int
    name: str
    phone: str
    activity_title: str
    activity_id: int
    checkins: int


def unmatched_attendees(year: int, town_id: int | None = None) -> list[UnmatchedAttendee]:
    """People registered for trainings in ``year`` who match no cadre on the roster.

    With ``town_id``: those who gave that town, or attended a training held there.
    """
    start, end = year_bounds(year)
    in_year = (
        select(ActivitySession.activity_id)
        .where(
            ActivitySession.counts_for_coverage,
            ActivitySession.starts_at >= start,
            ActivitySession.starts_at < end,
        )
        .distinct()
    )
    live_checkins = (
        select(func.count(CheckIn.id))
        .where(CheckIn.registration_id == Registration.id, CheckIn.undone_at.is_(None))
        .correlate(Registration)
        .scalar_subquery()
    )
    stmt = (
        select(
            Registration.id,
            Registration.name,
            Registration.phone,
            Activity.id.label("activity_id"),
            Activity.title,
            live_checkins.label("checkins"),
        )
        .join(Activity, Activity.id == Registration.activity_id)
        .where(
            Activity.counts_for_coverage,
            Activity.id.in_(in_year),
            Registration.counts_for_coverage,
            Registration.cadre_id.is_(None),
        )
        .order_by(Activity.id, Registration.name, Registration.id)
    )
    if town_id is not None:
        stmt = stmt.where(or_(Registration.town_id == town_id, Activity.town_id == town_id))
    return [
        UnmatchedAttendee(
            registration_id=row.id,
            name=row.name,
            phone=row.phone,
            activity_title=row.title,
            activity_id=row.activity_id,
            checkins=int(row.checkins or 0),
        )
        for row in db.session.execute(stmt)
    ]


def local_year_today() -> int:
    return local_today().year
