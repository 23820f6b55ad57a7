"""Signals the services send when they change what other parts keep copies of.

Receivers run at once, inside the sender's transaction; one that must act only on
committed data (the scan caches of ``checkin/fast.py``) queues its work with
``transactions.after_commit``, so it runs once the change has committed, and not at all
when it rolls back. Senders need not know who listens (no import of ``checkin``).
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Who may check in where may have changed: an API token, a user, an activity or its
#: sessions, an activity's checkers, a department.
door_access_changed = _signals.signal("door-access-changed")

#: A check-in changed other than by a scan (an undo): live counts must be counted afresh.
checkins_changed = _signals.signal("checkins-changed")

# --- what people must be told (notifications/events.py writes the outbox) ------------
# Sent inside the transaction of the change; receivers only flush.

#: A registration was decided (confirmed or waitlisted). Sender: the activity id;
#: keywords: registration_id, phone, status, short_code, secret (the ticket secret, known
#: only now), walk_in.
registration_made = _signals.signal("registration-made")

#: A waitlisted registration got a place. Sender: the Registration.
registration_promoted = _signals.signal("registration-promoted")

#: Staff cancelled a registration (not the registrant). Sender: the Registration.
registration_cancelled_by_staff = _signals.signal("registration-cancelled-by-staff")

#: An activity's time or place changed (its SEQUENCE rose). Sender: the Activity.
activity_rescheduled = _signals.signal("activity-rescheduled")

#: An activity was cancelled (with its reason). Sender: the Activity.
activity_cancelled = _signals.signal("activity-cancelled")
