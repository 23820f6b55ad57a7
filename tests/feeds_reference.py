"""The calendar writer as it was before it wrote text directly: through the ``icalendar``
object model. Kept only to compare the two (``test_feeds.py``); the app never uses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from icalendar import Calendar, Event

from sciweek.feeds.ical import PRODID, REFRESH_INTERVAL, FeedEvent
from sciweek.i18n import LOCAL_TZ


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def event_component(event: FeedEvent) -> Event:
    component = Event()
    component.add("uid", event.uid)
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


def build_calendar_with_icalendar(name: str, events: Iterable[FeedEvent]) -> bytes:
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
    calendar.add_missing_timezones()
    return calendar.to_ical()
