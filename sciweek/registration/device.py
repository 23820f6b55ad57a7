"""Tickets held by this device: a signed, HttpOnly cookie listing registration ids.

The ticket page adds its registration (registering on a device lands there, and so does
opening a ticket link or recovering a ticket). Self check-in accepts the cookie as proof
that the person holds the ticket (``checkin.services.HeldTicket``): a phone number alone
is not proof, anyone can type it.

The ids are signed, not secret: the signature stops a hand-edited cookie from claiming
someone else's registration. A reissued ticket does not take the registration off
devices that opened it before (they held the ticket then).
"""

from __future__ import annotations

from flask import Response, current_app, request
from itsdangerous import BadSignature, URLSafeSerializer

COOKIE = "sciweek_tickets"
MAX_TICKETS = 30  # the newest; a family registering its members stays far below
MAX_AGE = 400 * 86400  # browsers keep a cookie at most 400 days
_SALT = "sciweek.device-tickets"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def tickets_on_device() -> frozenset[int]:
    """Registration ids whose ticket this device has opened; empty when none or forged."""
    return frozenset(_held_in_order())


def _held_in_order() -> list[int]:
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 4000:
        return []
    try:
        ids = _serializer().loads(raw)
    except BadSignature:
        return []
    if not isinstance(ids, list):
        return []
    return [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]


def remember_ticket(response: Response, registration_id: int) -> Response:
    """Add ``registration_id`` to the tickets this device holds (the newest last)."""
    ids = [i for i in _held_in_order() if i != registration_id] + [registration_id]
    response.set_cookie(
        COOKIE,
        _serializer().dumps(ids[-MAX_TICKETS:]),
        max_age=MAX_AGE,
        httponly=True,
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        samesite="Lax",
    )
    return response
