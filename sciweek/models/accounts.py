"""User accounts and their roles."""

from __future__ import annotations

import enum
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from .activities import Activity, _in_check
from .places import Department, Town
from .types import UTCDateTime, str_enum, utcnow


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

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role}>"
