"""Writing messages into the outbox, in the transaction of the change they report.

The interface for every sender (today's events and the later ones: reminders,
broadcasts, invitations, verification codes):

* ``dedupe_key(event, recipient, scope=..., version=...)`` names a message; the key is
  unique in the table, so writing the same message twice (a retried request, two
  workers, a repeated command) writes it once.
* ``enqueue(...)`` writes one message; ``enqueue_for_registrants(...)`` writes one per
  registrant of an activity in a single INSERT ... SELECT (10,000 rows well under a
  second). Both only flush: the caller's transaction commits them with the change.
* ``supersede(...)`` skips messages of an activity still waiting that a newer one
  replaces (a second change before the first was sent; a cancellation);
  ``supersede_for_user`` those of a staff account (a newer set-password link).
* ``muted()`` turns writing off for a block (demo data).

Once the transaction commits, the job engine is asked to deliver (``jobs.submit``,
after commit, one call per transaction): nothing is sent inside the request.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from flask import current_app
from sqlalchemy import JSON, ColumnElement, String, cast, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .. import jobs
from ..database import rowcount_result
from ..extensions import db
from ..models import (
    DUE_STATUSES,
    Channel,
    NotificationEvent,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    utcnow,
)
from ..transactions import after_commit_once
from . import sealing

DISPATCH_JOB = "sciweek.notifications.dispatch"
_muted: ContextVar[bool] = ContextVar("sciweek_outbox_muted", default=False)


def dedupe_key(
    event: NotificationEvent | str, recipient: str, *, scope: str = "", version: object = ""
) -> str:
    """``event:scope:version:recipient``: one message per event, recipient and version.

    ``recipient`` says who (``r<registration id>``, ``p<phone>``, ``c<cadre id>``,
    ``u<staff account id>``);
    ``scope`` what about (``a<activity id>``, ``b<broadcast id>``, ``s<session id>``);
    ``version`` which occurrence (the activity's SEQUENCE for a change, a code's id).
    """
    return f"{event}:{scope}:{version}:{recipient}"


@contextmanager
def muted() -> Iterator[None]:
    """Write no messages inside this block (demo data: nobody to tell)."""
    token = _muted.set(True)
    try:
        yield
    finally:
        _muted.reset(token)


def is_muted() -> bool:
    return _muted.get()


def _insert(dialect: str):
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def enqueue(
    event: NotificationEvent,
    *,
    key: str,
    recipient: str,
    template: str | None = None,
    params: dict | None = None,
    secret_params: dict[str, str] | None = None,
    activity_id: int | None = None,
    registration_id: int | None = None,
    channel: Channel = Channel.SMS,
    not_before: datetime | None = None,
    invitation_batch_id: int | None = None,
    user_id: int | None = None,
) -> bool:
    """Write one message (nothing when a message with ``key`` exists). Flushes only.
    Returns whether it was written (False: the key existed, or writing is muted).

    ``secret_params`` (e.g. ``{"ticket_url": ...}``) are stored sealed and cleared once
    the message is done. ``template`` defaults to the event's name (``messages``; for
    ``Channel.EMAIL``, ``staff_mail``, which also passes the staff account's ``user_id``).
    """
    if is_muted():
        return False
    values = {
        "dedupe_key": key,
        "event": event,
        "channel": channel,
        "recipient": recipient,
        "activity_id": activity_id,
        "registration_id": registration_id,
        "params": {**(params or {}), "template": template or str(event)},
        "sealed": (
            sealing.seal(current_app.config["SECRET_KEY"], secret_params) if secret_params else None
        ),
        "status": OutboxStatus.QUEUED,
        "next_attempt_at": not_before or utcnow(),
        "created_at": utcnow(),
        "invitation_batch_id": invitation_batch_id,
        "user_id": user_id,
    }
    dialect = db.session.get_bind().dialect.name
    # RETURNING says whether the row was written (PostgreSQL's rowcount through the
    # session is not reliable here).
    written = db.session.execute(
        _insert(dialect)(OutboxMessage)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(OutboxMessage.id)
    ).first()
    _dispatch_after_commit(db.session())
    return written is not None


# ``identity.is_mobile`` in SQL, enough to tell a mobile number from what stands in for one
# (NULL for a walk-in without a phone, a purged registration's ``x…``, a roster cadre's
# key ``c…``): stored phones are normalised, and every mobile number starts with 1.
HAS_MOBILE = Registration.phone.like("1%")


def enqueue_for_registrants(
    event: NotificationEvent,
    activity_id: int,
    *,
    scope: str,
    version: object,
    params: dict,
    template: str | None = None,
    statuses: Iterable[RegistrationStatus] = (
        RegistrationStatus.CONFIRMED,
        RegistrationStatus.WAITLISTED,
    ),
    broadcast_id: int | None = None,
) -> int:
    """One message to each registrant of ``activity_id`` in ``statuses``, in one
    statement; the key's recipient is ``r<registration id>``. Returns how many it
    wrote (existing keys are left as they are). Flushes only."""
    if is_muted():
        return 0
    now = utcnow()
    key_prefix = dedupe_key(event, "r", scope=scope, version=version)
    source = select(
        literal(key_prefix, String) + cast(Registration.id, String),
        literal(str(event), String),
        literal(str(Channel.SMS), String),
        Registration.phone,
        Registration.activity_id,
        Registration.id,
        # Each message keeps its registration's short code (for template parameters).
        literal({**params, "template": template or str(event)}, JSON),
        literal(str(OutboxStatus.QUEUED), String),
        literal("", String),
        literal("", String),
        literal(0),
        literal(now, OutboxMessage.next_attempt_at.type),
        literal(now, OutboxMessage.created_at.type),
        literal("", String),
        literal(broadcast_id, OutboxMessage.broadcast_id.type),
    ).where(
        Registration.activity_id == activity_id,
        Registration.status.in_(list(statuses)),
        HAS_MOBILE,
    )
    columns = [
        "dedupe_key",
        "event",
        "channel",
        "recipient",
        "activity_id",
        "registration_id",
        "params",
        "status",
        "reason",
        "last_error",
        "attempts",
        "next_attempt_at",
        "created_at",
        "provider_ref",
        "broadcast_id",
    ]
    dialect = db.session.get_bind().dialect.name
    # RETURNING counts what was written: PostgreSQL's rowcount of this INSERT ... SELECT
    # through the session came back 0.
    written = db.session.scalars(
        _insert(dialect)(OutboxMessage)
        .from_select(columns, source)
        .on_conflict_do_nothing()
        .returning(OutboxMessage.id)
    ).all()
    _dispatch_after_commit(db.session())
    return len(written)


def supersede(activity_id: int, events: Iterable[NotificationEvent], *, reason: str) -> int:
    """Skip the activity's messages of ``events`` that are still waiting (not yet claimed
    by a worker): a newer message replaces them. Returns how many."""
    return _supersede_where(OutboxMessage.activity_id == activity_id, events, reason)


def supersede_for_user(
    user_id: int, events: Iterable[NotificationEvent], *, reason: str, newer_key: str
) -> int:
    """``supersede`` for the messages of a staff account (its e-mails), before writing
    the one of ``newer_key`` (kept if it exists: writing it again changes nothing).
    Returns how many."""
    return _supersede_where(
        (OutboxMessage.user_id == user_id) & (OutboxMessage.dedupe_key != newer_key),
        events,
        reason,
    )


def _supersede_where(
    criterion: ColumnElement[bool], events: Iterable[NotificationEvent], reason: str
) -> int:
    result = rowcount_result(
        update(OutboxMessage)
        .where(
            criterion,
            OutboxMessage.event.in_(list(events)),
            OutboxMessage.status.in_(DUE_STATUSES),
        )
        .values(status=OutboxStatus.SKIPPED, reason=reason, sealed=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def _dispatch_after_commit(session: Session) -> None:
    """Ask the job engine to deliver once this transaction commits (once per transaction;
    nothing when it rolls back)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    after_commit_once(DISPATCH_JOB, lambda: jobs.submit(app, DISPATCH_JOB), session)
