"""Campaigns, activities and their dated sessions (场次)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    false,
    func,
    true,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .places import Department, Town, Village
from .types import UTCDateTime, hours_between, hours_of, str_enum, utcnow


class ActivityKind(enum.StrEnum):
    OUTREACH = "outreach"  # 科技下乡
    SCIENCE_DAY = "science_day"  # 科普日
    ST_WEEK = "st_week"  # 科技活动周
    TRAINING = "training"  # 培训


class Audience(enum.StrEnum):
    PUBLIC = "public"
    CADRES = "cadres"


class ActivityStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    CANCELLED = "cancelled"


KIND_VALUES = tuple(k.value for k in ActivityKind)
STATUS_VALUES = tuple(s.value for s in ActivityStatus)
AUDIENCE_VALUES = tuple(a.value for a in Audience)


def _in_check(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Campaign(db.Model):
    """A named period of work, e.g. 2026年科技活动周."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(_in_check("kind", KIND_VALUES), name="kind"),
        CheckConstraint("ends_on >= starts_on", name="dates"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[ActivityKind] = mapped_column(str_enum(ActivityKind))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    # Names before renames, joined with "、", as ``Department.former_names``.
    former_names: Mapped[str] = mapped_column(Text, default="", server_default="")


activity_departments = Table(
    "activity_departments",
    db.metadata,
    Column("activity_id", ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True),
    Column("department_id", ForeignKey("departments.id", ondelete="RESTRICT"), primary_key=True),
)

# The towns whose roster cadres a training is for (see ``Activity.roster_towns``).
activity_roster_towns = Table(
    "activity_roster_towns",
    db.metadata,
    Column("activity_id", ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True),
    Column("town_id", ForeignKey("towns.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Activity(db.Model):
    """One published thing people attend. Cancelled activities are kept, never deleted."""

    __tablename__ = "activities"
    __table_args__ = (
        CheckConstraint(_in_check("kind", KIND_VALUES), name="kind"),
        CheckConstraint(_in_check("status", STATUS_VALUES), name="status"),
        CheckConstraint(_in_check("audience", AUDIENCE_VALUES), name="audience"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity"),
        # The last word on overbooking: no transaction can commit more
        # confirmed places than the activity has.
        CheckConstraint(
            "confirmed_count >= 0 AND (capacity IS NULL OR confirmed_count <= capacity)",
            name="not_overbooked",
        ),
        CheckConstraint(
            "registration_opens_at IS NULL OR registration_closes_at IS NULL "
            "OR registration_closes_at > registration_opens_at",
            name="registration_window",
        ),
        CheckConstraint("status <> 'cancelled' OR cancel_reason <> ''", name="cancel_reason_given"),
        CheckConstraint("over_capacity_count >= 0", name="over_capacity_count"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ActivityKind] = mapped_column(str_enum(ActivityKind), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL"), index=True
    )
    town_id: Mapped[int | None] = mapped_column(ForeignKey("towns.id"), index=True)
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"))
    venue: Mapped[str] = mapped_column(String(200), default="")
    # WGS-84 (GPS, iCalendar GEO); map links convert for Chinese maps (activities/maps.py).
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    audience: Mapped[Audience] = mapped_column(str_enum(Audience), default=Audience.PUBLIC)
    # A training names the cadres it is for: every cadre of the district's roster, or those
    # of ``roster_towns`` (training/invitations.py). They are found and checked in at its door.
    roster_whole_district: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    capacity: Mapped[int | None] = mapped_column(Integer)
    # Confirmed registrations, changed only by atomic conditional UPDATEs.
    confirmed_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # People admitted at the door beyond capacity (超额签到, ``Registration.over_capacity``):
    # counted apart from confirmed_count, which the capacity CHECK bounds.
    over_capacity_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    waitlist_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # 报名需短信验证: registering asks for a code sent to the phone (nobody registers
    # someone else's number); notifications/verification.py.
    # (Only a server default: INSERTs that leave it out, e.g. of a migration test written
    # against an older schema, do not name the column.)
    sms_verification: Mapped[bool] = mapped_column(Boolean, server_default=false())
    registration_opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    registration_closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[ActivityStatus] = mapped_column(
        str_enum(ActivityStatus), default=ActivityStatus.DRAFT, index=True
    )
    cancel_reason: Mapped[str] = mapped_column(String(500), default="")
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Rises whenever time, place or status change, so calendar clients replace their copy.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    campaign: Mapped[Campaign | None] = relationship()
    town: Mapped[Town | None] = relationship()
    village: Mapped[Village | None] = relationship()
    departments: Mapped[list[Department]] = relationship(
        secondary=activity_departments, order_by="Department.id"
    )
    roster_towns: Mapped[list[Town]] = relationship(
        secondary=activity_roster_towns, order_by="Town.code"
    )
    sessions: Mapped[list[ActivitySession]] = relationship(
        back_populates="activity",
        order_by="ActivitySession.starts_at",
        cascade="all, delete-orphan",
    )

    # Rules that Python and SQL share (``Activity.is_cancelled`` in a ``where``): written
    # with ``==``, ``!=`` and ``&`` only, which mean the same on both sides.

    @hybrid_property
    def is_cancelled(self) -> bool:
        return self.status == ActivityStatus.CANCELLED

    @hybrid_property
    def is_published(self) -> bool:
        return self.status == ActivityStatus.PUBLISHED

    @hybrid_property
    def counts_for_coverage(self) -> bool:
        """Check-ins at its sessions count towards cadre coverage: a training. Only at
        sessions that were held, not cancelled (``ActivitySession.counts_for_coverage``):
        cancelling a training after a session has begun leaves that session held."""
        return self.kind == ActivityKind.TRAINING

    @property
    def invites_roster(self) -> bool:
        """A training that names the cadres it is for (the whole district or some towns)."""
        return self.kind == ActivityKind.TRAINING and (
            self.roster_whole_district or bool(self.roster_towns)
        )

    def invites_cadres_of(self, town_id: int | None) -> bool:
        """Are the roster cadres of ``town_id`` invited? The SQL twin of this rule (with the
        roster dates) is ``training.invitations.invited_cadres``."""
        if town_id is None or not self.invites_roster:
            return False
        return self.roster_whole_district or any(t.id == town_id for t in self.roster_towns)

    @property
    def places_left(self) -> int | None:
        if self.capacity is None:
            return None
        return max(self.capacity - self.confirmed_count, 0)

    @property
    def starts_at(self) -> datetime | None:
        return self.sessions[0].starts_at if self.sessions else None

    @property
    def ends_at(self) -> datetime | None:
        return max((s.ends_at for s in self.sessions), default=None)

    @property
    def has_ended(self) -> bool:
        """Its last session is over: pages say 已结束 and no longer count places left."""
        ends_at = self.ends_at
        return ends_at is not None and ends_at <= utcnow()

    def __repr__(self) -> str:
        return f"<Activity {self.id} {self.title!r}>"


class ActivitySession(db.Model):
    """One dated sitting (场次) of an activity."""

    __tablename__ = "activity_sessions"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("credit_hours IS NULL OR credit_hours >= 0", name="credit_hours"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(
        ForeignKey("activities.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    credit_hours: Mapped[Decimal | None] = mapped_column(Numeric(5, 1))
    note: Mapped[str] = mapped_column(String(200), default="")
    # Set when the session was cancelled: with its activity, if it had not begun by then
    # (``manage.services.cancel_activity``). A session that had begun stays held.
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    activity: Mapped[Activity] = relationship(back_populates="sessions")

    @hybrid_property
    def is_cancelled(self) -> bool:
        return self.cancelled_at != None  # noqa: E711 - SQL: IS NOT NULL

    @hybrid_property
    def counts_for_coverage(self) -> bool:
        """Check-ins at this session count (for a training, ``Activity.counts_for_coverage``)
        unless it was cancelled; a cancelled activity's sessions that had begun count."""
        return self.cancelled_at == None  # noqa: E711 - SQL: IS NULL

    @hybrid_property
    def hours(self) -> Decimal:
        """Its hours (学时): the credit hours given to it, else its length in hours (to one
        decimal). What coverage adds up, thresholds compare with, and the 台账 and the
        annual assessment show."""
        if self.credit_hours is not None:
            return self.credit_hours
        return hours_of(self.starts_at, self.ends_at)

    @hours.inplace.expression
    @classmethod
    def _hours_expression(cls):
        return func.coalesce(cls.credit_hours, hours_between(cls.starts_at, cls.ends_at))

    def has_begun(self, now: datetime) -> bool:
        return self.starts_at <= now
