"""An organizer's message to every registrant of an activity (群发).

Text → preview (the exact SMS with its 【签名】, the segment count, how many people) →
confirmation → ``send_broadcast``: the ``broadcasts`` row and one outbox message per
confirmed or waitlisted registrant (key ``broadcast:b<id>:0:r<reg>``), in the request's
one transaction. A broadcast is promotional: its text ends with the 退订 link (``optout``).

Rate limit: at most ``SCIWEEK_BROADCASTS_PER_HOUR`` broadcasts per activity in any hour,
counted under the activity row's lock (two organizers confirming at once cannot both
take the last one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from ..database import begin_write
from ..extensions import db
from ..models import (
    BROADCAST_TEXT_MAX,
    Activity,
    Broadcast,
    NotificationEvent,
    Registration,
    RegistrationStatus,
    User,
    utcnow,
)
from . import messages, optout, outbox

RECIPIENT_STATUSES = (RegistrationStatus.CONFIRMED, RegistrationStatus.WAITLISTED)
RATE_WINDOW = timedelta(hours=1)


class BroadcastRefused(Exception):
    """Why a broadcast cannot be sent; ``field`` is ``"text"`` when the text is at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def clean_text(raw: str | None) -> str:
    """The organizer's text, trimmed; refused when empty or too long."""
    text = (raw or "").strip()
    if not text:
        raise BroadcastRefused(_("请填写要发送的内容。"), "text")
    if len(text) > BROADCAST_TEXT_MAX:
        raise BroadcastRefused(
            _(
                "内容最多 %(max)s 个字，现在 %(n)s 个字，请删减。",
                max=BROADCAST_TEXT_MAX,
                n=len(text),
            ),
            "text",
        )
    return text


@dataclass(frozen=True)
class BroadcastPreview:
    text: str  # the SMS as a phone shows it (the 退订 link differs per person)
    segments: int
    recipients: int  # registrants it is written for
    opted_out: int  # of them, phones that opted out: skipped at delivery


def _recipient_phones(activity_id: int) -> list[str]:
    """The phones a broadcast goes to: as ``outbox.enqueue_for_registrants`` picks them
    (walk-ins without a phone and roster cadres without a mobile get nothing)."""
    return list(
        db.session.scalars(
            select(Registration.phone).where(
                Registration.activity_id == activity_id,
                Registration.status.in_(RECIPIENT_STATUSES),
                outbox.HAS_MOBILE,
            )
        )
    )


def _params(activity: Activity, text: str) -> dict[str, str]:
    return {"title": activity.title, "text": text}


def preview_broadcast(
    activity: Activity, raw_text: str | None, now: datetime | None = None
) -> BroadcastPreview:
    """What ``send_broadcast`` would send; refuses what it would refuse (the hourly limit
    is checked again, under the lock, when sending)."""
    if activity.is_cancelled:
        raise BroadcastRefused(_("活动已取消，不能群发通知。"))
    text = clean_text(raw_text)
    _check_rate(activity.id, now or utcnow())
    config = current_app.config
    rendered = messages.render(
        "broadcast",
        _params(activity, text),
        {"optout_url": optout.sample_link()},
        signature=config["SCIWEEK_SMS_SIGNATURE"],
        locale=config["BABEL_DEFAULT_LOCALE"],
    )
    phones = _recipient_phones(activity.id)
    return BroadcastPreview(
        text=rendered.text,
        segments=rendered.segments,
        recipients=len(phones),
        opted_out=len(optout.opted_out_phones(phones)),
    )


def broadcasts_in_last_hour(activity_id: int, now: datetime) -> int:
    return int(
        db.session.scalar(
            select(func.count(Broadcast.id)).where(
                Broadcast.activity_id == activity_id, Broadcast.created_at > now - RATE_WINDOW
            )
        )
        or 0
    )


def _check_rate(activity_id: int, now: datetime) -> None:
    limit = current_app.config["SCIWEEK_BROADCASTS_PER_HOUR"]
    if broadcasts_in_last_hour(activity_id, now) >= limit:
        raise BroadcastRefused(_("每个活动每小时最多群发 %(n)s 次，请稍后再发。", n=limit))


def send_broadcast(
    activity: Activity, raw_text: str | None, user: User, now: datetime | None = None
) -> Broadcast:
    """Write the broadcast and its messages (flushes only; the caller commits)."""
    now = now or utcnow()
    text = clean_text(raw_text)
    begin_write()
    # The activity's row lock serialises broadcasts of one activity (SQLite: the write lock).
    db.session.execute(
        select(Activity.id).where(Activity.id == activity.id).with_for_update()
    ).one()
    db.session.refresh(activity)
    if activity.is_cancelled:
        raise BroadcastRefused(_("活动已取消，不能群发通知。"))
    _check_rate(activity.id, now)
    broadcast = Broadcast(activity_id=activity.id, text=text, created_by=user, created_at=now)
    db.session.add(broadcast)
    db.session.flush()
    broadcast.recipients = outbox.enqueue_for_registrants(
        NotificationEvent.BROADCAST,
        activity.id,
        scope=f"b{broadcast.id}",
        version=0,
        params=_params(activity, text),
        template="broadcast",
        statuses=RECIPIENT_STATUSES,
        broadcast_id=broadcast.id,
    )
    db.session.flush()
    return broadcast


def broadcasts_of(activity_id: int) -> list[Broadcast]:
    return list(
        db.session.scalars(
            select(Broadcast)
            .where(Broadcast.activity_id == activity_id)
            .order_by(Broadcast.created_at.desc(), Broadcast.id.desc())
        )
    )
