"""Account rules: creating users and checking passwords."""

from __future__ import annotations

import contextlib

from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..identity import IdentityError, normalize_phone
from ..models import Department, Role, Town, User


class AccountError(ValueError):
    """A user-facing reason why an account could not be created."""


def create_user(
    username: str,
    role: str,
    password: str,
    *,
    department_code: str | None = None,
    town_code: str | None = None,
    display_name: str = "",
) -> User:
    """Create a user with a hashed password, checking the role's scope."""
    if role not in Role.__members__.values():
        raise AccountError(_("未知角色：%(role)s", role=role))
    if len(password) < 8:
        raise AccountError(_("密码至少 8 位。"))
    # Hash (0.1-0.2 s) before the first query: a writing transaction holds SQLite's
    # write lock from its first query to COMMIT (see database).
    user = User(username=username, role=role, display_name=display_name or username)
    user.set_password(password)
    if db.session.scalar(select(User.id).where(User.username == username)):
        raise AccountError(_("用户名已存在：%(name)s", name=username))
    if role == Role.ORGANIZER:
        if not department_code:
            raise AccountError(_("组织者必须指定部门（--department）。"))
        user.department = _department(department_code)
    elif department_code:
        user.department = _department(department_code)
    if role == Role.COORDINATOR:
        if not town_code:
            raise AccountError(_("镇街联络员必须指定镇街（--town）。"))
        user.town = _town(town_code)
    elif town_code:
        user.town = _town(town_code)
    db.session.add(user)
    db.session.flush()
    return user


def authenticate(username: str, password: str) -> User | None:
    """The user of this name and password; a phone number (a citizen's account name) may be
    typed in any form ``normalize_phone`` reads: 138 0013 8000, +86 138-0013-8000."""
    with contextlib.suppress(IdentityError):  # else a staff user name
        username = normalize_phone(username)
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_enabled or not user.check_password(password):
        return None
    return user


def _department(code: str) -> Department:
    department = db.session.scalar(select(Department).where(Department.code == code))
    if department is None:
        raise AccountError(_("未知部门代码：%(code)s", code=code))
    return department


def _town(code: str) -> Town:
    town = db.session.scalar(select(Town).where(Town.code == code))
    if town is None:
        raise AccountError(_("未知镇街代码：%(code)s", code=code))
    return town
