"""The delivery log: what was sent to whom, per activity, for the back office and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, select

from ..extensions import db
from ..identity import mask_phone
from ..models import Channel, OutboxMessage, OutboxStatus
from .mail import mask_email


def status_counts(activity_id: int) -> dict[OutboxStatus, int]:
    """Messages of an activity by status (every status, zeros included)."""
    return counts_where(OutboxMessage.activity_id == activity_id)


def counts_where(criterion: ColumnElement[bool]) -> dict[OutboxStatus, int]:
    """Messages matching ``criterion`` (an activity, a broadcast, an invitation batch) by
    status, every status with zeros included."""
    rows = db.session.execute(
        select(OutboxMessage.status, func.count(OutboxMessage.id))
        .where(criterion)
        .group_by(OutboxMessage.status)
    ).all()
    found: dict[OutboxStatus, int] = {status: n for status, n in rows}
    return {status: int(found.get(status, 0)) for status in OutboxStatus}


def reason_counts(criterion: ColumnElement[bool]) -> dict[str, int]:
    """Skipped and failed messages matching ``criterion`` by reason (opted_out, ...)."""
    rows = db.session.execute(
        select(OutboxMessage.reason, func.count(OutboxMessage.id))
        .where(criterion, OutboxMessage.reason != "")
        .group_by(OutboxMessage.reason)
        .order_by(OutboxMessage.reason)
    ).all()
    return {reason: int(n) for reason, n in rows}


def messages_where(criterion: ColumnElement[bool]) -> Select:
    return select(OutboxMessage).where(criterion).order_by(OutboxMessage.id.desc())


def people_notified(activity_id: int) -> int:
    """How many different people of this activity got at least one message (已通知 N 人)."""
    return int(
        db.session.scalar(
            select(func.count(func.distinct(OutboxMessage.recipient))).where(
                OutboxMessage.activity_id == activity_id,
                OutboxMessage.status == OutboxStatus.SENT,
            )
        )
        or 0
    )


def messages_query(activity_id: int | None = None, status: str | None = None) -> Select:
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc())
    if activity_id is not None:
        stmt = stmt.where(OutboxMessage.activity_id == activity_id)
    if status:
        stmt = stmt.where(OutboxMessage.status == status)
    return stmt


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class LogRow:
    """One message as scripts see it (``flask outbox --format json``): phone or e-mail
    address masked."""

    id: int
    event: str
    channel: str
    to: str
    activity_id: int | None
    registration_id: int | None
    status: str
    created_at: str | None
    sent_at: str | None

    @classmethod
    def of(cls, message: OutboxMessage) -> LogRow:
        return cls(
            id=message.id,
            event=str(message.event),
            channel=str(message.channel),
            to=(
                mask_email(message.recipient)
                if message.channel == Channel.EMAIL
                else mask_phone(message.recipient)
            ),
            activity_id=message.activity_id,
            registration_id=message.registration_id,
            status=str(message.status),
            created_at=_iso(message.created_at),
            sent_at=_iso(message.sent_at),
        )


def log_rows(activity_id: int | None = None, status: str | None = None) -> list[LogRow]:
    return [LogRow.of(m) for m in db.session.scalars(messages_query(activity_id, status))]
