"""``flask outbox``: the delivery log as a contract for scripts; ``flask outbox-deliver``;
``flask outbox-reminders`` (tomorrow's reminders, for sites without Celery beat)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import click
from flask import Flask

from ..database import begin_write
from ..i18n import LOCAL_TZ
from ..models import OUTBOX_STATUS_VALUES
from ..transactions import commits
from .delivery import deliver, recover_interrupted, take_due
from .reminders import enqueue_reminders
from .services import log_rows


def init_app(app: Flask) -> None:
    app.cli.add_command(outbox_command)
    app.cli.add_command(outbox_deliver_command)
    app.cli.add_command(outbox_reminders_command)


@click.command("outbox")
@click.option("--activity", "activity_id", type=click.IntRange(1, 2**31 - 1), default=None)
@click.option("--status", type=click.Choice(OUTBOX_STATUS_VALUES), default=None)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def outbox_command(activity_id, status, fmt):
    """List outbox messages, newest first (phones masked).

    JSON: a list of {"id", "event", "channel", "to", "activity_id", "registration_id",
    "status", "created_at", "sent_at"}.
    """
    rows = log_rows(activity_id, status)
    if fmt == "json":
        click.echo(json.dumps([dataclasses.asdict(r) for r in rows], ensure_ascii=False))
        return
    for r in rows:
        click.echo(
            f"{r.id}\t{r.event}\t{r.channel}\t{r.to}\t{r.activity_id or ''}\t"
            f"{r.registration_id or ''}\t{r.status}\t{r.created_at}\t{r.sent_at or ''}"
        )


@click.command("outbox-deliver")
@commits
def outbox_deliver_command():
    """Deliver due messages now, in this process (what the periodic sweep does)."""
    recover_interrupted()
    outcomes = deliver(take_due(redispatch_after=0))
    counts = Counter(str(o.status) for o in outcomes if o.status is not None)
    click.echo(json.dumps(dict(sorted(counts.items()))))


@click.command("outbox-reminders")
@click.option(
    "--now",
    type=click.DateTime(["%Y-%m-%dT%H:%M"]),
    default=None,
    help="Asia/Shanghai time to act as (catching up by hand): 2026-12-09T18:00",
)
@commits
def outbox_reminders_command(now):
    """Write the reminders of the sessions starting tomorrow (what beat runs daily at
    SCIWEEK_SMS_REMINDER_AT; a repeat writes nothing new). Prints how many were written."""
    begin_write()
    written = enqueue_reminders(now.replace(tzinfo=LOCAL_TZ) if now else None)
    click.echo(json.dumps({"reminders": written}))
