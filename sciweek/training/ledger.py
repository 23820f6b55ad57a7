"""The training record (培训台账) of a cadre, and of a town's cadres for a year.

Every training session a cadre attended, one row each: the date, the training, its hours
(``ActivitySession.hours``: credit hours, else the session's length) and how the check-in
was made (scan, roster, paper ...). The rows are the very check-ins coverage counts
(``coverage.counted_checkins``), so a town's 台账 for a year adds up to the coverage page's
人次 and 学时 of that town and year.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import aliased

from ..extensions import db
from ..i18n import format_date, format_time, to_local
from ..method_labels import method_label
from ..models import Activity, ActivitySession, Cadre, CheckIn, Registration, Town, Village
from ..placenames import natural_key
from ..spreadsheets import OfficeHeading, OfficeSheet, office_workbook
from .coverage import counted_checkins, in_year, one_decimal, untrained_cadres
from .periods import periods_in_year


@dataclass
class LedgerEntry:
    """One session a cadre attended."""

    cadre_id: int
    activity_id: int
    title: str
    host_town: str
    starts_at: datetime
    ends_at: datetime
    hours: Decimal
    method: str

    @property
    def year(self) -> int:
        return to_local(self.starts_at).year

    @property
    def source(self) -> str:
        return method_label(self.method)

    @property
    def times(self) -> str:
        """09:00–11:00: the 时间 column, beside the date, of the page and the workbook."""
        return f"{format_time(self.starts_at)}–{format_time(self.ends_at)}"


@dataclass
class LedgerYear:
    """A year of a cadre's record, with its totals."""

    year: int
    entries: list[LedgerEntry] = field(default_factory=list)

    @property
    def attendances(self) -> int:
        """人次: sessions attended."""
        return len(self.entries)

    @property
    def trainings(self) -> int:
        """期数: distinct trainings attended."""
        return len({e.activity_id for e in self.entries})

    @property
    def hours(self) -> Decimal:
        return sum((e.hours for e in self.entries), Decimal(0))


@dataclass
class CadreLedger:
    cadre: Cadre
    years: list[LedgerYear]  # newest first

    @property
    def attendances(self) -> int:
        return sum(y.attendances for y in self.years)

    @property
    def hours(self) -> Decimal:
        return sum((y.hours for y in self.years), Decimal(0))


def _entries(*conditions) -> list[LedgerEntry]:
    host = aliased(Town)
    stmt = (
        counted_checkins(
            Registration.cadre_id,
            Activity.id.label("activity_id"),
            Activity.title,
            host.name.label("host_town"),
            ActivitySession.starts_at,
            ActivitySession.ends_at,
            ActivitySession.hours.label("hours"),
            CheckIn.method,
        )
        .outerjoin(host, host.id == Activity.town_id)
        .where(*conditions)
        .order_by(ActivitySession.starts_at, Activity.id, CheckIn.id)
    )
    return [
        LedgerEntry(
            cadre_id=row.cadre_id,
            activity_id=row.activity_id,
            title=row.title,
            host_town=row.host_town or "",
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            hours=one_decimal(row.hours),
            method=row.method,
        )
        for row in db.session.execute(stmt)
    ]


def cadre_ledger(cadre: Cadre) -> CadreLedger:
    """Every counted session the cadre attended, by year (newest first), oldest session
    first within a year."""
    years: dict[int, LedgerYear] = {}
    for entry in _entries(Registration.cadre_id == cadre.id):
        years.setdefault(entry.year, LedgerYear(entry.year)).entries.append(entry)
    return CadreLedger(cadre=cadre, years=sorted(years.values(), key=lambda y: -y.year))


@dataclass
class TownLedgerCadre:
    """A cadre of the town's roster in the year, with the sessions attended in it."""

    cadre_id: int
    name: str
    village: str
    posts: str
    trained: bool
    record: LedgerYear


def town_ledger(town_id: int, year: int) -> list[TownLedgerCadre]:
    """The cadres who count for ``town_id`` in ``year`` (their roster period, as coverage
    counts them), by village and name, each with the sessions they attended in the year."""
    period = periods_in_year(year)
    people = db.session.execute(
        select(Cadre.id, Cadre.name, period.c.posts, Village.name.label("village"))
        .select_from(period)
        .join(Cadre, Cadre.id == period.c.cadre_id)
        .join(Village, Village.id == period.c.village_id)
        .where(period.c.town_id == town_id)
    )
    untrained = {c.cadre_id for c in untrained_cadres(town_id, year)}
    cadres = {
        row.id: TownLedgerCadre(
            cadre_id=row.id,
            name=row.name,
            village=row.village,
            posts=row.posts,
            trained=row.id not in untrained,
            record=LedgerYear(year),
        )
        for row in people
    }
    in_town = select(period.c.cadre_id).where(period.c.town_id == town_id)
    for entry in _entries(in_year(year), Registration.cadre_id.in_(in_town)):
        cadres[entry.cadre_id].record.entries.append(entry)
    return sorted(cadres.values(), key=lambda c: (natural_key(c.village), c.name, c.cadre_id))


def ledger_title(district: str, town: str, year: int) -> str:
    return _(
        "%(district)s%(town)s%(year)s年度农村基层干部培训台账",
        district=district,
        town=town,
        year=year,
    ).strip()


def town_ledger_workbook(
    cadres: list[TownLedgerCadre], *, title: str, heading: OfficeHeading
) -> bytes:
    """The town's 台账 for audits: one row per cadre per session attended (台账), and one
    row per cadre of the roster with their totals (人员汇总), each with a totals row."""
    entries = [(c, e) for c in cadres for e in c.record.entries]
    hours = float(sum((c.record.hours for c in cadres), Decimal(0)))
    sessions = OfficeSheet(
        name=_("培训台账"),
        title=title,
        header=[
            _("序号"),
            _("姓名"),
            _("村/社区"),
            _("职务"),
            _("培训日期"),
            _("时间"),
            _("培训名称"),
            _("举办镇街"),
            _("学时"),
            _("签到方式"),
        ],
        rows=[
            [
                n,
                c.name,
                c.village,
                c.posts,
                format_date(e.starts_at),
                e.times,
                e.title,
                e.host_town,
                float(e.hours),
                e.source,
            ]
            for n, (c, e) in enumerate(entries, start=1)
        ],
        totals=[_("合计"), "", "", "", "", "", _("%(n)s 人次", n=len(entries)), "", hours, ""],
        notes=[_("注：每名干部参加的每一场次一行；学时为场次所记学时，未记学时的按场次时长计。")],
        formats={8: "0.0"},
    )
    people = OfficeSheet(
        name=_("人员汇总"),
        title=title,
        header=[
            _("序号"),
            _("姓名"),
            _("村/社区"),
            _("职务"),
            _("参训人次"),
            _("参训期数"),
            _("学时"),
            _("是否已训"),
        ],
        rows=[
            [
                n,
                c.name,
                c.village,
                c.posts,
                c.record.attendances,
                c.record.trainings,
                float(c.record.hours),
                _("是") if c.trained else _("否"),
            ]
            for n, c in enumerate(cadres, start=1)
        ],
        totals=[
            _("合计"),
            _("%(n)s 人", n=len(cadres)),
            "",
            "",
            len(entries),
            "",
            hours,
            _("已训 %(n)s 人", n=sum(1 for c in cadres if c.trained)),
        ],
        notes=[
            _(
                "注：应训人员为当年任何时候在本镇街花名册上的干部；是否已训按本镇街当年的达标学时判定。"
            )
        ],
        formats={6: "0.0"},
    )
    return office_workbook([sessions, people], heading)
