"""The notification jobs (``sciweek.jobs``): dispatch, deliver, the periodic sweep and the
day-before reminders."""

from __future__ import annotations

from datetime import datetime

from celery.schedules import crontab
from flask import Flask, current_app

from .. import jobs
from ..database import begin_write
from ..extensions import db
from .delivery import deliver as deliver_messages
from .delivery import recover_interrupted, take_due
from .outbox import DISPATCH_JOB
from .reminders import enqueue_reminders

DELIVER_JOB = "sciweek.notifications.deliver"
SWEEP_JOB = "sciweek.notifications.sweep"
REMINDERS_JOB = "sciweek.notifications.reminders"
BATCH = 50  # messages per delivery job: few broker round trips, short jobs


def _app() -> Flask:
    return current_app._get_current_object()  # type: ignore[attr-defined]


@jobs.job(DISPATCH_JOB)
def dispatch() -> int:
    """Hand every due message to delivery jobs of ``BATCH`` messages; returns how many."""
    app, total = _app(), 0
    while True:
        ids = take_due(redispatch_after=2 * app.config["SCIWEEK_SMS_STALE_SECONDS"])
        for start in range(0, len(ids), BATCH):
            jobs.submit(app, DELIVER_JOB, ids[start : start + BATCH])
        total += len(ids)
        if len(ids) < 5000:
            return total


@jobs.job(DELIVER_JOB)
def deliver(ids: list[int]) -> None:
    """Deliver these messages one by one; a gateway error schedules that message's retry
    after its backoff (the job engine's countdown)."""
    app = _app()
    for outcome in deliver_messages([int(i) for i in ids]):
        if outcome.retry_in is not None:
            jobs.submit(app, DELIVER_JOB, [outcome.message_id], countdown=outcome.retry_in)


@jobs.job(SWEEP_JOB, every=lambda app: app.config["SCIWEEK_JOBS_SWEEP_SECONDS"])
def sweep() -> int:
    """Periodic (beat): recover interrupted sends, release deferred messages whose quiet
    hours are over, re-dispatch messages whose job was lost. Returns how many it handed on."""
    recover_interrupted()
    return dispatch()


def _reminder_time(app: Flask) -> crontab:
    hour, minute = app.config["SCIWEEK_SMS_REMINDER_AT"]
    return crontab(hour=hour, minute=minute)  # Celery's timezone is Asia/Shanghai


@jobs.job(REMINDERS_JOB, every=_reminder_time)
def reminders(now: str | None = None) -> int:
    """Daily (beat, ``SCIWEEK_SMS_REMINDER_AT``): write tomorrow's reminders, commit, and
    so hand them to delivery. Returns how many were offered (a re-run writes none).
    ``now`` (ISO 8601, for tests and catching up by hand) stands for the current time."""
    begin_write()
    offered = enqueue_reminders(datetime.fromisoformat(now) if now else None)
    db.session.commit()
    return offered
