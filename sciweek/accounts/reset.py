"""忘记密码 for staff: a user name, phone or e-mail address → a code by SMS (to the
account's phone) and a one-hour set-password link by e-mail (to its address) → a new
password.

The answer to "send me a code" is the same whether the account exists, has a phone, or
asked too often (the per-phone limits of ``notifications.verification`` refuse quietly):
nobody learns from it which accounts exist. Codes are purpose ``password_reset``, scoped
to the account (``u<id>``); the routes add a per-address rate limit.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from ..database import begin_write
from ..extensions import db
from ..identity import IdentityError, is_mobile, normalize_phone
from ..models import STAFF_ROLES, AuditAction, User, VerificationPurpose, utcnow
from ..notifications.verification import VerificationRefused, check_code, request_code
from ..transactions import after_commit
from . import audit
from .links import issue_reset_link_by_email
from .passwords import hash_password, password_problem
from .services import AccountError, replace_password

IDENTIFIER_MAX = 64
# Asking takes at least this long, commit included, whether or not a code is sent
# (sending writes a few rows: milliseconds that would tell an existing account from none).
ANSWER_FLOOR_SECONDS = 0.05


def _scope(user: User) -> str:
    return f"u{user.id}"


def account_for_reset(identifier: str) -> User | None:
    """The enabled staff account named by its user name, its phone or its e-mail address,
    having a phone or an address to receive the code or link."""
    identifier = (identifier or "").strip()
    if not identifier or len(identifier) > IDENTIFIER_MAX:
        return None
    phone = identifier
    with contextlib.suppress(IdentityError):
        phone = normalize_phone(identifier)
    user = db.session.scalar(
        select(User)
        .where(
            or_(
                User.username == identifier,
                User.phone == phone,
                func.lower(User.email) == identifier.lower(),
            )
        )
        .where(User.role.in_(STAFF_ROLES), User.is_enabled.is_(True))
        .order_by(User.id)
        .limit(1)
    )
    if user is None or not (is_mobile(user.phone) or user.email):
        return None
    return user


def request_password_reset(identifier: str, now: datetime | None = None) -> None:
    """Send a 忘记密码 code to the account's phone and a reset link to its address when
    there is such an account; answer nothing either way. Flushes only."""
    started = time.monotonic()
    now = now or utcnow()
    begin_write()  # the same work whether or not the account exists
    user = account_for_reset(identifier)
    if user is not None:
        issue_reset_link_by_email(user, now)
    if user is not None and is_mobile(user.phone):
        with contextlib.suppress(VerificationRefused):  # too often: quietly, like no account
            request_code(
                user.phone, VerificationPurpose.PASSWORD_RESET, scope=_scope(user), now=now
            )
    # Once committed, so that no lock is held meanwhile (SQLite's write lock).
    after_commit(lambda: time.sleep(max(0.0, ANSWER_FLOOR_SECONDS - (time.monotonic() - started))))


def reset_password_with_code(
    identifier: str, code: str, password: str, now: datetime | None = None
) -> User:
    """Set a new password with the code sent to the account's phone; AccountError when the
    password is not allowed (``field`` "password") or the code is wrong, used or expired
    (field "code"). A wrong try counts: the caller lets the transaction commit."""
    now = now or utcnow()
    if problem := password_problem(password):
        raise AccountError(problem, "password")
    password_hash = hash_password(password)
    begin_write()
    user = account_for_reset(identifier)
    if user is None or not is_mobile(user.phone):
        raise AccountError(_("验证码无效或已过期，请重新获取。"), "code")
    try:
        check_code(
            user.phone, VerificationPurpose.PASSWORD_RESET, code, scope=_scope(user), now=now
        )
    except VerificationRefused as exc:
        raise AccountError(exc.message, "code") from None
    replace_password(user, password_hash)
    audit.record(AuditAction.PASSWORD_RESET_BY_CODE, user, user)
    return user
