"""The notification outbox: messages written in the transaction of the change they report.

A message is a row of ``outbox_messages``, written by the service that made the change,
in its transaction (``notifications.outbox``); the job engine delivers it later
(``notifications.delivery``). ``dedupe_key`` is unique: one message per event, recipient
and version, whatever retries, repeated requests or workers do.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Base, db
from .accounts import User
from .activities import Activity, _in_check
from .places import Town
from .registration import Registration
from .types import UTCDateTime, str_enum, utcnow

# Flask-SQLAlchemy makes db.Model at run time; the type checker sees its declarative base.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model


class NotificationEvent(enum.StrEnum):
    """Why a message is sent (the ``event`` of ``flask outbox --format json``)."""

    CONFIRMED = "confirmed"  # registration holds a place
    WAITLISTED = "waitlisted"  # registration waits for one
    PROMOTED = "promoted"  # moved from the waitlist to a place
    CHANGED = "changed"  # time or place changed (the activity's SEQUENCE rose)
    CANCELLED = "cancelled"  # the activity, or this registration by staff
    REMINDER = "reminder"  # the day before (notifications.reminders)
    BROADCAST = "broadcast"  # an organizer's message to all registrants
    INVITATION = "invitation"  # a coordinator invites untrained cadres
    VERIFICATION = "verification"  # a one-time SMS code (later)
    # E-mails to staff accounts (notifications.staff_mail)
    SET_PASSWORD = "set_password"  # noqa: S105 - an event name: a new account's link
    PASSWORD_RESET = "password_reset"  # noqa: S105 - an event name: 忘记密码
    STAFF_EMAIL = "staff_email"  # any other e-mail to a staff member


class Channel(enum.StrEnum):
    SMS = "sms"
    EMAIL = "email"  # staff accounts only (notifications.staff_mail)


class OutboxStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for its time (next_attempt_at), first try or a retry
    SENDING = "sending"  # claimed by a worker, handed or about to be handed to the gateway
    SENT = "sent"
    FAILED = "failed"  # gave up: last_error holds the gateway's answer
    DEFERRED = "deferred"  # held back by quiet hours until next_attempt_at
    SKIPPED = "skipped"  # not sent on purpose: reason says why


EVENT_VALUES = tuple(e.value for e in NotificationEvent)
CHANNEL_VALUES = tuple(c.value for c in Channel)
OUTBOX_STATUS_VALUES = tuple(s.value for s in OutboxStatus)
# Statuses a worker may claim once next_attempt_at has come.
DUE_STATUSES = (OutboxStatus.QUEUED, OutboxStatus.DEFERRED)
FINAL_STATUSES = (OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.SKIPPED)


class OutboxMessage(Model):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint(_in_check("event", EVENT_VALUES), name="event"),
        CheckConstraint(_in_check("channel", CHANNEL_VALUES), name="channel"),
        CheckConstraint(_in_check("status", OUTBOX_STATUS_VALUES), name="status"),
        # What the workers look for: due messages, oldest first.
        Index("ix_outbox_messages_due", "status", "next_attempt_at"),
        Index("ix_outbox_messages_activity_status", "activity_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # "<event>:<scope>:<version>:<recipient>", e.g. "cancelled:a12:v3:r4567": see
    # notifications.outbox.dedupe_key. Unique: a second insert of the same is ignored.
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    event: Mapped[NotificationEvent] = mapped_column(str_enum(NotificationEvent))
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, length=10), default=Channel.SMS)
    # A mobile number (SMS) or an address (email); never shown unmasked in lists.
    recipient: Mapped[str] = mapped_column(String(254))
    activity_id: Mapped[int | None] = mapped_column(
        ForeignKey("activities.id", ondelete="SET NULL")
    )
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("registrations.id", ondelete="SET NULL"), index=True
    )
    # What the text says, without secrets (title, times, place, reason, short code).
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    # Secret parameters (the ticket link), Fernet-encrypted with a key derived from the
    # SECRET_KEY; cleared once the message is sent, failed or skipped.
    sealed: Mapped[str | None] = mapped_column(Text)
    status: Mapped[OutboxStatus] = mapped_column(
        str_enum(OutboxStatus), default=OutboxStatus.QUEUED
    )
    # Why skipped or failed, as a code (invalid_phone, daily_cap, superseded, ...).
    reason: Mapped[str] = mapped_column(String(40), default="")
    # The gateway's last answer when it refused or failed.
    last_error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When a delivery job was last handed to the broker for it (None: not yet).
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    segments: Mapped[int | None] = mapped_column(Integer)
    provider_ref: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The organizer's broadcast or the coordinator's invitation batch this message is of
    # (their delivery logs).
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="SET NULL"), index=True
    )
    invitation_batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("invitation_batches.id", ondelete="SET NULL"), index=True
    )
    # The staff account an e-mail is for (its address is ``recipient``, as it was when
    # written): a newer set-password or reset e-mail replaces one still waiting.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )

    activity: Mapped[Activity | None] = relationship()
    registration: Mapped[Registration | None] = relationship()


class SmsDailyCount(Model):
    """Messages handed to the gateway per phone and local day: the daily cap's counter.

    Raised by one conditional upsert, so two workers can never both take the last one.
    """

    __tablename__ = "sms_daily_counts"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    sent: Mapped[int] = mapped_column(Integer, default=0)


# Longest text an organizer may broadcast (the SMS adds the signature, title and 退订 link).
BROADCAST_TEXT_MAX = 200


class Broadcast(Model):
    """An organizer's message to every registrant of an activity: the text, who, when.

    Its messages (``OutboxMessage.broadcast_id``) are written with it, in one transaction.
    """

    __tablename__ = "broadcasts"
    __table_args__ = (
        CheckConstraint(f"length(text) BETWEEN 1 AND {BROADCAST_TEXT_MAX}", name="text_length"),
        Index("ix_broadcasts_activity_created", "activity_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(String(BROADCAST_TEXT_MAX))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Registrants the broadcast was written for (messages offered to the outbox).
    recipients: Mapped[int] = mapped_column(Integer, default=0)

    activity: Mapped[Activity] = relationship()
    created_by: Mapped[User | None] = relationship()


class InvitationBatch(Model):
    """A coordinator's invitation of a town's untrained cadres to a training: who, when,
    how many. Its messages carry ``OutboxMessage.invitation_batch_id``."""

    __tablename__ = "invitation_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(
        ForeignKey("activities.id", ondelete="CASCADE"), index=True
    )
    town_id: Mapped[int] = mapped_column(ForeignKey("towns.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Cadres invited by this batch (each cadre is invited to a training once).
    invited: Mapped[int] = mapped_column(Integer, default=0)

    activity: Mapped[Activity] = relationship()
    town: Mapped[Town] = relationship()
    created_by: Mapped[User | None] = relationship()


class SmsPreference(Model):
    """One row per phone that was given an opt-out link: its token and its choice.

    The phone is stored normalized, as the outbox stores recipients. ``opted_out_at`` set:
    no reminders, broadcasts or invitations (never affects the messages about changes or
    cancellations of the person's own registrations).
    """

    __tablename__ = "sms_preferences"

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    # The opt-out link's secret part (random; the link names no phone).
    token: Mapped[str] = mapped_column(String(32), unique=True)
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
