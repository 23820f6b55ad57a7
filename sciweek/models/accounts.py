"""User accounts and their roles."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import Base, db
from .activities import Activity, _in_check
from .places import Department, Town
from .types import UTCDateTime, str_enum, utcnow

if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model


class Role(enum.StrEnum):
    ADMIN = "admin"
    ORGANIZER = "organizer"  # scoped to a department
    COORDINATOR = "coordinator"  # scoped to a town
    CHECKER = "checker"  # door staff, scoped to assigned activities
    CITIZEN = "citizen"  # a member of the public with an account


ROLE_VALUES = tuple(r.value for r in Role)
STAFF_ROLES = (Role.ADMIN, Role.ORGANIZER, Role.COORDINATOR, Role.CHECKER)

# werkzeug's default, written out: memory-hard scrypt (N=2**15, r=8, p=1), ~0.1 s a hash.
PASSWORD_HASH_METHOD = "scrypt"  # noqa: S105 - a method name, not a password

checker_assignments = Table(
    "checker_assignments",
    db.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("activity_id", ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True),
)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(_in_check("role", ROLE_VALUES), name="role"),
        CheckConstraint("role <> 'organizer' OR department_id IS NOT NULL", name="organizer_dept"),
        CheckConstraint("role <> 'coordinator' OR town_id IS NOT NULL", name="coordinator_town"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(str_enum(Role))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    town_id: Mapped[int | None] = mapped_column(ForeignKey("towns.id"))
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Where a staff member gets set-password links and 忘记密码 codes (e-mail or SMS); a
    # phone is stored normalized (identity.normalize_phone) and shown masked.
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(11), unique=True)
    # Set for an account whose password someone else chose or reset: the next log-in must
    # choose a new one before anything else.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    # Log-in lockout (accounts.lockout): failed log-ins in a row, and until when the account
    # refuses log-ins after too many; admins see both and may unlock.
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Part of the session's user id (get_id): raised when the account is disabled or its
    # password is set by someone else, which ends every session and remember-me cookie.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Personal calendar feed: the URL token is shown once, only its SHA-256 is kept.
    feed_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    department: Mapped[Department | None] = relationship()
    town: Mapped[Town | None] = relationship()
    assigned_activities: Mapped[list[Activity]] = relationship(secondary=checker_assignments)

    def set_password(self, password: str, *, method: str = PASSWORD_HASH_METHOD) -> None:
        """Keep a salted hash of ``password``. The application always uses the default
        ``method``; only the test factories pass a cheap one, to save suite time."""
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.is_enabled

    def get_id(self) -> str:  # Flask-Login: what the session and remember cookie keep
        return f"{self.id}.{self.session_version or 0}"

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role}>"


class SetPasswordToken(Model):
    """A one-time set-password link (设置密码链接): only the SHA-256 of its random token is
    kept; valid 24 hours, used once, and void once a newer link of the user is issued."""

    __tablename__ = "set_password_tokens"
    __table_args__ = (CheckConstraint("expires_at > created_at", name="expires_after_created"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when the link was used, or when a newer link replaced it.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class AuditAction(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"  # details: {"changes": {field: [old, new]}}
    DISABLED = "disabled"
    ENABLED = "enabled"
    LOCKED = "locked"  # too many failed log-ins (no actor)
    UNLOCKED = "unlocked"
    LINK_ISSUED = "link_issued"  # details: {"delivery": "shown" | "sms" | ...}
    PASSWORD_SET_BY_LINK = "password_set_by_link"  # noqa: S105 - an action, not a password
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 - by the user, current password given
    PASSWORD_RESET_BY_CODE = "password_reset_by_code"  # noqa: S105 - 忘记密码


AUDIT_ACTION_VALUES = tuple(a.value for a in AuditAction)


class AuditLog(Model):
    """Who changed which account, how, and when; written in the change's transaction."""

    __tablename__ = "audit_log"
    __table_args__ = (
        CheckConstraint(_in_check("action", AUDIT_ACTION_VALUES), name="action"),
        Index("ix_audit_log_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None: the command line, or the system (a lockout). No cascade: accounts are never
    # deleted, and the log keeps the names.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[AuditAction] = mapped_column(str_enum(AuditAction, length=30))
    target_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    target_user: Mapped[User | None] = relationship(foreign_keys=[target_user_id])
