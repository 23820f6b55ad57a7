"""Rural cadre rosters (农村基层干部花名册) and yearly coverage targets (目标责任书)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Numeric,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..years import YEAR_MAX, YEAR_MIN
from .places import Town, Village
from .types import UTCDateTime, utcnow

# The same SQL text as the migrations wrote ("year >= 2000 AND year <= 2100").
YEAR_CHECK = f"year >= {YEAR_MIN} AND year <= {YEAR_MAX}"


class Cadre(db.Model):
    """One person on a town's cadre roster. Holding two posts (一肩挑) is still one cadre.

    Where and what they served, and when, is in their roster periods (``CadrePeriod``):
    every question about a year or a date (coverage, who a training invites, the door,
    the sign-in sheet) reads the period of that time. ``town_id``, ``village_id``,
    ``posts`` are where they are now (their latest period), ``active_from`` when they
    first joined and ``left_on`` when they left the roster for good; the services that
    write periods (``training.periods``) keep them in step. A cadre who leaves keeps the
    row, so earlier years' coverage stays as it was.
    """

    __tablename__ = "cadres"
    __table_args__ = (
        CheckConstraint("left_on IS NULL OR left_on >= active_from", name="left_after_joining"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    gender: Mapped[str] = mapped_column(String(4), default="")
    birth_month: Mapped[str] = mapped_column(String(10), default="")
    # Posts held, joined with "、" (e.g. 村党组织书记、村委会主任).
    posts: Mapped[str] = mapped_column(String(200), default="")
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id"), index=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"), index=True)
    # Normalised 11-digit mobile number; the key that links attendance to the roster.
    phone: Mapped[str | None] = mapped_column(String(11), unique=True)
    # Optional (个人信息保护法): only when the roster gives it.
    id_number: Mapped[str | None] = mapped_column(String(18), unique=True)
    active_from: Mapped[date] = mapped_column(Date)
    left_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    town: Mapped[Town] = relationship()
    village: Mapped[Village] = relationship()
    periods: Mapped[list[CadrePeriod]] = relationship(
        back_populates="cadre", order_by="CadrePeriod.starts_on", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Cadre {self.id} {self.name}>"


class CadrePeriod(db.Model):  # type: ignore[name-defined]  # as the other models (baseline)
    """A stretch of a cadre's service in one town, village and post: [starts_on, ends_on).

    ``ends_on`` is the day they moved on or left (no longer there from that day); NULL while
    they serve. A move on day D ends one period and starts the next on D, so a day belongs
    to one period. A cadre counts, in a year, for the town of their latest period in it.
    """

    __tablename__ = "cadre_periods"
    __table_args__ = (
        CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name="ends_after_start"),
        UniqueConstraint("cadre_id", "starts_on", name="uq_cadre_periods_cadre_start"),
        # One period open at a time.
        Index(
            "uq_cadre_periods_open",
            "cadre_id",
            unique=True,
            sqlite_where=text("ends_on IS NULL"),
            postgresql_where=text("ends_on IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cadre_id: Mapped[int] = mapped_column(ForeignKey("cadres.id", ondelete="CASCADE"), index=True)
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id"), index=True)
    village_id: Mapped[int] = mapped_column(ForeignKey("villages.id"))
    posts: Mapped[str] = mapped_column(String(200), default="")
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)

    cadre: Mapped[Cadre] = relationship(back_populates="periods")
    town: Mapped[Town] = relationship()
    village: Mapped[Village] = relationship()


class DistrictTarget(db.Model):  # type: ignore[name-defined]  # as the other models (baseline)
    """The district's own target for a year (its 目标责任书): the share of all its cadres."""

    __tablename__ = "district_targets"
    __table_args__ = (
        CheckConstraint("target_percent >= 0 AND target_percent <= 100", name="percent"),
        CheckConstraint(YEAR_CHECK, name="year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    year: Mapped[int] = mapped_column(unique=True)
    target_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CoverageTarget(db.Model):
    """A town's target for a year: the share of its cadres to train, and what counts as trained."""

    __tablename__ = "coverage_targets"
    __table_args__ = (
        UniqueConstraint("town_id", "year", name="uq_coverage_targets_town_year"),
        CheckConstraint("target_percent >= 0 AND target_percent <= 100", name="percent"),
        CheckConstraint("threshold_hours IS NULL OR threshold_hours >= 0", name="threshold_hours"),
        CheckConstraint(YEAR_CHECK, name="year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id", ondelete="CASCADE"))
    year: Mapped[int]
    target_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    # Credit hours needed in the year to count as trained; NULL: any attended session.
    threshold_hours: Mapped[Decimal | None] = mapped_column(Numeric(5, 1))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    town: Mapped[Town] = relationship()
