"""The annual assessment (年度目标考核): a year's figures per town, department and campaign.

Plain data for the page, the XLSX, the PDF and the command line (they only lay it out).

- **Towns** are the coverage report (``training.coverage.coverage_by_town``) itself, so the
  assessment's town figures equal the coverage page and ``flask coverage --format json``
  for the same year.
- **Activities held** in the year: those with a session held in it (``held_in_year``: not
  cancelled, begun by now, of a published or later-cancelled activity — never a draft;
  "now" is read once per report, so every table counts the same sessions).
  Per activity: its held sessions in the year (场次), its registrations holding a place
  (报名人数: confirmed, walk-ins and roster check-ins included; waitlisted or cancelled ones
  not), its live check-ins at those sessions (签到人次), and its summary's counts
  (受益群众人次, 发放资料份数, 咨询人次; none without a summary).
- **Departments**: an activity counts for each of its organizing departments; the totals
  row counts each activity once (a jointly organized one is in two rows, once in the total).
- **Campaigns**: the 科技活动周 and 科普日 campaigns that overlap the year, with the activities
  filed under them; an activity is in one campaign, so their rows add up to the total.
- **Per month**: activities held, by the month of their first held session in the year.

A fixed number of queries, whatever the number of activities.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from flask_babel import gettext as _
from sqlalchemy import func, select

from ..extensions import db
from ..i18n import local_today, to_local
from ..inputs import parse_int
from ..models import (
    Activity,
    ActivityKind,
    ActivitySession,
    ActivitySummary,
    Campaign,
    CheckIn,
    Department,
    Registration,
    RegistrationStatus,
    activity_departments,
    utcnow,
)
from ..training.coverage import DistrictCoverage, coverage_by_town, held_in_year
from ..years import YEAR_MAX, YEAR_MIN

# The kinds reported as columns, in the order offices list them.
KINDS = (
    ActivityKind.OUTREACH,
    ActivityKind.SCIENCE_DAY,
    ActivityKind.ST_WEEK,
    ActivityKind.TRAINING,
)
# The campaigns the assessment lists.
CAMPAIGN_KINDS = (ActivityKind.ST_WEEK, ActivityKind.SCIENCE_DAY)


class ReportYearError(ValueError):
    """The year asked for is not a year the assessment can be made for (the message says
    why, in the visitor's language)."""


def parse_report_year(raw: str | None, default: int) -> int:
    """The year typed or passed: empty gives ``default``; else ASCII digits from
    ``YEAR_MIN`` to ``YEAR_MAX`` (``١٢٣٤`` and ``2026.0`` are refused, as is anything
    else)."""
    text = (raw or "").strip()
    if text == "":
        return default
    year = parse_int(text, minimum=YEAR_MIN, maximum=YEAR_MAX)
    if year is None:
        raise ReportYearError(
            _("年份应为 %(min)s 到 %(max)s 之间的四位数字。", min=YEAR_MIN, max=YEAR_MAX)
        )
    return year


@dataclass(kw_only=True)
class Counts:
    """What activities add up to, besides how many there are."""

    sessions: int = 0
    registered: int = 0
    checked_in: int = 0
    people_reached: int = 0
    materials: int = 0
    consultations: int = 0

    def add_counts(self, other: Counts) -> None:
        self.sessions += other.sessions
        self.registered += other.registered
        self.checked_in += other.checked_in
        self.people_reached += other.people_reached
        self.materials += other.materials
        self.consultations += other.consultations


@dataclass(kw_only=True)
class HeldActivity(Counts):
    """One activity held in the year, with its figures for the year."""

    id: int
    kind: ActivityKind
    campaign_id: int | None
    first_held_at: datetime


@dataclass(kw_only=True)
class ActivityFigures(Counts):
    """Activities held, by kind, and what they added up to."""

    by_kind: Counter = field(default_factory=Counter)

    def add(self, activity: HeldActivity) -> None:
        """Count one activity."""
        self.by_kind[activity.kind] += 1
        self.add_counts(activity)

    def merge(self, part: ActivityFigures) -> None:
        """Add another row's figures (an activity in both rows is counted twice)."""
        self.by_kind.update(part.by_kind)
        self.add_counts(part)

    @property
    def activities(self) -> int:
        return sum(self.by_kind.values())

    @property
    def trainings(self) -> int:
        """Trainings held (培训期数)."""
        return self.by_kind[ActivityKind.TRAINING]

    def kind_counts(self) -> list[int]:
        return [self.by_kind[kind] for kind in KINDS]

    def as_json(self) -> dict:
        return {
            "activities": self.activities,
            "by_kind": {kind.value: self.by_kind[kind] for kind in KINDS},
            "sessions": self.sessions,
            "registered": self.registered,
            "checked_in": self.checked_in,
            "people_reached": self.people_reached,
            "materials": self.materials,
            "consultations": self.consultations,
            "trainings": self.trainings,
        }


@dataclass
class DepartmentRow:
    name: str
    figures: ActivityFigures


@dataclass
class CampaignRow:
    name: str
    kind: ActivityKind
    starts_on: date
    ends_on: date
    figures: ActivityFigures


@dataclass
class AnnualAssessment:
    year: int
    district_name: str
    made_on: date
    towns: DistrictCoverage
    departments: list[DepartmentRow]
    # Activities without an organizing department (none, usually): a row of their own.
    without_department: ActivityFigures | None
    activities: ActivityFigures  # every activity held, each once
    campaigns: list[CampaignRow]
    months: list[int]  # activities held, by month of their first held session (12 values)

    @property
    def title(self) -> str:
        return _(
            "%(district)s%(year)s年度农村基层干部科技培训情况统计表",
            district=self.district_name,
            year=self.year,
        ).strip()

    @property
    def departments_title(self) -> str:
        return _(
            "%(district)s%(year)s年度各部门科技活动情况统计表",
            district=self.district_name,
            year=self.year,
        ).strip()

    @property
    def campaigns_title(self) -> str:
        return _(
            "%(district)s%(year)s年度科技活动周、科普日活动情况统计表",
            district=self.district_name,
            year=self.year,
        ).strip()

    @property
    def campaign_totals(self) -> ActivityFigures:
        total = ActivityFigures()
        for row in self.campaigns:
            total.merge(row.figures)
        return total

    @property
    def town_trainings(self) -> int:
        """期数 held in the towns; the district's also counts trainings without a town."""
        return sum(t.trainings for t in self.towns.towns)

    def as_json(self) -> dict:
        return {
            "year": self.year,
            "title": self.title,
            "coverage": self.towns.as_json(),
            "departments": [{"name": d.name, **d.figures.as_json()} for d in self.departments],
            "without_department": None
            if self.without_department is None
            else self.without_department.as_json(),
            "activities": self.activities.as_json(),
            "campaigns": [
                {
                    "name": c.name,
                    "kind": c.kind.value,
                    "starts_on": c.starts_on.isoformat(),
                    "ends_on": c.ends_on.isoformat(),
                    **c.figures.as_json(),
                }
                for c in self.campaigns
            ],
            "months": self.months,
        }


def held_activities(year: int, now: datetime) -> dict[int, HeldActivity]:
    """The activities held in ``year`` by ``now`` with their figures (four GROUP BY
    queries). The later queries count only the activities the first one found (and, for
    check-ins, the sessions held by the same ``now``), so a session that begins or an
    activity published meanwhile is in every figure or in none."""
    held = {
        row.id: HeldActivity(
            id=row.id,
            kind=ActivityKind(row.kind),
            campaign_id=row.campaign_id,
            first_held_at=row.first_held_at,
            sessions=row.sessions,
        )
        for row in db.session.execute(
            select(
                Activity.id,
                Activity.kind,
                Activity.campaign_id,
                func.min(ActivitySession.starts_at).label("first_held_at"),
                func.count(ActivitySession.id).label("sessions"),
            )
            .join(ActivitySession, ActivitySession.activity_id == Activity.id)
            .where(held_in_year(year, now))
            .group_by(Activity.id, Activity.kind, Activity.campaign_id)
        )
    }
    if not held:
        return held
    ids = list(held)
    for row in db.session.execute(
        select(Registration.activity_id, func.count().label("n"))
        .where(
            Registration.activity_id.in_(ids),
            Registration.status == RegistrationStatus.CONFIRMED,
        )
        .group_by(Registration.activity_id)
    ):
        held[row.activity_id].registered = row.n
    for row in db.session.execute(
        select(ActivitySession.activity_id, func.count().label("n"))
        .select_from(CheckIn)
        .join(ActivitySession, ActivitySession.id == CheckIn.session_id)
        .join(Activity, Activity.id == ActivitySession.activity_id)
        .join(Registration, Registration.id == CheckIn.registration_id)
        .where(
            Activity.id.in_(ids),
            held_in_year(year, now),
            CheckIn.undone_at.is_(None),
            Registration.is_standing,
        )
        .group_by(ActivitySession.activity_id)
    ):
        held[row.activity_id].checked_in = row.n
    for summary in db.session.execute(
        select(
            ActivitySummary.activity_id,
            ActivitySummary.people_reached,
            ActivitySummary.materials_distributed,
            ActivitySummary.consultations,
        ).where(ActivitySummary.activity_id.in_(ids))
    ):
        activity = held[summary.activity_id]
        activity.people_reached = summary.people_reached
        activity.materials = summary.materials_distributed
        activity.consultations = summary.consultations
    return held


def annual_assessment(year: int, *, district_name: str = "") -> AnnualAssessment:
    """The year's assessment (see the module's docstring for what each figure counts), as
    of one reading of the clock taken here."""
    now = utcnow()
    held = held_activities(year, now)
    everything = ActivityFigures()
    months = [0] * 12
    for activity in held.values():
        everything.add(activity)
        months[to_local(activity.first_held_at).month - 1] += 1

    departments = {
        d.id: DepartmentRow(d.name, ActivityFigures())
        for d in db.session.scalars(select(Department).order_by(Department.id))
    }
    organized: set[int] = set()
    if held:
        for activity_id, department_id in db.session.execute(
            select(activity_departments.c.activity_id, activity_departments.c.department_id).where(
                activity_departments.c.activity_id.in_(list(held))
            )
        ):
            departments[department_id].figures.add(held[activity_id])
            organized.add(activity_id)
    without = ActivityFigures()
    for activity in held.values():
        if activity.id not in organized:
            without.add(activity)

    campaigns = []
    start, end = date(year, 1, 1), date(year, 12, 31)
    for campaign in db.session.scalars(
        select(Campaign)
        .where(
            Campaign.kind.in_(CAMPAIGN_KINDS),
            Campaign.starts_on <= end,
            Campaign.ends_on >= start,
        )
        .order_by(Campaign.starts_on, Campaign.id)
    ):
        figures = ActivityFigures()
        for activity in held.values():
            if activity.campaign_id == campaign.id:
                figures.add(activity)
        campaigns.append(
            CampaignRow(campaign.name, campaign.kind, campaign.starts_on, campaign.ends_on, figures)
        )

    return AnnualAssessment(
        year=year,
        district_name=district_name,
        made_on=local_today(),
        towns=coverage_by_town(year, now=now),
        departments=list(departments.values()),
        without_department=without if without.activities else None,
        activities=everything,
        campaigns=campaigns,
        months=months,
    )
