"""Calendar feeds: which activities a feed holds, its version for caching, and tokens.

A feed is named by its request (filters, an activity, a user's token). Its version
(ETag, Last-Modified) comes from the change counters of its scopes
(``sciweek/feed_changes.py``): one indexed read, remembered for a few seconds per
process, so a conditional GET answered 304 never loads activities. Building loads them
with two queries whatever the feed's size and writes the text directly (``ical.py``).
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
class Feed:
    """A feed as a request names it: what identifies it, and the change counters
    (``sciweek/feed_changes.py``) its content depends on. What it holds is only loaded
    to build it."""

    key: str
    scopes: tuple[str, ...]
    # The calendar's name and its activities (a query), loaded only when building.
    load: Callable[[datetime], tuple[str, Select]]
    private: bool = False


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


def public_activities_query(filters: FeedFilters, now: datetime) -> Select:
    """Published (and recently cancelled) activities matching ``filters``: what the
    public listing shows for the same filters (every audience), still current."""
    stmt = select(Activity).where(Activity.status.in_(PUBLIC_STATUSES), *_still_current(now))
    if filters.kind:
        stmt = stmt.where(Activity.kind == filters.kind)
    if filters.town is not None:
        stmt = stmt.where(Activity.town_id == filters.town.id)
    if filters.campaign is not None:
        stmt = stmt.where(Activity.campaign_id == filters.campaign.id)
    return stmt


def public_feed_name(filters: FeedFilters) -> str:
    parts = []
    if filters.kind:
        parts.append(str(KIND_LABELS[filters.kind]))
    if filters.town is not None:
        parts.append(filters.town.name)
    if filters.campaign is not None:
        parts.append(filters.campaign.name)
    return " · ".join(parts) if parts else _("全部科技活动")


def public_feed(args: Mapping[str, str]) -> Feed:
    """The public feed that ``args`` (kind, town, campaign) ask for; FeedFilterError when
    one names nothing. Checked without loading them (see :func:`_filters_exist`)."""
    kind = (args.get("kind") or "").strip()
    town_code = (args.get("town") or "").strip()
    campaign_arg = (args.get("campaign") or "").strip()
    if kind and kind not in KIND_LABELS:
        parse_feed_filters({"kind": kind})  # raises with the message
    campaign_id = parse_id(campaign_arg) if campaign_arg else None
    if campaign_arg and campaign_id is None:
        parse_feed_filters({"campaign": campaign_arg})  # raises with the message
    if town_code or campaign_id is not None:
        town_found, campaign_found = _filters_exist(town_code, campaign_id)
        if town_code and not town_found:
            raise FeedFilterError(_("未知的镇街代码：%(value)s", value=town_code))
        if campaign_id is not None and not campaign_found:
            raise FeedFilterError(_("未知的专题编号：%(value)s", value=campaign_arg))
    normal = {"kind": kind, "town": town_code, "campaign": str(campaign_id or "")}
    key = "public:" + "&".join(f"{k}={v}" for k, v in sorted(normal.items()) if v)

    def load(now: datetime) -> tuple[str, Select]:
        filters = parse_feed_filters(args)
        return public_feed_name(filters), public_activities_query(filters, now)

    return Feed(key=key, scopes=(PUBLIC_SCOPE,), load=load)


def _read(statement) -> list[Row]:
    """A read behind a feed's version. On PostgreSQL in autocommit on its own pooled
    connection: one round trip, no BEGIN or COMMIT (a 304 then costs that alone); on
    SQLite in the request's transaction."""
    if db.engine.dialect.name != "postgresql":
        return list(db.session.execute(statement).all())
    with db.engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        return list(autocommit.execute(statement).all())


def _filters_exist(town_code: str, campaign_id: int | None) -> tuple[bool, bool]:
    """Do the town and campaign exist? One read, remembered (towns and campaigns that
    appear or go raise the ``public`` counter, which forgets it)."""

    def read() -> tuple[bool, bool]:
        town = select(Town.id).where(Town.code == town_code).exists()
        campaign = select(Campaign.id).where(Campaign.id == campaign_id).exists()
        [row] = _read(select(town, campaign))
        return bool(row[0]), bool(row[1])

    return _recent_reads().get(("filters", town_code, campaign_id), _remember_seconds(), read)


def activity_feed(activity_id: int) -> Feed | None:
    """One published or cancelled activity (drafts never), or None."""

    def read() -> bool:
        stmt = select(Activity.id).where(
            Activity.id == activity_id, Activity.status.in_(PUBLIC_STATUSES)
        )
        return bool(_read(stmt))

    if not _recent_reads().get(("activity", activity_id), _remember_seconds(), read):
        return None

    def load(now: datetime) -> tuple[str, Select]:
        stmt = select(Activity).where(
            Activity.id == activity_id, Activity.status.in_(PUBLIC_STATUSES)
        )
        title = db.session.scalar(stmt.with_only_columns(Activity.title))
        return title or "", stmt

    return Feed(key=f"activity:{activity_id}", scopes=(PUBLIC_SCOPE,), load=load)


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


def read_counters(scopes: tuple[str, ...]) -> tuple[tuple[int, ...], datetime | None]:
    """The counters of ``scopes`` (0 for a scope never changed) and the latest change
    time among them: one indexed read, remembered for a few seconds."""

    def read() -> tuple[tuple[int, ...], datetime | None]:
        rows = _read(
            select(FeedChange.scope, FeedChange.counter, FeedChange.changed_at).where(
                FeedChange.scope.in_(scopes)
            )
        )
        found = {row.scope: row for row in rows}
        counters = tuple(int(found[s].counter) if s in found else 0 for s in scopes)
        changed = max((row.changed_at for row in rows), default=None)
        return counters, changed

    return _recent_reads().get(("counters", scopes), _remember_seconds(), read)


def feed_version(
    feed: Feed, locale: str, base_url: str, now: datetime | None = None
) -> FeedVersion:
    """ETag and Last-Modified from the feed's change counters (no activity is loaded).

    The content of a feed is a function of its counters, the local day (old activities
    drop out at midnight), the language and the site's address: so is its ETag.
    """
    now = now or utcnow()
    counters, changed_at = read_counters(feed.scopes)
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


def feed_series(
    feed: Feed, base_url: str, now: datetime | None = None
) -> tuple[str, list[tuple[EventSeries, list[Occurrence]]]]:
    """The feed's name and, per activity, its events (one per session): two queries
    whatever its size.

    Rows, not ORM objects, and each translated phrase looked up once: a 10,000-session
    feed is built in a fraction of a second (``benchmarks/feeds.py``).
    """
    name, activities = feed.load(now or utcnow())
    feed_ids = activities.with_only_columns(Activity.id).order_by(None)
    rows = db.session.execute(
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
            Town.name.label("town_name"),
            Village.name.label("village_name"),
        )
        .outerjoin(Town, Town.id == Activity.town_id)
        .outerjoin(Village, Village.id == Activity.village_id)
        .where(Activity.id.in_(feed_ids))
        .order_by(Activity.id)
    ).all()
    sessions: dict[int, list[tuple]] = {}
    # Rows unpacked as tuples: attribute access on 15,000 rows costs more than the rest.
    for activity_id, session_id, starts_at, ends_at, created_at in db.session.execute(
        select(
            ActivitySession.activity_id,
            ActivitySession.id,
            ActivitySession.starts_at,
            ActivitySession.ends_at,
            ActivitySession.created_at,
        )
        .where(ActivitySession.activity_id.in_(feed_ids))
        .order_by(ActivitySession.activity_id, ActivitySession.starts_at, ActivitySession.id)
    ):
        own = sessions.get(activity_id)
        if own is None:
            own = sessions[activity_id] = []
        own.append((session_id, starts_at, ends_at, created_at))
    host = urlsplit(base_url).hostname or "sciweek"
    # Each phrase translated once (gettext without arguments gives the pattern).
    nth_session = _("%(title)s（第 %(n)s/%(total)s 场）")
    cancelled_title = _("【已取消】%(title)s")
    cancelled_because = _("此活动已取消：%(reason)s")
    kinds = {kind: str(label) for kind, label in KIND_LABELS.items()}
    series = []
    for (
        activity_id,
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
    ) in rows:
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
        own = sessions.get(activity_id, [])
        total = len(own)
        occurrences = []
        for number, (session_id, starts_at, ends_at, created_at) in enumerate(own, start=1):
            summary = title
            if total > 1:
                summary = nth_session % {"title": summary, "n": number, "total": total}
            if cancelled:
                summary = cancelled_title % {"title": summary}
            occurrences.append(
                Occurrence(
                    f"activity-{activity_id}-session-{session_id}@{host}",
                    summary,
                    starts_at,
                    ends_at,
                    created_at,
                )
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
