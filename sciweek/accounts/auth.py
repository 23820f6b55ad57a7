"""Log-in wiring and role checks used by every feature's routes."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, redirect, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ..extensions import db, login_manager
from ..inputs import parse_id, parse_int
from ..models import User

# What a user who must choose a new password may still open (``must_change_password``).
OPEN_DURING_FORCED_CHANGE = frozenset(
    {"static", "accounts.change_password", "accounts.logout", "accounts.set_password"}
)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("请先登录。")
    login_manager.session_protection = "strong"
    app.before_request(_forced_password_change)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The session's user (``User.get_id``: "<id>.<session version>"); None, which ends
    the session, when the account was disabled or its sessions were ended since."""
    number, _dot, version = user_id.partition(".")
    user_number = parse_id(number)
    user = db.session.get(User, user_number) if user_number is not None else None
    if user is None or not user.is_enabled:
        return None
    session_version = parse_int(version, minimum=0) if version else 0
    if session_version is None or session_version != (user.session_version or 0):
        return None
    return user


def _forced_password_change():
    """An account whose password someone else chose opens nothing but the change page
    until its owner chooses one."""
    endpoint = request.endpoint or ""
    if endpoint in OPEN_DURING_FORCED_CHANGE or endpoint.startswith("health."):
        return None
    # Without a session or remember-me cookie nobody is signed in (API token requests,
    # scans): loading the anonymous user cost a twentieth of a scan.
    if not request.cookies:
        return None
    if current_user.is_authenticated and current_user.must_change_password:
        return redirect(url_for("accounts.change_password"))
    return None


def safe_next_url(target: str | None) -> str | None:
    """Return ``target`` only when it is a path on this site (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return None
    return target
