"""Log-in wiring and role checks used by every feature's routes."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask
from flask_babel import lazy_gettext as _l

from ..extensions import db, login_manager
from ..inputs import parse_id
from ..models import User


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = _l("请先登录。")
    login_manager.session_protection = "strong"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    number = parse_id(user_id)
    return db.session.get(User, number) if number is not None else None


def safe_next_url(target: str | None) -> str | None:
    """Return ``target`` only when it is a path on this site (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target:
        return None
    return target
