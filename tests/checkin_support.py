"""Helpers for the check-in tests: tickets, API tokens and a live gunicorn server."""

from __future__ import annotations

from sciweek.checkin.services import create_api_token
from sciweek.extensions import db
from sciweek.registration.services import RegistrationRequest, register_for_activity

from .live_server import LiveServer  # noqa: F401 - shared with check-in tests


def issue_ticket(activity, name="张三", phone="13800138000", **kwargs):
    """Register someone and return the IssuedTicket (registration + secret)."""
    return register_for_activity(
        activity.id, RegistrationRequest(name=name, phone=phone), walk_in=True, **kwargs
    )


def token_for(user, name="测试设备") -> str:
    _token, raw = create_api_token(user, name)
    db.session.commit()
    return raw


def bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}
