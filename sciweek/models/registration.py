"""Registrations (报名) with their tickets, and check-ins (签到) at sessions."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    case,
    false,
    select,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_method, hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Base, db
from .accounts import User
from .activities import Activity, ActivitySession, ActivityStatus, _in_check
from .checkin import WINDOW_OVERRIDE_REASON_MAX, ScanResult
from .places import Town, Village
from .types import UTCDateTime, first_case, negate, str_enum, utcnow


class RegistrationStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    WAITLISTED = "waitlisted"
    CANCELLED = "cancelled"


# Flask-SQLAlchemy makes db.Model at run time; the type checker sees its declarative base.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model

REGISTRATION_STATUS_VALUES = tuple(s.value for s in RegistrationStatus)
# For the partial indexes' SQL (a registration that still holds or awaits a place).
_CANCELLED = RegistrationStatus.CANCELLED.value
_WAITLISTED = RegistrationStatus.WAITLISTED.value


class Registration(db.Model):
    """A person's place on an activity. The ticket secret is stored only as its SHA-256."""

    __tablename__ = "registrations"
    __table_args__ = (
        CheckConstraint(_in_check("status", REGISTRATION_STATUS_VALUES), name="status"),
        UniqueConstraint("activity_id", "short_code", name="uq_registrations_activity_short_code"),
        # One active registration per phone per activity; cancelled ones may repeat.
        Index(
            "uq_registrations_active_phone",
            "activity_id",
            "phone",
            unique=True,
            postgresql_where=text(f"status <> '{_CANCELLED}'"),
            sqlite_where=text(f"status <> '{_CANCELLED}'"),
        ),
        Index("ix_registrations_waitlist", "activity_id", "status", "id"),
        # A typed short code is looked up in every activity (``short_code_preference``):
        # another activity's code answers wrong_activity, as its QR code does.
        Index("ix_registrations_short_code", "short_code"),
        # Walk-ins without a phone (无手机) are told apart by name and village: one active
        # registration per name and village per activity, whatever two door devices send.
        Index(
            "uq_registrations_active_phoneless",
            "activity_id",
            "village_id",
            "name",
            unique=True,
            postgresql_where=text(f"phone IS NULL AND status <> '{_CANCELLED}'"),
            sqlite_where=text(f"phone IS NULL AND status <> '{_CANCELLED}'"),
        ),
        CheckConstraint("phone IS NOT NULL OR village_id IS NOT NULL", name="phone_or_village"),
        # Admitted over capacity at the door (超额签到): a place, outside confirmed_count.
        CheckConstraint(
            f"NOT over_capacity OR status <> '{_WAITLISTED}'", name="over_capacity_not_waitlisted"
        ),
        # One active registration per roster cadre per activity, so that (cadre, session)
        # pairs of check-ins are unique and coverage can add them up without DISTINCT.
        Index(
            "uq_registrations_active_cadre",
            "activity_id",
            "cadre_id",
            unique=True,
            postgresql_where=text(f"status <> '{_CANCELLED}' AND cadre_id IS NOT NULL"),
            sqlite_where=text(f"status <> '{_CANCELLED}' AND cadre_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(50))
    # None: a walk-in without a phone (无手机), who names their village instead.
    phone: Mapped[str | None] = mapped_column(String(11), index=True)
    town_id: Mapped[int | None] = mapped_column(ForeignKey("towns.id"))
    village_id: Mapped[int | None] = mapped_column(ForeignKey("villages.id"))
    status: Mapped[RegistrationStatus] = mapped_column(str_enum(RegistrationStatus))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    short_code: Mapped[str] = mapped_column(String(6))
    # SHA-256 of the registration form's one-time submission id: a repeated submit
    # (double click) is recognised as the same person and gets their ticket again.
    submission_hash: Mapped[str | None] = mapped_column(String(64))
    # The roster cadre this registration belongs to: set by phone when registering and
    # when a roster is imported, or by hand by a coordinator (see training).
    cadre_id: Mapped[int | None] = mapped_column(
        ForeignKey("cadres.id", ondelete="SET NULL"), index=True
    )
    walk_in: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Admitted by an organizer at the door when the activity was full (超额签到): confirmed,
    # but counted in ``Activity.over_capacity_count``, never in ``confirmed_count``, so the
    # capacity CHECK keeps guarding registration. Who and when, beside the scan log's row.
    over_capacity: Mapped[bool] = mapped_column(default=False, server_default=false())
    over_capacity_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    over_capacity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    activity: Mapped[Activity] = relationship()
    user: Mapped[User | None] = relationship(foreign_keys=[user_id])
    over_capacity_by: Mapped[User | None] = relationship(foreign_keys=[over_capacity_by_id])
    town: Mapped[Town | None] = relationship()
    village: Mapped[Village | None] = relationship()
    checkins: Mapped[list[CheckIn]] = relationship(back_populates="registration")

    # --- rules -------------------------------------------------------------------------
    # Each works on a loaded registration (Python) and on the class (SQL, e.g.
    # ``select(Registration.scan_refusal(activity_id))``): see ``types.first_case``.

    @hybrid_property
    def activity_status(self) -> str:
        """The status of the activity this registration is for."""
        return self.activity.status

    @activity_status.inplace.expression
    @classmethod
    def _activity_status_expression(cls):
        # A correlated look-up, so the rules below need no join from their caller.
        return (
            select(Activity.status)
            .where(Activity.id == cls.activity_id)
            .correlate_except(Activity)
            .scalar_subquery()
        )

    @hybrid_property
    def effective_status(self) -> str:
        """What the registrant sees: a cancelled activity cancels every registration."""
        return first_case(
            (
                self.activity_status == ActivityStatus.CANCELLED,
                RegistrationStatus.CANCELLED,
            ),
            default=self.status,
        )

    @hybrid_property
    def is_active(self) -> bool:
        """Holds or waits for a place at an activity that is still on."""
        return self.effective_status != RegistrationStatus.CANCELLED

    @hybrid_property
    def is_confirmed(self) -> bool:
        """Holds a place at an activity that is still on."""
        return self.effective_status == RegistrationStatus.CONFIRMED

    @hybrid_property
    def is_waitlisted(self) -> bool:
        """Waits for a place at an activity that is still on."""
        return self.effective_status == RegistrationStatus.WAITLISTED

    @hybrid_property
    def is_standing(self) -> bool:
        """Not cancelled itself (by the registrant or an organizer), whatever became of the
        activity: what the one-per-phone and one-per-cadre unique indexes count."""
        return self.status != RegistrationStatus.CANCELLED

    @hybrid_property
    def counts_for_coverage(self) -> bool:
        """Its check-ins count towards its cadre's coverage unless it was cancelled itself
        (a training cancelled afterwards keeps the sessions it had held:
        ``ActivitySession.counts_for_coverage``)."""
        return self.is_standing

    @property
    def without_phone(self) -> bool:
        """A walk-in registered without a phone (无手机)."""
        return self.phone is None

    @hybrid_method
    def scan_refusal(self, activity_id):
        """Why this ticket may not be checked in at the door of activity ``activity_id``:
        a ``ScanResult``, or None when it may.

        The one statement of these rules for the server; ``checkin.services`` applies it to
        a loaded registration, ``checkin.fast`` inside its SQL statement. The offline
        scanner's copy is ``static/js/scanner-core.js``; ``tests/scan_cases.json`` holds
        the cases all of them must answer alike.
        """
        return first_case(
            (self.activity_id != activity_id, ScanResult.WRONG_ACTIVITY),
            (negate(self.is_active), ScanResult.CANCELLED),
            (self.effective_status == RegistrationStatus.WAITLISTED, ScanResult.WAITLISTED),
        )


def short_code_preference(activity_id):
    """ORDER BY for a typed short code, which is unique per activity only: the ticket of the
    activity at the door first; another activity's (then ``wrong_activity``, as its QR code
    answers) only when this one has none. Used by both scan paths (``checkin``)."""
    return case((Registration.activity_id == activity_id, 0), else_=1)


class CheckIn(db.Model):
    """Presence of a registrant at one session. An undone check-in is kept, marked undone."""

    __tablename__ = "checkins"
    __table_args__ = (
        # Exactly one live check-in per registration and session, whatever races.
        Index(
            "uq_checkins_live",
            "registration_id",
            "session_id",
            unique=True,
            postgresql_where=text("undone_at IS NULL"),
            sqlite_where=text("undone_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("registrations.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[int] = mapped_column(
        ForeignKey("activity_sessions.id", ondelete="CASCADE"), index=True
    )
    # When the person was seen (the device's scan time for offline scans) ...
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # ... and when the server learnt of it.
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    method: Mapped[str] = mapped_column(String(20), default="scan")
    checked_in_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Set when an organizer (``checked_in_by_id``) checked the person in outside the
    # session's check-in window, with this reason ("仍然签到", ``checkin.windows``).
    window_override_reason: Mapped[str | None] = mapped_column(String(WINDOW_OVERRIDE_REASON_MAX))

    registration: Mapped[Registration] = relationship(back_populates="checkins")
    session: Mapped[ActivitySession] = relationship()


class ReplacedTicket(Model):
    """A ticket secret that was replaced by a new one (找回电子票, "我的报名"): its hash,
    so that the old link can say it was replaced instead of "not found"."""

    __tablename__ = "replaced_tickets"

    secret_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    registration_id: Mapped[int] = mapped_column(
        ForeignKey("registrations.id", ondelete="CASCADE"), index=True
    )
    replaced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    registration: Mapped[Registration] = relationship()
