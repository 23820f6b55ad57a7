"""Pure iCalendar writing: plain event data in, ``text/calendar`` bytes out.

Nothing here touches the database or the request; ``services.py`` turns activities
into :class:`FeedEvent` values and this module writes them as text (RFC 5545: TEXT
escaping, lines folded at 75 octets, CRLF). A 10,000-event feed must be rebuilt in well
under a second, so the lines are written directly rather than through an object model.

The output is what the ``icalendar`` library (7.x) wrote for the same events before
(property order, folding, the VTIMEZONE), byte for byte, with one deliberate difference:
``icalendar`` turns a literal backslash-N in a text into a line break; here it stays a
backslash and an N (``tests/test_feeds.py`` compares the two writers). The tests parse
every feed with ``icalendar``, ``vobject`` and ``ical``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from ..i18n import LOCAL_TZ

PRODID = "-//sciweek//sciweek calendar feeds//ZH"
REFRESH_INTERVAL = timedelta(hours=1)
CRLF = b"\r\n"
CALENDAR_END = b"END:VCALENDAR\r\n"
# Lines longer than this many octets (without the CRLF) are folded (RFC 5545 3.1 allows
# 75; 74 with the leading space of a continuation line, as icalendar folds them).
_FOLD_AT = 74
_BACKSLASH, _CARET, _CONTINUATION_MASK, _CONTINUATION = 0x5C, 0x5E, 0xC0, 0x80

# The time zone every local time is written in, as icalendar's ``add_missing_timezones``
# wrote it for Asia/Shanghai (China kept summer time in 1986-1991 only). Written once,
# also into an empty feed: RFC 5545 wants at least one component in a calendar.
VTIMEZONE = (
    b"BEGIN:VTIMEZONE\r\n"
    b"TZID:Asia/Shanghai\r\n"
    b"COMMENT:This timezone only works from 1970-01-01 to 2038-01-01.\r\n"
    b"BEGIN:STANDARD\r\n"
    b"DTSTART:19700101T000000\r\n"
    b"TZNAME:CST\r\n"
    b"TZOFFSETFROM:+0800\r\n"
    b"TZOFFSETTO:+0800\r\n"
    b"END:STANDARD\r\n"
    b"BEGIN:DAYLIGHT\r\n"
    b"DTSTART:19860504T030000\r\n"
    b"RDATE:19870412T030000,19880417T030000,19890416T030000,19900415T030000,1991\r\n"
    b" 0414T030000\r\n"
    b"TZNAME:CDT\r\n"
    b"TZOFFSETFROM:+0800\r\n"
    b"TZOFFSETTO:+0900\r\n"
    b"END:DAYLIGHT\r\n"
    b"BEGIN:STANDARD\r\n"
    b"DTSTART:19860914T020000\r\n"
    b"RDATE:19870913T020000,19880911T020000,19890917T020000,19900916T020000,1991\r\n"
    b" 0915T020000\r\n"
    b"TZNAME:CST\r\n"
    b"TZOFFSETFROM:+0900\r\n"
    b"TZOFFSETTO:+0800\r\n"
    b"END:STANDARD\r\n"
    b"END:VTIMEZONE\r\n"
)
_TZID = LOCAL_TZ.key  # "Asia/Shanghai", the TZID above


class FeedEvent(NamedTuple):
    """One VEVENT: a session of an activity, everything already in words.

    A named tuple: a feed makes one per session, and a tuple is the cheapest to make.
    """

    uid: str
    summary: str
    starts_at: datetime
    ends_at: datetime
    url: str
    description: str = ""
    location: str = ""
    geo: tuple[float, float] | None = None
    categories: tuple[str, ...] = ()
    cancelled: bool = False
    sequence: int = 0
    created: datetime | None = None
    last_modified: datetime | None = None


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and line breaks escaped."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: bytes) -> bytes:
    """``line`` folded into pieces of at most 74 octets, never inside a UTF-8 character.

    As icalendar folds: an escaping backslash (or a ``^``) that would end a piece moves
    to the next one, so no client sees an escape split over two lines.
    """
    length = len(line)
    if length <= _FOLD_AT:
        return line
    pieces, start = [], 0
    while length - start > _FOLD_AT:
        cut = start + _FOLD_AT
        while line[cut] & _CONTINUATION_MASK == _CONTINUATION:
            cut -= 1
        if line[cut - 1] in (_BACKSLASH, _CARET):
            cut -= 1
        pieces.append(line[start:cut])
        start = cut
    pieces.append(line[start:])
    return b"\r\n ".join(pieces)


def _text_line(name: str, value: str) -> bytes:
    return fold(f"{name}:{escape_text(value)}".encode())


def _stamp(value: datetime) -> str:
    # %-formatting: a third of strftime's time, which counts in a 10,000-event feed.
    return "%04d%02d%02dT%02d%02d%02d" % (  # noqa: UP031
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
    )


def _utc_stamp(value: datetime) -> str:
    return _stamp(value.astimezone(UTC)) + "Z"


def _local_time(value: datetime) -> str:
    return _stamp(value.astimezone(LOCAL_TZ))


class EventSeries(NamedTuple):
    """What the events of one activity (one per session) have in common."""

    url: str
    description: str = ""
    location: str = ""
    geo: tuple[float, float] | None = None
    categories: tuple[str, ...] = ()
    cancelled: bool = False
    sequence: int = 0
    last_modified: datetime | None = None


class Occurrence(NamedTuple):
    """What is each event's own: its session."""

    uid: str
    summary: str
    starts_at: datetime
    ends_at: datetime
    created: datetime | None = None


def _series_lines(series: EventSeries) -> tuple[bytes, bytes]:
    """The series' lines before CREATED (from SEQUENCE) and after it."""
    before = [f"SEQUENCE:{series.sequence}".encode()]
    if series.categories:
        categories = ",".join(escape_text(c) for c in series.categories)
        before.append(fold(f"CATEGORIES:{categories}".encode()))
    after = []
    if series.description:
        after.append(_text_line("DESCRIPTION", series.description))
    if series.geo is not None:
        after.append(f"GEO:{float(series.geo[0])};{float(series.geo[1])}".encode())
    if series.last_modified is not None:
        after.append(f"LAST-MODIFIED:{_utc_stamp(series.last_modified)}".encode())
    if series.location:
        after.append(_text_line("LOCATION", series.location))
    after.append(b"STATUS:CANCELLED" if series.cancelled else b"STATUS:CONFIRMED")
    after.append(fold(f"URL:{series.url}".encode()))
    after.append(b"END:VEVENT")
    return CRLF.join(before), CRLF.join(after)


def write_series(series: EventSeries, occurrences: Iterable[Occurrence]) -> bytes:
    """The VEVENTs of ``series``, one per occurrence, each ending with CRLF.

    Times in Asia/Shanghai, stamps in UTC; properties in icalendar's canonical order:
    SUMMARY, DTSTART, DTEND, DTSTAMP, UID, SEQUENCE, then the others alphabetically. The
    lines the occurrences share are written once.
    """
    before, after = _series_lines(series)
    modified = series.last_modified
    modified_stamp = _utc_stamp(modified) if modified is not None else ""
    parts = []
    for uid, summary, starts_at, ends_at, created in occurrences:
        # Without METHOD, DTSTAMP means "last revised in the calendar store" (RFC 5545
        # 3.8.7.2), so the feed stays byte-identical until something changes.
        stamp = modified_stamp or _utc_stamp(created or starts_at)
        parts.append(b"BEGIN:VEVENT")
        parts.append(_text_line("SUMMARY", summary))
        parts.append(
            f"DTSTART;TZID={_TZID}:{_local_time(starts_at)}\r\n"
            f"DTEND;TZID={_TZID}:{_local_time(ends_at)}\r\n"
            f"DTSTAMP:{stamp}".encode()
        )
        parts.append(_text_line("UID", uid))
        parts.append(before)
        if created is not None:
            parts.append(f"CREATED:{_utc_stamp(created)}".encode())
        parts.append(after)
    return CRLF.join(parts) + CRLF if parts else b""


def write_event(event: FeedEvent) -> bytes:
    """One VEVENT on its own (with its final CRLF)."""
    series = EventSeries(
        event.url,
        event.description,
        event.location,
        event.geo,
        event.categories,
        event.cancelled,
        event.sequence,
        event.last_modified,
    )
    occurrence = Occurrence(event.uid, event.summary, event.starts_at, event.ends_at, event.created)
    return write_series(series, [occurrence])


def _duration(value: timedelta) -> str:
    """A whole number of hours or minutes as an RFC 5545 DURATION (PT1H, PT30M)."""
    minutes = int(value.total_seconds()) // 60
    return f"PT{minutes // 60}H" if minutes % 60 == 0 else f"PT{minutes}M"


def calendar_head(name: str) -> bytes:
    """The VCALENDAR's opening lines, with its name, up to and including the VTIMEZONE."""
    lines = [
        b"BEGIN:VCALENDAR",
        b"VERSION:2.0",
        f"PRODID:{PRODID}".encode(),
        b"CALSCALE:GREGORIAN",
        _text_line("X-WR-CALNAME", name),
        f"REFRESH-INTERVAL;VALUE=DURATION:{_duration(REFRESH_INTERVAL)}".encode(),
        f"X-PUBLISHED-TTL:{_duration(REFRESH_INTERVAL)}".encode(),
        f"X-WR-TIMEZONE:{_TZID}".encode(),
    ]
    return CRLF.join(lines) + CRLF + VTIMEZONE


def build_calendar(name: str, events: Iterable[FeedEvent]) -> bytes:
    """A complete VCALENDAR named ``name`` holding ``events``, as CRLF-folded UTF-8."""
    parts = [calendar_head(name)]
    parts.extend(write_event(event) for event in events)
    parts.append(CALENDAR_END)
    return b"".join(parts)


def build_calendar_of_series(
    name: str, series: Iterable[tuple[EventSeries, Iterable[Occurrence]]]
) -> bytes:
    """A complete VCALENDAR named ``name``: each series' occurrences, in order."""
    parts = [calendar_head(name)]
    parts.extend(write_series(one, occurrences) for one, occurrences in series)
    parts.append(CALENDAR_END)
    return b"".join(parts)
