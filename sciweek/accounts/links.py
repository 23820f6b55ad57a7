"""One-time set-password links (设置密码链接): an admin issues one instead of typing a
password for someone; it is shown once on the admin's page or sent to the account's owner.

A link carries a random token (``secrets.token_urlsafe(32)``); the database keeps only
its SHA-256 (``tokens.hash_secret``). A link is valid ``LINK_VALID_FOR`` (24 hours), works
once, and stops working when a newer link of the same account is issued. The page it
opens works without logging in.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import select, update

from ..database import begin_write
from ..extensions import db
from ..identity import is_mobile
from ..links import site_base_url
from ..models import AuditAction, SetPasswordToken, User, utcnow
from ..notifications import outbox, staff_mail
from ..notifications.verification import send_at_once
from ..tokens import hash_secret
from . import audit
from .passwords import hash_password, password_problem
from .services import AccountError, replace_password

# The e-mail that carries a link says how long it lives: one number for both.
LINK_VALID_FOR = timedelta(hours=staff_mail.SET_PASSWORD_LINK_HOURS)
# 忘记密码 by e-mail: a reset link lives an hour, and an account gets at most one a minute.
RESET_LINK_VALID_FOR = timedelta(hours=1)
RESET_EMAIL_INTERVAL = timedelta(minutes=1)
SMS_TEMPLATE = "set_password_link"
SHOWN = "shown"  # the admin's page showed the link (no message sent)


@dataclass(frozen=True)
class IssuedLink:
    url: str
    channel: str  # SHOWN, or how it was sent ("email", "sms")
    expires_at: datetime


def set_password_url(token: str) -> str:
    return site_base_url() + url_for("accounts.set_password", token=token)


def issue_set_password_link(
    user: User, *, actor: User | None, send: bool, now: datetime | None = None
) -> IssuedLink:
    """A new link for ``user`` (older unused ones stop working). With ``send``, it goes
    to the account's owner (``deliver_set_password_link``); refused (AccountError) when the
    account has nowhere to receive it. Needs a request context (the link's URL).
    Flushes only."""
    now = now or utcnow()
    if not user.is_enabled:
        raise AccountError(_("账号已停用，请先启用再发送设置密码链接。"))
    begin_write()
    row, url = _new_link(user, now, LINK_VALID_FOR)
    channel = SHOWN
    if send:
        sent_by = deliver_set_password_link(user, url, version=row.id)
        if sent_by is None:
            raise AccountError(
                _(
                    "此账号没有可接收链接的邮箱或手机号，请填写邮箱或手机号，或选择在页面上显示链接。"
                ),
                "send",
            )
        channel = sent_by
    audit.record(AuditAction.LINK_ISSUED, user, actor, delivery=channel)
    return IssuedLink(url, channel, row.expires_at)


def issue_reset_link_by_email(user: User, now: datetime) -> bool:
    """忘记密码 by e-mail: a new link of ``user``'s, valid ``RESET_LINK_VALID_FOR``,
    e-mailed to the account's address; none when the account has no address or was sent
    one less than a minute ago (quietly: the caller answers alike). Returns whether one
    was written. Flushes only."""
    if not user.email:
        return False
    latest = db.session.scalar(
        select(SetPasswordToken.created_at)
        .where(SetPasswordToken.user_id == user.id)
        .order_by(SetPasswordToken.created_at.desc())
        .limit(1)
    )
    if latest is not None and now - latest < RESET_EMAIL_INTERVAL:
        return False
    row, url = _new_link(user, now, RESET_LINK_VALID_FOR)
    minutes = int(RESET_LINK_VALID_FOR.total_seconds() // 60)
    staff_mail.enqueue_password_reset_email(user, version=row.id, link=url, minutes=minutes)
    audit.record(AuditAction.LINK_ISSUED, user, None, delivery="email")
    return True


def _new_link(user: User, now: datetime, valid_for: timedelta) -> tuple[SetPasswordToken, str]:
    """A new link of ``user``'s; their older unused links stop working."""
    db.session.execute(
        update(SetPasswordToken)
        .where(SetPasswordToken.user_id == user.id, SetPasswordToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    token = secrets.token_urlsafe(32)
    row = SetPasswordToken(
        user_id=user.id,
        token_hash=hash_secret(token),
        created_at=now,
        expires_at=now + valid_for,
    )
    db.session.add(row)
    db.session.flush()
    return row, set_password_url(token)


def deliver_set_password_link(user: User, url: str, *, version: object = "") -> str | None:
    """Send ``url`` to the account's owner; how it went ("email", "sms"), or None when the
    account has nowhere to receive it. E-mail is preferred (the link is long for an SMS);
    both go through the outbox, the link sealed. Flushes only."""
    if user.email and user.is_staff:  # e-mail is for staff accounts only
        staff_mail.enqueue_set_password_email(user, url, version=version)
        return "email"
    if is_mobile(user.phone):
        send_at_once(
            key=outbox.dedupe_key(
                "set_password", f"p{user.phone}", scope=f"u{user.id}", version=version
            ),
            phone=user.phone,
            template=SMS_TEMPLATE,
            params={"username": user.username},
            secret_params={"setup_url": url},
        )
        return "sms"
    return None


def user_of_link(token: str, now: datetime | None = None) -> User | None:
    """The enabled account whose live link this is, else None (unknown, used, replaced,
    expired)."""
    row = _live_row(token, now or utcnow())
    return row.user if row is not None else None


def _live_row(token: str, now: datetime, *, for_update: bool = False) -> SetPasswordToken | None:
    if not token or len(token) > 100:
        return None
    stmt = select(SetPasswordToken).where(SetPasswordToken.token_hash == hash_secret(token))
    if for_update:
        stmt = stmt.with_for_update()
    row = db.session.scalar(stmt)
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    if not row.user.is_enabled:
        return None
    return row


def use_set_password_link(token: str, password: str, now: datetime | None = None) -> User:
    """Set the account's password from its link, once: the link is spent, a lockout
    lifted, the account's sessions end. AccountError when the password is not allowed or
    the link no longer works. Flushes only."""
    now = now or utcnow()
    if problem := password_problem(password):
        raise AccountError(problem, "password")
    password_hash = hash_password(password)
    begin_write()
    row = _live_row(token, now, for_update=True)
    if row is None:
        raise AccountError(_("链接无效、已使用或已过期，请联系管理员重新发送。"))
    row.used_at = now
    user = row.user
    replace_password(user, password_hash)
    audit.record(AuditAction.PASSWORD_SET_BY_LINK, user, user)
    return user
