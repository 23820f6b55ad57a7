"""Delivering outbox messages: claim, check, send, record — one message at a time.

Exactly once: a worker first *claims* a due message (``queued``/``deferred`` →
``sending``, committed, under the row's lock), then hands it to the gateway, then
records the answer (committed). Two workers, a repeated job or a job redelivered after
a crash find the message claimed or done and leave it. The only moment of doubt is a
worker dying between the gateway's acceptance and the record: the sweep finds such a
message ``sending`` for longer than ``SCIWEEK_SMS_STALE_SECONDS`` and sends it again
with the same idempotency key when the backend is idempotent (the gateway delivers it
once), or marks it ``failed`` (reason ``interrupted``) when it is not.

Before sending, in the claim's transaction: an invalid phone is skipped
(``invalid_phone``), quiet hours defer the message to their end (not counted as an
attempt), and the per-phone daily cap is taken (``daily_cap`` when reached; a failed
send gives it back). Gateway errors are retried with exponential backoff up to
``SCIWEEK_SMS_MAX_ATTEMPTS``, then the message is ``failed`` with the gateway's answer.

E-mail to staff accounts (``Channel.EMAIL``, ``staff_mail``) takes the same path with its
own backend (``mail``): an invalid address is skipped (``invalid_email``); quiet hours and
the daily cap are the SMS's alone; mail server errors are retried and failed alike
(reason ``mail_server``). Each channel's messages are claimed as its backend allows.

Senders add checks with ``delivery_check`` (opt-outs: a function of the message
returning a skip reason or None) and per-recipient text parameters that are never stored
with ``text_params`` (the 退订 link).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import cast

from flask import current_app
from sqlalchemy import Table, bindparam, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from ..database import begin_write, rowcount_result
from ..extensions import db
from ..i18n import LOCAL_TZ, to_local
from ..identity import IdentityError, normalize_phone
from ..models import (
    DUE_STATUSES,
    Channel,
    NotificationEvent,
    OutboxMessage,
    OutboxStatus,
    SmsDailyCount,
    utcnow,
)
from . import messages, sealing, staff_mail
from .backends import GatewayError, Receipt, Sms, SmsBackend, sms_backend
from .mail import Email, MailBackend, is_email_address, mail_backend

MAX_BACKOFF = timedelta(hours=1)
# Idempotent backends: answers recorded together, at most this many (see ``deliver``).
RECORD_EVERY = 10
# Events a person asked for this very minute: never held back by quiet hours.
QUIET_HOURS_EXEMPT = frozenset({NotificationEvent.VERIFICATION})

DeliveryCheck = Callable[[OutboxMessage], str | None]
_CHECKS: list[DeliveryCheck] = []
TextParams = Callable[[OutboxMessage, str], dict[str, str]]
_TEXT_PARAMS: list[TextParams] = []


def delivery_check(check: DeliveryCheck) -> DeliveryCheck:
    """Register a check run before each send: it returns a skip reason (e.g.
    ``opted_out``) or None (the opt-out: ``optout.skip_opted_out``)."""
    _CHECKS.append(check)
    return check


def text_params(provider: TextParams) -> TextParams:
    """Register a source of secret text parameters, computed when a message is claimed
    from the message and its normalized phone (e.g. the opt-out link), never stored."""
    _TEXT_PARAMS.append(provider)
    return provider


@dataclass(frozen=True)
class Outcome:
    message_id: int
    status: OutboxStatus | None  # None: not claimed (someone else has it, or not due)
    retry_in: float | None = None  # seconds, when a retry was scheduled


def quiet_until(now: datetime, quiet: tuple[int, int] | None) -> datetime | None:
    """The end of the quiet hours ``now`` falls in (UTC), or None outside them.

    ``quiet`` is (start, end) in minutes after local midnight; it may span midnight."""
    if quiet is None:
        return None
    start, end = quiet
    local = to_local(now)
    minute = local.hour * 60 + local.minute
    inside = (start <= minute or minute < end) if start > end else (start <= minute < end)
    if not inside:
        return None
    end_day = local.date() + timedelta(days=1) if start > end and minute >= start else local.date()
    end_at = datetime.combine(end_day, time(end // 60, end % 60), tzinfo=LOCAL_TZ)
    return end_at.astimezone(now.tzinfo)


def backoff(attempts: int, base: float) -> float:
    """Seconds before try number ``attempts + 1``: base, 2·base, 4·base ... (≤ 1 hour),
    with up to 10 % jitter so that retries of many messages spread out."""
    delay = min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF.total_seconds())
    return delay * (1 + random.random() / 10)


def _take_daily_place(phone: str, now: datetime, cap: int) -> bool:
    """Count one message for ``phone`` today (local day); False when the cap is reached."""
    if cap <= 0:
        return True
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    upsert = insert(SmsDailyCount).values(phone=phone, day=to_local(now).date(), sent=1)
    stmt = upsert.on_conflict_do_update(
        index_elements=["phone", "day"],
        set_={"sent": SmsDailyCount.sent + 1},
        where=SmsDailyCount.sent < cap,
    ).returning(SmsDailyCount.sent)
    return db.session.execute(stmt).first() is not None


def _give_back_daily_place(phone: str, day) -> None:
    db.session.execute(
        update(SmsDailyCount)
        .where(SmsDailyCount.phone == phone, SmsDailyCount.day == day, SmsDailyCount.sent > 0)
        .values(sent=SmsDailyCount.sent - 1)
    )


def _finish(
    message: OutboxMessage, status: OutboxStatus, reason: str = "", error: str = ""
) -> None:
    message.status = status
    message.reason = reason
    if error:
        message.last_error = error
    message.sealed = None  # the ticket link is not kept once the message is done


@dataclass(frozen=True)
class _Claim:
    message_id: int
    outgoing: Sms | Email  # what goes to the backend
    attempts: int  # including this one
    claimed_at: datetime

    @property
    def daily_counted(self) -> bool:
        """Whether a place of the phone's daily cap was taken for it (SMS)."""
        return isinstance(self.outgoing, Sms)


def _mark_sending(message: OutboxMessage, now: datetime) -> None:
    message.status = OutboxStatus.SENDING
    message.claimed_at = now
    message.attempts += 1


def _skip_reason(message: OutboxMessage, invalid: str | None) -> str | None:
    """``invalid`` (an unusable recipient), else the first registered check's reason."""
    reason = invalid
    for check in _CHECKS:
        reason = reason or check(message)
    return reason


def _decide_email(message: OutboxMessage, now: datetime) -> _Claim | Outcome:
    """``_decide`` for an e-mail: no quiet hours, no daily cap."""
    config = current_app.config
    reason = _skip_reason(message, None if is_email_address(message.recipient) else "invalid_email")
    if reason:
        _finish(message, OutboxStatus.SKIPPED, reason)
        return Outcome(message.id, OutboxStatus.SKIPPED)
    params = dict(message.params or {})
    rendered = staff_mail.render_email(
        params.get("template", str(message.event)),
        params,
        sealing.unseal(config["SECRET_KEY"], message.sealed),
        locale=config["BABEL_DEFAULT_LOCALE"],
    )
    email = Email(
        key=message.dedupe_key,
        to=message.recipient,
        subject=rendered.subject,
        body=rendered.body,
        date=now,
    )
    _mark_sending(message, now)
    return _Claim(message.id, email, message.attempts, now)


def _decide(message: OutboxMessage, now: datetime) -> _Claim | Outcome:
    """For a locked, due message: skip, defer, or mark it ``sending`` (flushed by the
    caller's commit) and return what to send."""
    if message.channel == Channel.EMAIL:
        return _decide_email(message, now)
    config = current_app.config
    try:
        phone = normalize_phone(message.recipient)
    except IdentityError:
        phone = None
    reason = _skip_reason(message, "invalid_phone" if phone is None else None)
    if reason:
        _finish(message, OutboxStatus.SKIPPED, reason)
        return Outcome(message.id, OutboxStatus.SKIPPED)
    assert phone is not None
    until = None
    if message.event not in QUIET_HOURS_EXEMPT:
        until = quiet_until(now, config["SCIWEEK_SMS_QUIET_HOURS"])
    if until is not None:
        message.status = OutboxStatus.DEFERRED
        message.next_attempt_at = until
        message.dispatched_at = None  # the sweep hands it over when the time comes
        return Outcome(message.id, OutboxStatus.DEFERRED)
    if not _take_daily_place(phone, now, config["SCIWEEK_SMS_DAILY_CAP"]):
        _finish(message, OutboxStatus.SKIPPED, "daily_cap")
        return Outcome(message.id, OutboxStatus.SKIPPED)
    params = dict(message.params or {})
    secrets = sealing.unseal(config["SECRET_KEY"], message.sealed)
    for provider in _TEXT_PARAMS:
        secrets.update(provider(message, phone))
    rendered = messages.render(
        params.get("template", str(message.event)),
        params,
        secrets,
        signature=config["SCIWEEK_SMS_SIGNATURE"],
        locale=config["BABEL_DEFAULT_LOCALE"],
    )
    sms = Sms(
        key=message.dedupe_key,
        to=phone,
        text=rendered.text,
        template=rendered.template,
        params=rendered.params,
        segments=rendered.segments,
    )
    _mark_sending(message, now)
    message.segments = rendered.segments
    return _Claim(message.id, sms, message.attempts, now)


def _claim(message_ids: list[int], now: datetime) -> list[_Claim | Outcome]:
    """The claim's transaction: lock the due messages among ``message_ids`` (skipping
    those another worker holds), decide each, and commit. Synchronous commit: a claim
    must survive a database crash, or a sent message could be claimed again."""
    begin_write()
    found = {
        m.id: m
        for m in db.session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.id.in_(message_ids),
                OutboxMessage.status.in_(DUE_STATUSES),
                OutboxMessage.next_attempt_at <= now,
            )
            .order_by(OutboxMessage.id)
            .with_for_update(skip_locked=True)
        )
    }
    decided = [_decide(found[i], now) if i in found else Outcome(i, None) for i in message_ids]
    db.session.commit()
    return decided


def deliver(message_ids: list[int], now: datetime | None = None) -> list[Outcome]:
    """Claim, send and record these messages (see the module); one outcome per id.

    Each channel's messages go to its backend. The claim is the unit of doubt should the
    worker die: with an idempotent backend a channel's whole list is claimed in one
    transaction and the answers are recorded ``RECORD_EVERY`` at a time (a cut-off
    message is simply sent again under the same key, at most that many per worker
    process); otherwise one message at a time, so that at most one is in doubt.
    """
    given, now = now, now or utcnow()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    channels = _channels(message_ids)
    outcomes = [Outcome(i, None) for i in message_ids if i not in channels]  # no such message
    for channel, backend in _backends(app):
        ids = [i for i in message_ids if channels.get(i) == channel]
        if ids:
            outcomes += _deliver_with(backend, ids, given, now)
    order = {message_id: i for i, message_id in enumerate(message_ids)}
    return sorted(outcomes, key=lambda o: order[o.message_id])


def _backends(app) -> list[tuple[Channel, SmsBackend | MailBackend]]:
    return [(Channel.SMS, sms_backend(app)), (Channel.EMAIL, mail_backend(app))]


def _channels(message_ids: list[int]) -> dict[int, Channel]:
    """Each message's channel (one read by primary key)."""
    if not message_ids:
        return {}
    rows = db.session.execute(
        select(OutboxMessage.id, OutboxMessage.channel).where(OutboxMessage.id.in_(message_ids))
    ).all()
    return {message_id: Channel(channel) for message_id, channel in rows}


def _deliver_with(
    backend: SmsBackend | MailBackend,
    message_ids: list[int],
    given: datetime | None,
    now: datetime,
) -> list[Outcome]:
    group = max(len(message_ids), 1) if backend.idempotent else 1
    record_every = RECORD_EVERY if backend.idempotent else 1
    outcomes: list[Outcome] = []
    for start in range(0, len(message_ids), group):
        answered: list[tuple[_Claim, Receipt | GatewayError]] = []
        for claim in _claim(message_ids[start : start + group], now):
            if isinstance(claim, Outcome):
                outcomes.append(claim)
                continue
            try:
                answered.append((claim, backend.send(claim.outgoing)))  # type: ignore[arg-type]
            except GatewayError as exc:
                answered.append((claim, exc))
            if len(answered) >= record_every:
                outcomes += _record(answered, given or utcnow())
                answered = []
        outcomes += _record(answered, given or utcnow())
    return outcomes


def deliver_one(message_id: int, now: datetime | None = None) -> Outcome:
    """``deliver`` for one message."""
    return deliver([message_id], now)[0]


def _give_back_if_failed(claim: _Claim, receipt: Receipt | GatewayError) -> None:
    """A failed send does not count against the phone's daily cap."""
    if isinstance(receipt, GatewayError) and claim.daily_counted:
        _give_back_daily_place(claim.outgoing.to, to_local(claim.claimed_at).date())


def _record_values(claim: _Claim, receipt: Receipt | GatewayError, now: datetime):
    config = current_app.config
    if isinstance(receipt, Receipt):
        values = {
            "status": OutboxStatus.SENT,
            "sent_at": now,
            "provider_ref": receipt.ref,
            "segments": receipt.segments or getattr(claim.outgoing, "segments", None),
            "sealed": None,  # the ticket link is not kept once the message is done
        }
        return values, Outcome(claim.message_id, OutboxStatus.SENT)
    if receipt.retryable and claim.attempts < config["SCIWEEK_SMS_MAX_ATTEMPTS"]:
        delay = backoff(claim.attempts, config["SCIWEEK_SMS_RETRY_SECONDS"])
        retry_at = now + timedelta(seconds=delay)
        # The retry job is handed over now; the sweep waits until it is overdue.
        values = {
            "status": OutboxStatus.QUEUED,
            "last_error": receipt.answer,
            "next_attempt_at": retry_at,
            "dispatched_at": retry_at,
        }
        return values, Outcome(claim.message_id, OutboxStatus.QUEUED, retry_in=delay)
    values = {
        "status": OutboxStatus.FAILED,
        "reason": "gateway" if claim.daily_counted else "mail_server",
        "last_error": receipt.answer,
        "sealed": None,
    }
    return values, Outcome(claim.message_id, OutboxStatus.FAILED)


def _record(answered: list[tuple[_Claim, Receipt | GatewayError]], now: datetime) -> list[Outcome]:
    """The record's transaction: one UPDATE per message, each only if this worker's claim
    still holds (else the sweep gave up on it meanwhile: no outcome to report).

    PostgreSQL commits it asynchronously (no wait for the WAL flush): should the database
    crash and lose it, the messages are left ``sending`` as if the worker had died after
    sending, which the sweep settles (see the module). The claim's commit is the one that
    must be durable."""
    if not answered:
        return []
    begin_write()
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    decided = [
        (claim, receipt, *_record_values(claim, receipt, now)) for claim, receipt in answered
    ]
    # One executemany per shape of change (sent, retry, failed): few round trips.
    shapes: dict[tuple[str, ...], list[dict]] = {}
    for claim, _receipt, values, _outcome in decided:
        row = {f"new_{k}": v for k, v in values.items()}
        shapes.setdefault(tuple(sorted(values)), []).append(
            {**row, "b_id": claim.message_id, "b_claimed_at": claim.claimed_at}
        )
    updated = 0
    for columns, rows in shapes.items():
        statement = (
            update(cast(Table, OutboxMessage.__table__))
            .where(
                OutboxMessage.id == bindparam("b_id"),
                OutboxMessage.status == OutboxStatus.SENDING,
                OutboxMessage.claimed_at == bindparam("b_claimed_at"),
            )
            .values({c: bindparam(f"new_{c}") for c in columns})
        )
        updated += rowcount_result(statement, rows).rowcount
    if updated != len(decided):
        # Some claim was given up by the sweep meanwhile: find which, one by one.
        db.session.rollback()
        return [_record_one(*item) for item in decided]
    for claim, receipt, _values, _outcome in decided:
        _give_back_if_failed(claim, receipt)
    db.session.commit()
    return [outcome for _claim, _receipt, _values, outcome in decided]


def _record_one(claim: _Claim, receipt, values: dict, outcome: Outcome) -> Outcome:
    begin_write()
    result = rowcount_result(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == claim.message_id,
            OutboxMessage.status == OutboxStatus.SENDING,
            OutboxMessage.claimed_at == claim.claimed_at,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        return Outcome(claim.message_id, None)
    _give_back_if_failed(claim, receipt)
    db.session.commit()
    return outcome


def take_due(
    now: datetime | None = None, limit: int = 5000, redispatch_after: float = 300
) -> list[int]:
    """Mark due messages as handed to the broker and return their ids, oldest first.

    Due: ``queued`` or ``deferred`` with ``next_attempt_at`` passed, never handed over
    or handed over more than ``redispatch_after`` seconds ago (a job lost with a broker
    or a publish that failed). One UPDATE ... RETURNING, so two sweeps never both take
    a message (a repeat would be harmless anyway: the claim decides)."""
    now = now or utcnow()
    begin_write()
    stale = now - timedelta(seconds=redispatch_after)
    due = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status.in_(DUE_STATUSES),
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.dispatched_at.is_(None), OutboxMessage.dispatched_at < stale),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    ids = db.session.scalars(
        update(OutboxMessage)
        .where(
            OutboxMessage.id.in_(due.scalar_subquery()),
            or_(OutboxMessage.dispatched_at.is_(None), OutboxMessage.dispatched_at < stale),
        )
        .values(dispatched_at=now)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    return sorted(ids)


def recover_interrupted(now: datetime | None = None) -> int:
    """Messages left ``sending`` by a worker that died (older than the stale limit):
    sent again when their channel's backend is idempotent, else failed as
    ``interrupted``."""
    now = now or utcnow()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stale = now - timedelta(seconds=app.config["SCIWEEK_SMS_STALE_SECONDS"])
    begin_write()
    recovered = 0
    for channel, backend in _backends(app):
        if backend.idempotent:
            values: dict = {"status": OutboxStatus.QUEUED, "dispatched_at": None}
        else:
            values = {
                "status": OutboxStatus.FAILED,
                "reason": "interrupted",
                "last_error": "delivery interrupted; not repeated (the gateway may have it)",
                "sealed": None,
            }
        result = rowcount_result(
            update(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.SENDING,
                OutboxMessage.claimed_at < stale,
                OutboxMessage.channel == channel,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        recovered += result.rowcount or 0
    db.session.commit()
    return recovered
