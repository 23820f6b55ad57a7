"""Notifications: a transactional outbox of SMS messages (and e-mail to staff accounts),
delivered by the job engine.

* ``outbox``    — the interface for senders: write messages in the change's transaction
* ``events``    — which domain events write which messages (signal receivers)
* ``messages``  — the texts (gettext, Chinese first), fitted to one SMS segment
* ``delivery``  — claim, check (quiet hours, daily cap, invalid phone), send, record
* ``backends``  — console, generic HTTP JSON gateway, Tencent Cloud SMS
* ``tasks``     — the jobs: dispatch, deliver, the periodic sweep, reminders (``sciweek.jobs``)
* ``reminders`` — the day-before reminders; ``optout`` — 退订 of reminders, broadcasts, invitations
* ``broadcasts`` — an organizer's message to all registrants
* ``invitations`` — a coordinator invites the town's untrained cadres to a training
* ``staff_mail`` — e-mail to staff accounts (set-password, reset), its texts; ``mail`` — its
  backends (console, SMTP)
* ``services``, ``routes``, ``cli`` — the delivery log

See docs/notifications.md.
"""

from __future__ import annotations

from flask import Flask

from . import cli, events, optout, tasks


def init_app(app: Flask) -> None:
    events.connect()
    cli.init_app(app)


__all__ = ["init_app", "optout", "tasks"]
