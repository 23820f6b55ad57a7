"""找回我的票: a phone, an SMS code, and the person's active tickets, each re-issued.

No enumeration: asking for a code answers alike whether or not the phone holds a
registration — the same per-phone limits are counted and the same page is shown; the SMS
is written only for a phone with active tickets (nobody else has anything to recover,
and a stranger's phone gets no text). Only someone who can read that SMS sees the tickets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select

from ..extensions import db
from ..models import ActivitySession, Registration, VerificationPurpose, utcnow
from ..notifications import verification
from .services import reissue_ticket


@dataclass(frozen=True)
class RecoveredTicket:
    registration: Registration
    secret: str  # the new one: the only moment it is known


def _active_tickets(phone: str, now: datetime):
    """Registrations of ``phone`` that still hold or await a place at an activity with a
    session not yet over (upcoming or ongoing)."""
    not_over = exists().where(
        ActivitySession.activity_id == Registration.activity_id, ActivitySession.ends_at > now
    )
    return (
        select(Registration)
        .where(Registration.phone == phone, Registration.is_active, not_over)
        .order_by(Registration.id)
    )


def ask_for_code(phone: str, now: datetime | None = None) -> verification.IssuedCode:
    """A code for ``phone`` (normalised), sent only when it has active tickets; the
    limits and the answer are the same either way. Raises VerificationRefused."""
    now = now or utcnow()
    holds_tickets = db.session.scalar(select(_active_tickets(phone, now).exists())) or False
    return verification.request_code(
        phone, VerificationPurpose.LOST_TICKET, send=bool(holds_tickets), now=now
    )


def recover_tickets(phone: str, code: str, now: datetime | None = None) -> list[RecoveredTicket]:
    """Check the code (raises VerificationRefused; a wrong try must be committed) and
    re-issue every active ticket of ``phone``: the old links say they were replaced."""
    now = now or utcnow()
    verification.check_code(phone, VerificationPurpose.LOST_TICKET, code, now=now)
    registrations = db.session.scalars(_active_tickets(phone, now)).all()
    recovered = [RecoveredTicket(r, reissue_ticket(r)) for r in registrations]
    db.session.flush()
    return recovered
