"""The reminder the day before: one SMS per confirmed registration of each session that
starts on the next local day (Asia/Shanghai), written by a daily job.

The job (``tasks.reminders``, Celery beat at ``SCIWEEK_SMS_REMINDER_AT``, default 18:00)
may run twice, late, or again after a crash: the key ``reminder:s<session>:0:r<reg>``
makes each reminder exist once. Cancelled activities, cancelled sessions and
registrations that are not confirmed are left out; a phone that opted out is skipped at
delivery (``optout``), and quiet hours defer a reminder like any other message.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import select

from ..extensions import db
from ..i18n import LOCAL_TZ, to_local
from ..models import (
    Activity,
    ActivitySession,
    NotificationEvent,
    RegistrationStatus,
    utcnow,
)
from . import messages, outbox


def sessions_starting_tomorrow(now: datetime) -> list[ActivitySession]:
    """Sessions (not cancelled, of published activities) starting on the local day after
    ``now``'s, by start."""
    tomorrow = to_local(now).date() + timedelta(days=1)
    start = datetime.combine(tomorrow, time(0), tzinfo=LOCAL_TZ)
    return list(
        db.session.scalars(
            select(ActivitySession)
            .join(Activity, Activity.id == ActivitySession.activity_id)
            .where(
                ActivitySession.starts_at >= start,
                ActivitySession.starts_at < start + timedelta(days=1),
                ~ActivitySession.is_cancelled,
                Activity.is_published,
            )
            .order_by(ActivitySession.starts_at, ActivitySession.id)
        )
    )


def enqueue_reminders(now: datetime | None = None) -> int:
    """Write tomorrow's reminders (those not written yet); returns how many were offered.
    Flushes only: the job commits."""
    total = 0
    for session in sessions_starting_tomorrow(now or utcnow()):
        params = {
            **messages.activity_params(session.activity),
            "starts_at": session.starts_at.isoformat(),
        }
        total += outbox.enqueue_for_registrants(
            NotificationEvent.REMINDER,
            session.activity_id,
            scope=f"s{session.id}",
            version=0,
            params=params,
            template="reminder",
            statuses=(RegistrationStatus.CONFIRMED,),
        )
    return total
