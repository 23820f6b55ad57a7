"""Check-in at the door: API tokens for scanner devices and the log of every scan."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .accounts import User
from .activities import _in_check
from .types import UTCDateTime, first_case, str_enum, utcnow


class ApiToken(db.Model):
    """A per-user bearer token for the check-in API. Only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, shown in lists so people can tell their tokens apart.
    prefix: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class ScanResult(enum.StrEnum):
    OK = "ok"
    ALREADY_CHECKED_IN = "already_checked_in"
    INVALID = "invalid"
    WRONG_ACTIVITY = "wrong_activity"
    CANCELLED = "cancelled"
    WAITLISTED = "waitlisted"
    NOT_NOW = "not_now"  # outside the session's check-in window (checkin/windows.py)
    UNDONE = "undone"  # an organizer took a check-in back


SCAN_RESULT_VALUES = tuple(r.value for r in ScanResult)


class CheckInMethod(enum.StrEnum):
    """How a check-in was made: ``CheckIn.method``, and ``ScanLog.method`` of its scan."""

    SCAN = "scan"  # a ticket scanned or a short code typed at the door
    WALK_IN = "walk_in"  # registered at the door
    ROSTER = "roster"  # a roster cadre checked in from a training's list at the door
    OVER_CAPACITY = "over_capacity"  # admitted beyond capacity by an organizer (超额签到)
    SELF = "self"  # self check-in with the projector's (or the printed sheet's) code
    PAPER = "paper"  # typed in afterwards from the signed paper 签到表
    DEMO = "demo"  # demo data


def scan_outcome(*, unknown, refused, refusal, checked_in_now, checked_in_before, not_now):
    """The answer to a scan, in this order: an unknown code is ``invalid``; a ticket that
    may not be checked in here gets its refusal (``Registration.scan_refusal``); else
    ``ok`` when this scan made the check-in, ``already_checked_in`` when one was there;
    else ``not_now`` when the scan fell outside the session's check-in window (then no
    check-in was attempted: ``checkin.windows``).

    Python values on the general path (``checkin.services``), SQL expressions inside the
    fast path's statement (``checkin.fast``), where the answer is NULL when no check-in is
    visible and the window was open (a race lost to a check-in committed after the
    statement began). The offline scanner's copy is ``scanResult`` in
    ``static/js/scanner-core.js``.
    """
    return first_case(
        (unknown, ScanResult.INVALID),
        (refused, refusal),
        (checked_in_now, ScanResult.OK),
        (checked_in_before, ScanResult.ALREADY_CHECKED_IN),
        (not_now, ScanResult.NOT_NOW),
    )


# The longest reason an organizer may give for checking someone in outside the window.
WINDOW_OVERRIDE_REASON_MAX = 200


class ScanLog(db.Model):
    """Every scan, search check-in, walk-in, self check-in and undo, failed ones too.

    ``(user_id, nonce)`` is unique: a device that resends a scan (flaky network,
    offline queue) gets the stored answer instead of a second check-in.
    """

    __tablename__ = "scan_log"
    __table_args__ = (
        CheckConstraint(_in_check("result", SCAN_RESULT_VALUES), name="result"),
        UniqueConstraint("user_id", "nonce", name="uq_scan_log_user_nonce"),
        Index("ix_scan_log_activity_recorded", "activity_id", "recorded_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None for self check-in by a member of the public.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    nonce: Mapped[str | None] = mapped_column(String(64))
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("activity_sessions.id", ondelete="CASCADE")
    )
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("registrations.id", ondelete="CASCADE"), index=True
    )
    checkin_id: Mapped[int | None] = mapped_column(ForeignKey("checkins.id", ondelete="SET NULL"))
    method: Mapped[str] = mapped_column(String(20), default="scan")
    result: Mapped[ScanResult] = mapped_column(str_enum(ScanResult, length=30))
    # What was scanned, cut short; never a whole ticket secret (see services.loggable_code).
    code: Mapped[str] = mapped_column(String(40), default="")
    # The device's time of the scan (offline scans arrive later) ...
    scanned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # ... the check-in time reported back (the first one, for already_checked_in) ...
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # ... and when the server learnt of it.
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Why ``user`` checked the person in outside the session's window ("仍然签到"); None
    # for every other scan (the same reason is kept on the check-in).
    window_override_reason: Mapped[str | None] = mapped_column(String(WINDOW_OVERRIDE_REASON_MAX))

    user: Mapped[User | None] = relationship()
