"""Calendar feeds: which activities a feed holds, its version for caching, and tokens.

A feed is named by its request (filters, an activity, a user's token). Its version
(ETag, Last-Modified) comes from the change counters of its scopes
(``sciweek/feed_changes.py``), read with what names the feed (its filters' names, its
activity's title): one indexed read, remembered for a few seconds per process, so a
conditional GET answered 304 never loads activities. Building loads its events with one
query whatever the feed's size and writes the text directly (``ical.py``).
"""

from __future__ import annotations

import gc
import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from operator import itemgetter
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Row, Select, exists, or_, select

from ..activities.labels import KIND_LABELS
from ..activities.services import PUBLIC_STATUSES, local_day_start
from ..database import begin_write
from ..extensions import db
from ..feed_changes import PUBLIC_SCOPE, RecentReads, user_scope
from ..i18n import to_local
from ..inputs import parse_id
from ..models import (
    Activity,
    ActivitySession,
    ActivityStatus,
    Campaign,
    FeedChange,
    Registration,
    Role,
    Town,
    User,
    Village,
    utcnow,
)
from ..permissions import activities_visible_to
from ..tokens import hash_secret
from .ical import EventSeries, FeedEvent, Occurrence, build_calendar_of_series

# How long things stay in feeds: a cancellation long enough for every client to see
# it, and past activities for a season.
CANCELLED_KEPT = timedelta(days=30)
ENDED_KEPT = timedelta(days=90)
# Raise when the feed's content changes for the same data, so cached copies go stale.
FEED_FORMAT_VERSION = 2
FILTER_NAMES = ("kind", "town", "campaign")


class FeedFilterError(ValueError):
    """A filter value that names nothing; the message is shown as plain text."""


@dataclass(frozen=True)
class FeedFilters:
    kind: str | None = None
    town: Town | None = None
    campaign: Campaign | None = None

    def query_args(self) -> dict[str, str]:
        """The filters as URL query arguments (for links to this feed)."""
        args = {}
        if self.kind:
            args["kind"] = self.kind
        if self.town is not None:
            args["town"] = self.town.code
        if self.campaign is not None:
            args["campaign"] = str(self.campaign.id)
        return args


def parse_feed_filters(args: Mapping[str, str]) -> FeedFilters:
    """``kind``, ``town`` (code) and ``campaign`` (id) from ``args``; unknown values raise."""
    kind = (args.get("kind") or "").strip() or None
    town_code = (args.get("town") or "").strip()
    campaign_arg = (args.get("campaign") or "").strip()
    if kind is not None and kind not in KIND_LABELS:
        raise FeedFilterError(
            _(
                "未知的活动类型：%(value)s（可选：%(choices)s）",
                value=kind,
                choices=", ".join(KIND_LABELS),
            )
        )
    town = None
    if town_code:
        town = db.session.scalar(select(Town).where(Town.code == town_code))
        if town is None:
            raise FeedFilterError(_("未知的镇街代码：%(value)s", value=town_code))
    campaign = None
    if campaign_arg:
        campaign_id = parse_id(campaign_arg)
        if campaign_id is None:
            raise FeedFilterError(_("专题编号必须是数字：%(value)s", value=campaign_arg))
        campaign = db.session.get(Campaign, campaign_id)
        if campaign is None:
            raise FeedFilterError(_("未知的专题编号：%(value)s", value=campaign_arg))
    return FeedFilters(kind=kind, town=town, campaign=campaign)


def valid_feed_args(args: Mapping[str, str]) -> dict[str, str]:
    """The feed filters in ``args`` that name something; the rest are dropped.

    For subscribe links on pages whose own filters may be half valid.
    """
    kept: dict[str, str] = {}
    for name in FILTER_NAMES:
        value = (args.get(name) or "").strip()
        if not value:
            continue
        try:
            parse_feed_filters({name: value})
        except FeedFilterError:
            continue
        kept[name] = value
    return kept


@dataclass(frozen=True)
class FeedState:
    """What one read gives about a feed: the change counters of its scopes (0 for a
    scope never changed), the latest change among them, and its facts (what naming the
    feed needs: its filters' names, its activity's title; None where nothing is found)."""

    counters: tuple[int, ...]
    changed_at: datetime | None
    facts: tuple = ()


@dataclass(frozen=True)
class Feed:
    """A feed as a request names it: what identifies it, and the change counters
    (``sciweek/feed_changes.py``) its content depends on. What it holds is only loaded
    to build it."""

    key: str
    scopes: tuple[str, ...]
    # The calendar's name and its activities (a query), loaded only when building.
    load: Callable[[datetime], tuple[str, Select]]
    private: bool = False
    # Read while naming the feed (with its facts), else read for its version.
    state: FeedState | None = None


def _still_current(now: datetime):
    """Activities not yet dropped out: cancellations under 30 days, sessions under 90.

    Counted from the start of the local day, so a feed changes at midnight only (the
    day is part of its ETag) and not with every passing second.
    """
    today = local_day_start(to_local(now).date())
    return (
        or_(
            Activity.status != ActivityStatus.CANCELLED,
            Activity.cancelled_at.is_(None),
            Activity.cancelled_at >= today - CANCELLED_KEPT,
        ),
        exists().where(
            ActivitySession.activity_id == Activity.id,
            ActivitySession.ends_at >= today - ENDED_KEPT,
        ),
    )


def public_activities_query(
    now: datetime,
    kind: str | None = None,
    town_code: str | None = None,
    campaign_id: int | None = None,
) -> Select:
    """Published (and recently cancelled) activities of ``kind``, in the town and the
    campaign given: what the public listing shows for the same filters (every audience),
    still current."""
    stmt = select(Activity).where(Activity.status.in_(PUBLIC_STATUSES), *_still_current(now))
    if kind:
        stmt = stmt.where(Activity.kind == kind)
    if town_code:
        town_id = select(Town.id).where(Town.code == town_code).scalar_subquery()
        stmt = stmt.where(Activity.town_id == town_id)
    if campaign_id is not None:
        stmt = stmt.where(Activity.campaign_id == campaign_id)
    return stmt


def public_feed_name(kind: str | None, town_name: str | None, campaign_name: str | None) -> str:
    parts = []
    if kind:
        parts.append(str(KIND_LABELS[kind]))
    parts += [name for name in (town_name, campaign_name) if name is not None]
    return " · ".join(parts) if parts else _("全部科技活动")


def public_feed(args: Mapping[str, str]) -> Feed:
    """The public feed that ``args`` (kind, town, campaign) ask for; FeedFilterError when
    one names nothing. Checked without loading them: the names of its town and campaign
    are read with its counters (:func:`read_state`)."""
    kind = (args.get("kind") or "").strip()
    town_code = (args.get("town") or "").strip()
    campaign_arg = (args.get("campaign") or "").strip()
    if kind and kind not in KIND_LABELS:
        parse_feed_filters({"kind": kind})  # raises with the message
    campaign_id = parse_id(campaign_arg) if campaign_arg else None
    if campaign_arg and campaign_id is None:
        parse_feed_filters({"campaign": campaign_arg})  # raises with the message
    normal = {"kind": kind, "town": town_code, "campaign": str(campaign_id or "")}
    key = "public:" + "&".join(f"{k}={v}" for k, v in sorted(normal.items()) if v)
    scopes = (PUBLIC_SCOPE,)
    state = None
    town_name = campaign_name = None
    if town_code or campaign_id is not None:
        town = select(Town.name).where(Town.code == town_code).scalar_subquery()
        campaign = select(Campaign.name).where(Campaign.id == campaign_id).scalar_subquery()
        state = read_state(scopes, (town, campaign), key)
        town_name, campaign_name = state.facts
        if town_code and town_name is None:
            raise FeedFilterError(_("未知的镇街代码：%(value)s", value=town_code))
        if campaign_id is not None and campaign_name is None:
            raise FeedFilterError(_("未知的专题编号：%(value)s", value=campaign_arg))

    def load(now: datetime) -> tuple[str, Select]:
        name = public_feed_name(kind, town_name, campaign_name)
        return name, public_activities_query(now, kind, town_code, campaign_id)

    return Feed(key=key, scopes=scopes, load=load, state=state)


def _read(statement) -> list[Row]:
    """A read behind a feed's version or body. On PostgreSQL in autocommit on its own
    pooled connection: one round trip, no BEGIN or COMMIT (a 304 then costs that alone);
    on SQLite in the request's transaction."""
    if db.engine.dialect.name != "postgresql":
        return list(db.session.execute(statement).all())
    with db.engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        return list(autocommit.execute(statement).all())


def activity_feed(activity_id: int) -> Feed | None:
    """One published or cancelled activity (drafts never), or None."""
    key = f"activity:{activity_id}"
    scopes = (PUBLIC_SCOPE,)
    public = select(Activity).where(
        Activity.id == activity_id, Activity.status.in_(PUBLIC_STATUSES)
    )
    state = read_state(scopes, (public.with_only_columns(Activity.title).scalar_subquery(),), key)
    [title] = state.facts
    if title is None:
        return None

    def load(now: datetime) -> tuple[str, Select]:
        return title, public

    return Feed(key=key, scopes=scopes, load=load, state=state)


def personal_feed(user: User) -> Feed:
    """A user's own calendar: what they registered for, and for staff what they run.

    Registrations count unless the person cancelled them; an activity the organizer
    cancelled stays (as cancelled) for 30 days, like in the public feeds. Drafts
    never appear, even to their organizers: a feed URL is easily shared.
    """
    user_id = user.id

    def load(now: datetime) -> tuple[str, Select]:
        owner = db.session.get(User, user_id)
        assert owner is not None
        registered = select(Registration.activity_id).where(
            Registration.user_id == user_id,
            Registration.is_standing,
        )
        conditions = [Activity.id.in_(registered)]
        if owner.role != Role.CITIZEN:
            visible = activities_visible_to(owner).with_only_columns(Activity.id)
            conditions.append(Activity.id.in_(visible))
        stmt = select(Activity).where(
            or_(*conditions), Activity.status.in_(PUBLIC_STATUSES), *_still_current(now)
        )
        name = _("我的报名") if owner.role == Role.CITIZEN else _("我的活动")
        return name, stmt

    return Feed(
        key=f"user:{user_id}",
        scopes=(PUBLIC_SCOPE, user_scope(user_id)),
        load=load,
        private=True,
    )


@dataclass(frozen=True)
class FeedVersion:
    etag: str
    last_modified: datetime | None


def _recent_reads() -> RecentReads:
    """One per application (tests create many apps in one process)."""
    reads = current_app.extensions.get("sciweek_feed_reads")
    if reads is None:
        reads = current_app.extensions["sciweek_feed_reads"] = RecentReads()
    return reads


def _remember_seconds() -> float:
    return float(current_app.config.get("SCIWEEK_FEED_VERSION_CACHE_SECONDS", 0))


def read_state(scopes: tuple[str, ...], facts: tuple = (), key: str = "") -> FeedState:
    """The counters of ``scopes`` and the values of ``facts`` (scalar subqueries): one
    read of indexed rows, remembered for a few seconds (under ``key``, the feed's, when
    there are facts). Facts read with the counters are as current as they are, so a
    body built under their ETag names what it holds."""

    def read() -> FeedState:
        columns = []
        for scope in scopes:
            change = select(FeedChange.counter, FeedChange.changed_at).where(
                FeedChange.scope == scope
            )
            columns.append(change.with_only_columns(FeedChange.counter).scalar_subquery())
            columns.append(change.with_only_columns(FeedChange.changed_at).scalar_subquery())
        [row] = _read(select(*columns, *facts))
        changes = 2 * len(scopes)
        return FeedState(
            counters=tuple(int(counter or 0) for counter in row[0:changes:2]),
            changed_at=max((t for t in row[1:changes:2] if t is not None), default=None),
            facts=tuple(row[changes:]),
        )

    return _recent_reads().get(("state", scopes, key if facts else ""), _remember_seconds(), read)


def feed_version(
    feed: Feed, locale: str, base_url: str, now: datetime | None = None
) -> FeedVersion:
    """ETag and Last-Modified from the feed's change counters (no activity is loaded).

    The content of a feed is a function of its counters, the local day (old activities
    drop out at midnight), the language and the site's address: so is its ETag.
    """
    now = now or utcnow()
    state = feed.state or read_state(feed.scopes)
    counters, changed_at = state.counters, state.changed_at
    today = local_day_start(to_local(now).date())
    seed = "|".join(
        [
            str(FEED_FORMAT_VERSION),
            feed.key,
            locale,
            base_url,
            today.date().isoformat(),
            *(str(c) for c in counters),
        ]
    )
    etag = hashlib.sha256(seed.encode()).hexdigest()[:32]
    changed = today if changed_at is None else max(changed_at, today)
    # HTTP dates count whole seconds: a date of the current second could be followed by
    # another change within it, which If-Modified-Since could not tell apart. Such a
    # response carries no Last-Modified (its ETag still validates); private feeds never
    # do (they are judged by ETag alone, as their clients are).
    hidden = feed.private or int(changed.timestamp()) >= int(now.timestamp())
    return FeedVersion(etag=etag, last_modified=None if hidden else changed)


def activity_url(base_url: str, activity_id: int) -> str:
    return f"{base_url}/activities/{activity_id}"


def event_uid(activity_id: int, session_id: int, base_url: str) -> str:
    """Stable across edits and renames: only ids and the site's host."""
    host = urlsplit(base_url).hostname or "sciweek"
    return f"activity-{activity_id}-session-{session_id}@{host}"


def _location(*parts: str | None) -> str:
    return " · ".join(p for p in parts if p)


# Where a row's session columns begin (its activity's are before).
_SESSION_COLUMNS = 13


def feed_series(
    feed: Feed, base_url: str, now: datetime | None = None
) -> tuple[str, list[tuple[EventSeries, list[Occurrence]]]]:
    """The feed's name and, per activity, its events (one per session): one query for
    the events whatever the feed's size (one row per session, with its activity's
    columns), plus the feed's own (its name, a personal feed's owner).

    Plain rows, not ORM objects, read like the feed's version (autocommit on
    PostgreSQL: one round trip, one snapshot); each translated phrase looked up once and
    an activity's text made once for all its sessions: a 10,000-session feed is built in
    a fraction of a second and a 50-event one in a few milliseconds
    (``benchmarks/feeds.py``).
    """
    name, activities = feed.load(now or utcnow())
    feed_ids = activities.with_only_columns(Activity.id).order_by(None)
    rows = _read(
        select(
            Activity.id,
            Activity.kind,
            Activity.title,
            Activity.description,
            Activity.venue,
            Activity.latitude,
            Activity.longitude,
            Activity.status,
            Activity.cancel_reason,
            Activity.sequence,
            Activity.updated_at,
            Town.name,
            Village.name,
            ActivitySession.id,
            ActivitySession.starts_at,
            ActivitySession.ends_at,
            ActivitySession.created_at,
        )
        .select_from(ActivitySession)
        .join(Activity, Activity.id == ActivitySession.activity_id)
        .outerjoin(Town, Town.id == Activity.town_id)
        .outerjoin(Village, Village.id == Activity.village_id)
        .where(Activity.id.in_(feed_ids))
        .order_by(Activity.id, ActivitySession.starts_at, ActivitySession.id)
    )
    host = urlsplit(base_url).hostname or "sciweek"
    # Each phrase translated once (gettext without arguments gives the pattern).
    nth_session = _("%(title)s（第 %(n)s/%(total)s 场）")
    cancelled_title = _("【已取消】%(title)s")
    cancelled_because = _("此活动已取消：%(reason)s")
    kinds = {kind: str(label) for kind, label in KIND_LABELS.items()}
    series = []
    # An activity without sessions has no event: it has no row either.
    for activity_id, group in groupby(rows, key=itemgetter(0)):
        own = list(group)
        (
            kind,
            title,
            description,
            venue,
            latitude,
            longitude,
            status,
            cancel_reason,
            sequence,
            updated_at,
            town_name,
            village_name,
        ) = own[0][1:_SESSION_COLUMNS]
        url = activity_url(base_url, activity_id)
        cancelled = status == ActivityStatus.CANCELLED
        lines = []
        if cancelled:
            lines.append(cancelled_because % {"reason": cancel_reason})
        if description:
            lines.append(description)
        lines.append(url)
        geo = None
        if latitude is not None and longitude is not None:
            geo = (latitude, longitude)
        total = len(own)
        occurrences = []
        uid_prefix = f"activity-{activity_id}-session-"
        for number, row in enumerate(own, start=1):
            session_id, starts_at, ends_at, created = row[_SESSION_COLUMNS:]
            summary = title
            if total > 1:
                summary = nth_session % {"title": summary, "n": number, "total": total}
            if cancelled:
                summary = cancelled_title % {"title": summary}
            occurrences.append(
                Occurrence(f"{uid_prefix}{session_id}@{host}", summary, starts_at, ends_at, created)
            )
        common = EventSeries(
            url,
            "\n\n".join(lines),
            _location(town_name, village_name, venue),
            geo,
            (kinds.get(kind, kind),),
            cancelled,
            sequence,
            updated_at,
        )
        series.append((common, occurrences))
    return name, series


def feed_events(
    feed: Feed, base_url: str, now: datetime | None = None
) -> tuple[str, list[FeedEvent]]:
    """The feed's name and events, one by one (for tests and other writers)."""
    name, series = feed_series(feed, base_url, now)
    events = [
        FeedEvent(
            uid=occurrence.uid,
            summary=occurrence.summary,
            starts_at=occurrence.starts_at,
            ends_at=occurrence.ends_at,
            created=occurrence.created,
            **common._asdict(),
        )
        for common, occurrences in series
        for occurrence in occurrences
    ]
    return name, events


def render_feed(feed: Feed, base_url: str, now: datetime | None = None) -> bytes:
    """The feed as iCalendar bytes.

    Without the cyclic garbage collector: a large feed makes tens of thousands of small
    objects, none of them in a cycle, and the collections they set off (each one walking
    every object of the process) took as long as the building itself.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return build_calendar_of_series(*feed_series(feed, base_url, now))
    finally:
        if collecting:
            gc.enable()


class RenderedFeedCache:
    """Recently built feeds by ETag, in this process, bounded in bytes.

    Calendar clients poll often and many never send If-None-Match; an unchanged feed
    then costs its version's read (often remembered) instead of a rebuild. The ETag
    covers everything the body shows, so a cached body is exactly what a rebuild gives.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, etag: str) -> bytes | None:
        with self._lock:
            body = self._bodies.get(etag)
            if body is not None:
                self._bodies.move_to_end(etag)
            return body

    def put(self, etag: str, body: bytes) -> None:
        if len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._bodies.pop(etag, None)
            self._size -= len(old) if old else 0
            self._bodies[etag] = body
            self._size += len(body)
            while self._size > self.max_bytes:
                _, evicted = self._bodies.popitem(last=False)
                self._size -= len(evicted)


def feed_body(feed: Feed, version: FeedVersion, base_url: str, cache: RenderedFeedCache) -> bytes:
    """The feed's bytes: from ``cache`` when this version was built before, else built."""
    body = cache.get(version.etag)
    if body is None:
        body = render_feed(feed, base_url)
        cache.put(version.etag, body)
    return body


def issue_feed_token(user: User) -> str:
    """A new personal feed token for ``user``; the previous one stops working.

    Only the token's SHA-256 is stored, so the caller must show the returned token
    now: it cannot be recovered later, only replaced.
    """
    token = secrets.token_urlsafe(32)
    user.feed_token_hash = hash_secret(token)
    return token


def issue_first_feed_token(user: User) -> str | None:
    """The personal feed token of a first visit; None when ``user`` already has one.

    A GET that writes: it takes the write lock first and looks again under it, so two
    tabs opened at once issue one token, not two with the first silently replaced.
    """
    if user.feed_token_hash is not None:
        return None
    begin_write()
    if user.feed_token_hash is not None:
        return None
    return issue_feed_token(user)


def user_for_feed_token(token: str) -> User | None:
    """The enabled user whose current feed token is ``token``."""
    if not token or len(token) > 100:
        return None
    user = db.session.scalar(select(User).where(User.feed_token_hash == hash_secret(token)))
    if user is None or not user.is_enabled:
        return None
    return user
