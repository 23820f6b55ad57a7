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
