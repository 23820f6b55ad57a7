"""Opt-out (退订) of reminders, broadcasts and invitations, per phone.

Every text of those kinds ends with a link ``SCIWEEK_BASE_URL/u/<token>``: the token is
random, made for the phone the first time a message offering 退订 is claimed for it
(``sms_preferences``; the phone stored normalized, as the outbox stores recipients), so
the link names no phone. The public page behind it opts the phone out with one click and
back in with another.

Every sender honours the choice through one ``delivery_check``: a message of an
``OPT_OUT_EVENTS`` event to an opted-out phone is skipped with the reason ``opted_out``
when a worker claims it. Messages about the person's own registrations (confirmation,
waitlist, promotion, change, cancellation) are never held back.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from ..extensions import db
from ..identity import IdentityError, normalize_phone
from ..links import site_base_url
from ..models import NotificationEvent, OutboxMessage, SmsPreference, utcnow
from . import delivery

# What a person may opt out of. Never the messages about their own registrations.
OPT_OUT_EVENTS = frozenset(
    {NotificationEvent.REMINDER, NotificationEvent.BROADCAST, NotificationEvent.INVITATION}
)
OPTED_OUT = "opted_out"
TOKEN_BYTES = 8  # 11 URL-safe characters: short in an SMS, not guessable
# How previews show the link (the real one differs per phone and has the same length).
SAMPLE_TOKEN = "x" * 11


def link(token: str) -> str:
    return f"{site_base_url()}/u/{token}"


def token_for(phone: str) -> str:
    """The opt-out token of ``phone`` (normalized), made on first use. Flushes only."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(
        insert(SmsPreference)
        .values(phone=phone, token=secrets.token_urlsafe(TOKEN_BYTES), changed_at=utcnow())
        .on_conflict_do_nothing(index_elements=["phone"])
    )
    return db.session.scalars(select(SmsPreference.token).where(SmsPreference.phone == phone)).one()


def preference(token: str) -> SmsPreference | None:
    """The phone's preference behind an opt-out link (None for an unknown token)."""
    if not token or len(token) > 32:
        return None
    return db.session.scalar(select(SmsPreference).where(SmsPreference.token == token))


def set_opted_out(pref: SmsPreference, opted_out: bool) -> None:
    """Opt the phone out (no reminders, broadcasts or invitations) or back in. Flushes."""
    if pref.opted_out_at is None and opted_out:
        pref.opted_out_at = utcnow()
    elif not opted_out:
        pref.opted_out_at = None
    pref.changed_at = utcnow()
    db.session.flush()


def opted_out_phones(phones: Iterable[str]) -> set[str]:
    """Which of these (normalized) phones opted out: for previews' counts."""
    wanted = sorted(set(phones))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        found.update(
            db.session.scalars(
                select(SmsPreference.phone).where(
                    SmsPreference.phone.in_(wanted[start : start + 500]),
                    SmsPreference.opted_out_at.is_not(None),
                )
            )
        )
    return found


def _normalized(phone: str) -> str | None:
    try:
        return normalize_phone(phone)
    except IdentityError:
        return None


@delivery.delivery_check
def skip_opted_out(message: OutboxMessage) -> str | None:
    """Reminders, broadcasts and invitations are not sent to a phone that opted out."""
    if message.event not in OPT_OUT_EVENTS:
        return None
    phone = _normalized(message.recipient)
    if phone is None:
        return None  # the invalid phone check answers
    return OPTED_OUT if opted_out_phones([phone]) else None


@delivery.text_params
def opt_out_link(message: OutboxMessage, phone: str) -> dict[str, str]:
    """The 退订 link of the recipient, for the texts that offer it."""
    if message.event not in OPT_OUT_EVENTS:
        return {}
    return {"optout_url": link(token_for(phone))}


def sample_link() -> str:
    """An opt-out link as long as a real one, for previews."""
    return link(SAMPLE_TOKEN)
