"""One-time SMS verification codes (找回电子票, 报名需短信验证, a roster cadre's self check-in)
and the phone reveal log.

A code is kept only as an HMAC of the phone and the code (``notifications.verification``);
its tries are counted in the row, and a CHECK keeps them within the limit whatever the
code does. ``VerificationPhone`` is one row per phone that has asked for a code: the
request for a new code locks it, so two requests for one phone are decided one after
the other (at most 1 a minute, 5 an hour).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Base, db
from .accounts import User
from .activities import _in_check
from .registration import Registration
from .training import Cadre
from .types import UTCDateTime, str_enum, utcnow

if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model

# Tries per code (the CHECK below and the service share it).
VERIFICATION_MAX_TRIES = 5


class VerificationPurpose(enum.StrEnum):
    LOST_TICKET = "lost_ticket"  # 找回电子票
    REGISTER = "register"  # 报名需短信验证 (scope: the activity)
    SELF_CHECK_IN = "self_check_in"  # a roster cadre's self check-in (scope: the session)
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a staff account's 忘记密码 (scope: user)


VERIFICATION_PURPOSE_VALUES = tuple(p.value for p in VerificationPurpose)


class VerificationCode(Model):
    __tablename__ = "verification_codes"
    __table_args__ = (
        CheckConstraint(_in_check("purpose", VERIFICATION_PURPOSE_VALUES), name="purpose"),
        CheckConstraint(f"tries >= 0 AND tries <= {VERIFICATION_MAX_TRIES}", name="tries"),
        CheckConstraint("expires_at > created_at", name="expires_after_created"),
        Index("ix_verification_codes_lookup", "phone", "purpose", "scope", "id"),
        Index("ix_verification_codes_phone_created", "phone", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(11))
    purpose: Mapped[VerificationPurpose] = mapped_column(str_enum(VerificationPurpose))
    # What the code is for within its purpose: "a<activity id>" for a registration,
    # "s<session id>" for a self check-in.
    scope: Mapped[str] = mapped_column(String(40), default="")
    # HMAC-SHA256 (key from SECRET_KEY) of purpose, scope, phone and code; never the code.
    code_hash: Mapped[str] = mapped_column(String(64))
    tries: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    consumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class VerificationPhone(Model):
    """A phone that asked for codes: the row that orders its requests (locked by each)."""

    __tablename__ = "verification_phones"

    phone: Mapped[str] = mapped_column(String(11), primary_key=True)
    last_requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PhoneReveal(Model):
    """Who saw whose full phone number, and when (显示完整号码), for the admins' list."""

    __tablename__ = "phone_reveals"
    __table_args__ = (
        CheckConstraint("(cadre_id IS NULL) <> (registration_id IS NULL)", name="one_subject"),
        Index("ix_phone_reveals_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No cascade: an account with reveals on record cannot be deleted out of the log.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    cadre_id: Mapped[int | None] = mapped_column(ForeignKey("cadres.id", ondelete="SET NULL"))
    registration_id: Mapped[int | None] = mapped_column(
        ForeignKey("registrations.id", ondelete="SET NULL")
    )
    # Whose number it was, as shown then (the row may be purged later): the name only.
    subject_name: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship()
    cadre: Mapped[Cadre | None] = relationship()
    registration: Mapped[Registration | None] = relationship()
