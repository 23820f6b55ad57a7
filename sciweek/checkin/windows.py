"""A session's check-in window: when a scan or a self check-in counts.

The window runs from ``SCIWEEK_CHECKIN_OPENS_BEFORE_MINUTES`` (default 60) before the
session's start to ``SCIWEEK_CHECKIN_CLOSES_AFTER_MINUTES`` (default 30) after its end, both
ends included. Outside it a scan answers ``not_now`` and nothing but the scan log is
written — unless an organizer checks the person in anyway, with a reason
(``permissions.can_override_checkin_window``; the reason is kept on the check-in and in the
scan log).

The server decides it in Python from the session's times (on the PostgreSQL fast path from
the cached ones, before the statement), at the time of the scan: an offline device's
``scanned_at``, not the time it was synced. The offline scanner's copy is ``windowState`` in
``static/js/scanner-core.js``; the ``windows`` cases of ``tests/scan_cases.json`` hold the
edges both must answer alike.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from flask import current_app
from flask_babel import gettext as _

from ..i18n import format_day_time, format_span

DEFAULT_OPENS_BEFORE_MINUTES = 60
DEFAULT_CLOSES_AFTER_MINUTES = 30


class WindowState(enum.StrEnum):
    BEFORE = "before"  # the window has not opened yet
    OPEN = "open"
    AFTER = "after"  # the window has closed


class Timed(Protocol):
    """A session as the window needs it: an ``ActivitySession`` or the fast path's cached
    ``DoorSession``."""

    @property
    def id(self) -> int: ...

    @property
    def starts_at(self) -> datetime: ...

    @property
    def ends_at(self) -> datetime: ...


S = TypeVar("S", bound=Timed)


@dataclass(frozen=True)
class CheckInWindow:
    """How long before a session's start check-in opens and how long after its end it closes."""

    opens_before: timedelta = timedelta(minutes=DEFAULT_OPENS_BEFORE_MINUTES)
    closes_after: timedelta = timedelta(minutes=DEFAULT_CLOSES_AFTER_MINUTES)

    def opens_at(self, session: Timed) -> datetime:
        return session.starts_at - self.opens_before

    def closes_at(self, session: Timed) -> datetime:
        return session.ends_at + self.closes_after

    def state(self, session: Timed, at: datetime) -> WindowState:
        """Where ``at`` falls against the session's window (both ends are inside)."""
        if at < self.opens_at(session):
            return WindowState.BEFORE
        if at > self.closes_at(session):
            return WindowState.AFTER
        return WindowState.OPEN

    def sessions_open(self, sessions: Iterable[S], at: datetime) -> list[S]:
        """The sessions whose window holds ``at``. When several do (one in its grace after
        the end, the next already open), those that have not ended."""
        found = [s for s in sessions if self.state(s, at) == WindowState.OPEN]
        if len(found) > 1:
            found = [s for s in found if at <= s.ends_at] or found
        return found

    def settings(self) -> dict[str, int]:
        """The window as the offline roster sends it (``docs/checkin_api.md``)."""
        return {
            "opens_before_minutes": int(self.opens_before.total_seconds() // 60),
            "closes_after_minutes": int(self.closes_after.total_seconds() // 60),
        }


def checkin_window() -> CheckInWindow:
    """The window this app's configuration sets (read on every scan: tests and a running
    app may change the settings; the window object is made once per pair of values)."""
    config = current_app.config
    return _window(
        config.get("SCIWEEK_CHECKIN_OPENS_BEFORE_MINUTES", DEFAULT_OPENS_BEFORE_MINUTES),
        config.get("SCIWEEK_CHECKIN_CLOSES_AFTER_MINUTES", DEFAULT_CLOSES_AFTER_MINUTES),
    )


@functools.lru_cache(maxsize=32)
def _window(opens_before_minutes: float, closes_after_minutes: float) -> CheckInWindow:
    return CheckInWindow(
        opens_before=timedelta(minutes=opens_before_minutes),
        closes_after=timedelta(minutes=closes_after_minutes),
    )


@dataclass(frozen=True)
class NotNow:
    """A scan at ``at`` outside the window of the session it was for: what the answer tells."""

    session_id: int
    starts_at: datetime
    ends_at: datetime
    opens_at: datetime
    closes_at: datetime
    state: WindowState
    at: datetime

    def message(self) -> str:
        """本场次 12月6日 09:30 开始 / 本场次已于 12月6日 11:00 结束."""
        if self.state == WindowState.BEFORE:
            return _(
                "本场次 %(time)s 开始", time=format_day_time(self.starts_at, reference=self.at)
            )
        return _("本场次已于 %(time)s 结束", time=format_day_time(self.ends_at, reference=self.at))

    def as_json(self) -> dict[str, Any]:
        return {
            "session": {
                "id": self.session_id,
                "starts_at": self.starts_at.isoformat(),
                "ends_at": self.ends_at.isoformat(),
                "label": format_span(self.starts_at, self.ends_at),
            },
            "window": {
                "state": str(self.state),
                "opens_at": self.opens_at.isoformat(),
                "closes_at": self.closes_at.isoformat(),
            },
        }


def _outside(session: Timed, at: datetime, window: CheckInWindow, state: WindowState) -> NotNow:
    return NotNow(
        session_id=session.id,
        starts_at=session.starts_at,
        ends_at=session.ends_at,
        opens_at=window.opens_at(session),
        closes_at=window.closes_at(session),
        state=state,
        at=at,
    )


def not_now(session: Timed, at: datetime, window: CheckInWindow | None = None) -> NotNow | None:
    """Why a scan of ``session`` at ``at`` does not count, or None when its window is open."""
    window = window or checkin_window()
    state = window.state(session, at)
    return None if state == WindowState.OPEN else _outside(session, at, window, state)


def not_now_messages(session: Timed, now: datetime) -> dict[str, str]:
    """Both ``not_now`` messages of a session (``before`` and ``after`` its window), for the
    scanner page, which answers offline scans itself."""
    window = checkin_window()
    return {
        str(state): _outside(session, now, window, state).message()
        for state in (WindowState.BEFORE, WindowState.AFTER)
    }
