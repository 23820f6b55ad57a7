"""Account rules: creating and editing users, disabling them, log-in with its lockout, and
changing one's own password. The command line (``flask create-user``) and the admins'
pages (/manage/users) share them; every change is written to the audit log (``audit``)
in the same transaction.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select, update

from .. import signals
from ..database import begin_write
from ..extensions import db
from ..i18n import format_time
from ..identity import IdentityError, mask_phone, normalize_phone
from ..models import AuditAction, Department, Role, Town, User, utcnow
from . import audit
from .passwords import hash_password, password_problem

# Failed log-ins in a row that lock an account, and for how long. The count stays until
# a successful log-in or an admin's unlock: after a lock runs out, the next failure locks
# again at once.
LOCKOUT_AFTER = 5
LOCKOUT_FOR = timedelta(minutes=15)

USERNAME_MAX = 64
DISPLAY_NAME_MAX = 64
EMAIL_MAX = 254
# Enough to catch a typo (no @, a space, no dot in the domain); the link sent proves it.
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class AccountError(ValueError):
    """A user-facing reason why an account change was refused; ``field`` names the form
    field it belongs beside (None: the whole form)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class LoginRefused(Exception):
    """Why a log-in failed, for the person at the form."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class AccountData:
    """What the admins' form (and the command line) says about an account."""

    role: str
    display_name: str = ""
    department_code: str | None = None
    town_code: str | None = None
    email: str | None = None
    phone: str | None = None
    must_change_password: bool = False


def create_user(
    username: str,
    role: str,
    password: str | None,
    *,
    department_code: str | None = None,
    town_code: str | None = None,
    display_name: str = "",
    email: str | None = None,
    phone: str | None = None,
    must_change_password: bool = False,
    actor: User | None = None,
    via: str = "",
) -> User:
    """Create a user with a hashed password, checking the role's scope (organizers need a
    department, coordinators a town) and that user name, e-mail and phone are free.

    ``password`` None: nobody knows it (a random one); the admin then issues a
    set-password link (``links``). Flushes only."""
    username = (username or "").strip()
    if not username:
        raise AccountError(_("请填写用户名。"), "username")
    if len(username) > USERNAME_MAX:
        raise AccountError(_("用户名不能超过 %(n)s 个字符。", n=USERNAME_MAX), "username")
    data = _checked(AccountData(role, display_name, department_code, town_code, email, phone))
    if password is not None and (problem := password_problem(password)):
        raise AccountError(problem, "password")
    # Hash (0.1-0.2 s) before the first query: a writing transaction holds SQLite's
    # write lock from its first query to COMMIT (see database).
    password_hash = hash_password(password if password is not None else secrets.token_urlsafe(32))
    if db.session.scalar(select(User.id).where(User.username == username)):
        raise AccountError(_("用户名已存在：%(name)s", name=username), "username")
    user = User(
        username=username,
        role=role,
        display_name=data.display_name or username,
        password_hash=password_hash,
        must_change_password=must_change_password,
    )
    _check_contacts_free(user, data)
    user.email, user.phone = data.email, data.phone
    user.department, user.town = _scope(data)
    db.session.add(user)
    db.session.flush()
    details = {"username": username, **_snapshot(user)}
    if via:
        details["via"] = via
    audit.record(AuditAction.CREATED, user, actor, **details)
    return user


def update_user(user: User, data: AccountData, *, actor: User | None) -> dict:
    """Change an account's name, role, scope, contacts and must-change flag (never its
    user name). Demoting the last enabled admin is refused. Returns the changes
    ``{field: [old, new]}`` (also in the audit log). Flushes only."""
    data = _checked(data)
    begin_write()
    if user.role == Role.ADMIN and data.role != Role.ADMIN:
        _keep_an_enabled_admin(
            user, _("不能更改最后一位启用的管理员的角色，请先设置另一位管理员。")
        )
    _check_contacts_free(user, data)
    department, town = _scope(data)
    before, phone_before = _snapshot(user), user.phone
    user.display_name = data.display_name or user.username
    user.role = Role(data.role)
    user.email, user.phone = data.email, data.phone
    user.must_change_password = data.must_change_password
    user.department, user.town = department, town
    db.session.flush()
    after = _snapshot(user)
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if phone_before != user.phone:  # two numbers may look alike masked
        changes["phone"] = [before["phone"], after["phone"]]
    if changes:
        audit.record(AuditAction.UPDATED, user, actor, changes=changes)
        if {"role", "department", "town"} & changes.keys():
            signals.door_access_changed.send(user)
    return changes


def set_user_enabled(user: User, enabled: bool, *, actor: User | None) -> None:
    """Enable or disable an account (accounts are never deleted: history keeps the name).
    Disabling ends the account's sessions; nobody disables themself or the last enabled
    admin. Flushes only."""
    begin_write()
    if user.is_enabled == enabled:
        return
    if not enabled:
        if actor is not None and actor.id == user.id:
            raise AccountError(_("不能停用自己的账号。"))
        if user.role == Role.ADMIN:
            _keep_an_enabled_admin(user, _("不能停用最后一位启用的管理员。"))
        user.session_version = (user.session_version or 0) + 1
    user.is_enabled = enabled
    db.session.flush()
    audit.record(AuditAction.ENABLED if enabled else AuditAction.DISABLED, user, actor)
    signals.door_access_changed.send(user)


def unlock_user(user: User, *, actor: User | None) -> None:
    """Lift a log-in lockout and forget the failed log-ins. Flushes only."""
    begin_write()
    if not user.failed_logins and user.locked_until is None:
        return
    user.failed_logins = 0
    user.locked_until = None
    db.session.flush()
    audit.record(AuditAction.UNLOCKED, user, actor)


def authenticate(username: str, password: str, *, now: datetime | None = None) -> User:
    """The enabled, unlocked user of this name and password, or LoginRefused. A phone
    number (a citizen's account name) may be typed in any form ``normalize_phone`` reads:
    138 0013 8000, +86 138-0013-8000.

    A wrong password counts against the account (``LOCKOUT_AFTER`` in a row lock it for
    ``LOCKOUT_FOR``): the caller lets the transaction commit."""
    now = now or utcnow()
    with contextlib.suppress(IdentityError):  # else a staff user name
        username = normalize_phone(username)
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_enabled:
        raise LoginRefused(_("手机号/用户名或密码不正确。"))
    if user.is_locked(now):
        raise LoginRefused(_locked_message(user))
    if not user.check_password(password):
        _count_failed_login(user.id, now)
        raise LoginRefused(_("手机号/用户名或密码不正确。"))
    if user.failed_logins or user.locked_until is not None:
        begin_write()
        user.failed_logins = 0
        user.locked_until = None
        db.session.flush()
    return user


def _locked_message(user: User) -> str:
    assert user.locked_until is not None
    return _(
        "登录失败次数过多，账号已锁定至 %(time)s。请稍后再试，或请管理员解锁。",
        time=format_time(user.locked_until),
    )


def _count_failed_login(user_id: int, now: datetime) -> None:
    begin_write()  # after the slow password check, never around it
    count = db.session.execute(
        update(User)
        .where(User.id == user_id)
        .values(failed_logins=User.failed_logins + 1)
        .returning(User.failed_logins)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    if count < LOCKOUT_AFTER:
        return
    user = db.session.get(User, user_id, populate_existing=True)
    assert user is not None
    user.locked_until = now + LOCKOUT_FOR
    db.session.flush()
    audit.record(AuditAction.LOCKED, user, None, failed_logins=count)
    raise LoginRefused(_locked_message(user))


def change_own_password(user: User, current: str, new: str) -> User:
    """Change ``user``'s password, the current one given. Ends the account's other sessions
    (the caller logs this one in again). Flushes only."""
    if not user.check_password(current):
        raise AccountError(_("当前密码不正确。"), "current")
    if problem := password_problem(new):
        raise AccountError(problem, "password")
    if new == current:
        raise AccountError(_("新密码不能与当前密码相同。"), "password")
    new_hash = hash_password(new)
    begin_write()
    user = db.session.get(User, user.id, populate_existing=True) or user
    replace_password(user, new_hash)
    audit.record(AuditAction.PASSWORD_CHANGED, user, user)
    return user


def replace_password(user: User, password_hash: str) -> None:
    """A password the account's owner chose: no change is forced any more, a lockout is
    lifted, and every session of the account ends (``session_version``). Flushes only."""
    user.password_hash = password_hash
    user.must_change_password = False
    user.failed_logins = 0
    user.locked_until = None
    user.session_version = (user.session_version or 0) + 1
    db.session.flush()


def _keep_an_enabled_admin(user: User, message: str) -> None:
    """Refuse unless another enabled admin remains. Locks the enabled admins' rows in id
    order, so two admins disabling each other are decided one after the other."""
    admin_ids = db.session.scalars(
        select(User.id)
        .where(User.role == Role.ADMIN, User.is_enabled.is_(True))
        .order_by(User.id)
        .with_for_update()
    ).all()
    if not [i for i in admin_ids if i != user.id]:
        raise AccountError(message, "role")


def _checked(data: AccountData) -> AccountData:
    """The form's values tidied (e-mail lower-cased, phone normalized), or AccountError."""
    display_name = (data.display_name or "").strip()
    if len(display_name) > DISPLAY_NAME_MAX:
        raise AccountError(_("姓名不能超过 %(n)s 个字符。", n=DISPLAY_NAME_MAX), "display_name")
    if data.role not in Role.__members__.values():
        raise AccountError(_("未知角色：%(role)s", role=data.role), "role")
    email = (data.email or "").strip().lower() or None
    if email is not None and (len(email) > EMAIL_MAX or not EMAIL_RE.match(email)):
        raise AccountError(_("邮箱格式不正确，例如 name@example.cn。"), "email")
    phone = (data.phone or "").strip() or None
    if phone is not None:
        try:
            phone = normalize_phone(phone)
        except IdentityError as exc:
            raise AccountError(str(exc), "phone") from None
    return AccountData(
        role=data.role,
        display_name=display_name,
        department_code=(data.department_code or "").strip() or None,
        town_code=(data.town_code or "").strip() or None,
        email=email,
        phone=phone,
        must_change_password=data.must_change_password,
    )


def _check_contacts_free(user: User, data: AccountData) -> None:
    others = select(User.id).where(User.id != user.id) if user.id else select(User.id)
    if data.email and db.session.scalar(others.where(func.lower(User.email) == data.email)):
        raise AccountError(_("此邮箱已被其他账号使用。"), "email")
    if data.phone and db.session.scalar(others.where(User.phone == data.phone)):
        raise AccountError(_("此手机号已被其他账号使用。"), "phone")


def _scope(data: AccountData) -> tuple[Department | None, Town | None]:
    """Organizers belong to a department, coordinators to a town (the CHECKs agree):
    the department and town ``data`` names, looked up before anything changes."""
    if data.role == Role.ORGANIZER and not data.department_code:
        raise AccountError(_("组织者必须指定部门（--department）。"), "department")
    if data.role == Role.COORDINATOR and not data.town_code:
        raise AccountError(_("镇街联络员必须指定镇街（--town）。"), "town")
    department = _department(data.department_code) if data.department_code else None
    town = _town(data.town_code) if data.town_code else None
    return department, town


def _snapshot(user: User) -> dict:
    """What the audit log shows of an account (the phone masked)."""
    return {
        "display_name": user.display_name,
        "role": str(user.role),
        "department": user.department.code if user.department is not None else None,
        "town": user.town.code if user.town is not None else None,
        "email": user.email,
        "phone": mask_phone(user.phone) or None,
        "must_change_password": bool(user.must_change_password),
    }


def _department(code: str) -> Department:
    department = db.session.scalar(select(Department).where(Department.code == code))
    if department is None:
        raise AccountError(_("未知部门代码：%(code)s", code=code), "department")
    return department


def _town(code: str) -> Town:
    town = db.session.scalar(select(Town).where(Town.code == code))
    if town is None:
        raise AccountError(_("未知镇街代码：%(code)s", code=code), "town")
    return town
