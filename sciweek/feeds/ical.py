"""Pure iCalendar building: plain event data in, ``text/calendar`` bytes out.

Nothing here touches the database or the request; ``services.py`` turns activities
into :class:`FeedEvent` values and this module writes them (escaping, folding and the
VTIMEZONE come from the ``icalendar`` library).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event

from ..i18n import LOCAL_TZ

PRODID = "-//sciweek//sciweek calendar feeds//ZH"
REFRESH_INTERVAL = timedelta(hours=1)


@dataclass(frozen=True)
class FeedEvent:
    """One VEVENT: a session of an activity, everything already in words."""

    uid: str
    summary: str
    starts_at: datetime
    ends_at: datetime
    url: str
    description: str = ""
    location: str = ""
    geo: tuple[float, float] | None = None
    categories: tuple[str, ...] = field(default_factory=tuple)
    cancelled: bool = False
    sequence: int = 0
    created: datetime | None = None
    last_modified: datetime | None = None


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def event_component(event: FeedEvent) -> Event:
    """The VEVENT for ``event``; times written in Asia/Shanghai, stamps in UTC."""
    component = Event()
    component.add("uid", event.uid)
    # Without METHOD, DTSTAMP means "last revised in the calendar store" (RFC 5545
    # 3.8.7.2), so the feed stays byte-identical until something changes.
    component.add("dtstamp", _utc(event.last_modified or event.created or event.starts_at))
    component.add("dtstart", event.starts_at.astimezone(LOCAL_TZ))
    component.add("dtend", event.ends_at.astimezone(LOCAL_TZ))
    component.add("summary", event.summary)
    if event.description:
        component.add("description", event.description)
    if event.location:
        component.add("location", event.location)
    if event.geo is not None:
        component.add("geo", event.geo)
    component.add("url", event.url)
    if event.categories:
        component.add("categories", list(event.categories))
    component.add("status", "CANCELLED" if event.cancelled else "CONFIRMED")
    component.add("sequence", event.sequence)
    if event.created is not None:
        component.add("created", _utc(event.created))
    if event.last_modified is not None:
        component.add("last-modified", _utc(event.last_modified))
    return component


def build_calendar(name: str, events: Iterable[FeedEvent]) -> bytes:
    """A complete VCALENDAR named ``name`` holding ``events``, as CRLF-folded UTF-8."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", LOCAL_TZ.key)
    calendar.add("refresh-interval", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    for event in events:
        calendar.add_component(event_component(event))
    # One VTIMEZONE for every TZID used by the events (only Asia/Shanghai here).
    calendar.add_missing_timezones()
    return calendar.to_ical()
