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
from ..notifications import outbox
from ..notifications.verification import send_at_once
from ..tokens import hash_secret
from . import audit
from .passwords import hash_password, password_problem
from .services import AccountError, replace_password

LINK_VALID_FOR = timedelta(hours=24)
SMS_TEMPLATE = "set_password_link"
SHOWN = "shown"  # the admin's page showed the link (no message sent)


@dataclass(frozen=True)
class IssuedLink:
    url: str
    channel: str  # SHOWN, or how it was sent ("sms"; later "email")
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
        expires_at=now + LINK_VALID_FOR,
    )
    db.session.add(row)
    db.session.flush()
    url = set_password_url(token)
    channel = SHOWN
    if send:
        sent_by = deliver_set_password_link(user, url, version=row.id)
        if sent_by is None:
            raise AccountError(
                _("此账号没有可接收链接的手机号，请填写手机号，或选择在页面上显示链接。"),
                "send",
            )
        channel = sent_by
    audit.record(AuditAction.LINK_ISSUED, user, actor, delivery=channel)
    return IssuedLink(url, channel, row.expires_at)


def deliver_set_password_link(user: User, url: str, *, version: object = "") -> str | None:
    """Send ``url`` to the account's owner; how it went ("sms"), or None when the account
    has nowhere to receive it.

    E-MAIL GOES HERE: when the notification subsystem has an e-mail channel, send to
    ``user.email`` (preferred over SMS, the link being long) and return "email". Today:
    SMS through the outbox when the account has a phone. Flushes only."""
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
