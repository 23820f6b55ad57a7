"""Calendar feeds: which activities a feed holds, its version for caching, and tokens.

A feed is an activity query plus a name. Its version (ETag, Last-Modified) comes
from one aggregate query, so a conditional GET answered 304 never loads activities;
building loads them with a constant number of queries whatever the feed's size.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask_babel import gettext as _
from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import selectinload

from ..activities.labels import KIND_LABELS
from ..activities.services import PUBLIC_STATUSES
from ..database import begin_write
from ..extensions import db
from ..inputs import parse_id
from ..models import (
    Activity,
    ActivitySession,
    ActivityStatus,
    Audience,
    Campaign,
    Registration,
    Role,
    Town,
    User,
    utcnow,
)
from ..permissions import activities_visible_to
from ..tokens import hash_secret
from .ical import FeedEvent, build_calendar

# How long things stay in feeds: a cancellation long enough for every client to see
# it, and past activities for a season.
CANCELLED_KEPT = timedelta(days=30)
ENDED_KEPT = timedelta(days=90)
# Raise when the feed's content changes for the same data, so cached copies go stale.
FEED_FORMAT_VERSION = 1
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


@dataclass
class Feed:
    """What a feed holds (an activity query), what it is called, and what identifies it."""

    name: str
    activities: Select
    key: str


def _still_current(now: datetime):
    """Activities not yet dropped out: cancellations under 30 days, sessions under 90."""
    return (
        or_(
            Activity.status != ActivityStatus.CANCELLED,
            Activity.cancelled_at.is_(None),
            Activity.cancelled_at >= now - CANCELLED_KEPT,
        ),
        exists().where(
            ActivitySession.activity_id == Activity.id,
            ActivitySession.ends_at >= now - ENDED_KEPT,
        ),
    )


def public_feed(filters: FeedFilters, now: datetime | None = None) -> Feed:
    """Published (and recently cancelled) public activities matching ``filters``."""
    now = now or utcnow()
    stmt = select(Activity).where(
        Activity.status.in_(PUBLIC_STATUSES),
        Activity.audience == Audience.PUBLIC,
        *_still_current(now),
    )
    parts = []
    if filters.kind:
        stmt = stmt.where(Activity.kind == filters.kind)
        parts.append(str(KIND_LABELS[filters.kind]))
    if filters.town is not None:
        stmt = stmt.where(Activity.town_id == filters.town.id)
        parts.append(filters.town.name)
    if filters.campaign is not None:
        stmt = stmt.where(Activity.campaign_id == filters.campaign.id)
        parts.append(filters.campaign.name)
    name = " · ".join(parts) if parts else _("全部科技活动")
    key = "public:" + "&".join(f"{k}={v}" for k, v in sorted(filters.query_args().items()))
    return Feed(name=name, activities=stmt, key=key)


def activity_feed(activity_id: int) -> Feed | None:
    """One published or cancelled activity (drafts never), or None."""
    stmt = select(Activity).where(Activity.id == activity_id, Activity.status.in_(PUBLIC_STATUSES))
    title = db.session.scalar(stmt.with_only_columns(Activity.title))
    if title is None:
        return None
    return Feed(name=title, activities=stmt, key=f"activity:{activity_id}")


def personal_feed(user: User, now: datetime | None = None) -> Feed:
    """A user's own calendar: what they registered for, and for staff what they run.

    Registrations count unless the person cancelled them; an activity the organizer
    cancelled stays (as cancelled) for 30 days, like in the public feeds. Drafts
    never appear, even to their organizers: a feed URL is easily shared.
    """
    now = now or utcnow()
    registered = select(Registration.activity_id).where(
        Registration.user_id == user.id,
        Registration.is_standing,
    )
    conditions = [Activity.id.in_(registered)]
    if user.role != Role.CITIZEN:
        visible = activities_visible_to(user).with_only_columns(Activity.id)
        conditions.append(Activity.id.in_(visible))
    stmt = select(Activity).where(
        or_(*conditions), Activity.status.in_(PUBLIC_STATUSES), *_still_current(now)
    )
    name = _("我的报名") if user.role == Role.CITIZEN else _("我的活动")
    return Feed(name=name, activities=stmt, key=f"user:{user.id}")


@dataclass(frozen=True)
class FeedVersion:
    count: int
    last_modified: datetime | None
    etag: str


def feed_version(feed: Feed, locale: str) -> FeedVersion:
    """ETag and Last-Modified from one aggregate query (no activity is loaded).

    Every change a subscriber can see raises ``Activity.updated_at`` (the back office
    raises ``sequence`` for time, place and status changes), and the count and id sum
    change when an activity enters or leaves the feed.
    """
    rows = feed.activities.with_only_columns(Activity.id, Activity.updated_at).subquery()
    count, last_modified, id_sum = db.session.execute(
        select(func.count(), func.max(rows.c.updated_at), func.sum(rows.c.id))
    ).one()
    seed = "|".join(
        [
            str(FEED_FORMAT_VERSION),
            feed.key,
            locale,
            feed.name,
            str(count),
            str(id_sum or 0),
            last_modified.isoformat() if last_modified else "-",
        ]
    )
    etag = hashlib.sha256(seed.encode()).hexdigest()[:32]
    return FeedVersion(count=count, last_modified=last_modified, etag=etag)


def feed_activities(feed: Feed) -> list[Activity]:
    """The feed's activities with what the events need, in a fixed number of queries."""
    stmt = feed.activities.options(
        selectinload(Activity.sessions),
        selectinload(Activity.town),
        selectinload(Activity.village),
    ).order_by(Activity.id)
    return list(db.session.scalars(stmt))


def activity_url(base_url: str, activity_id: int) -> str:
    return f"{base_url}/activities/{activity_id}"


def event_uid(activity_id: int, session_id: int, base_url: str) -> str:
    """Stable across edits and renames: only ids and the site's host."""
    host = urlsplit(base_url).hostname or "sciweek"
    return f"activity-{activity_id}-session-{session_id}@{host}"


def _location(activity: Activity) -> str:
    parts = [
        activity.town.name if activity.town else "",
        activity.village.name if activity.village else "",
        activity.venue,
    ]
    return " · ".join(p for p in parts if p)


def activity_events(activity: Activity, base_url: str) -> list[FeedEvent]:
    """One event per session, in the current locale's words."""
    url = activity_url(base_url, activity.id)
    total = len(activity.sessions)
    lines = []
    if activity.is_cancelled:
        lines.append(_("此活动已取消：%(reason)s", reason=activity.cancel_reason))
    if activity.description:
        lines.append(activity.description)
    lines.append(url)
    description = "\n\n".join(lines)
    events = []
    for number, session in enumerate(activity.sessions, start=1):
        summary = activity.title
        if total > 1:
            summary = _("%(title)s（第 %(n)s/%(total)s 场）", title=summary, n=number, total=total)
        if activity.is_cancelled:
            summary = _("【已取消】%(title)s", title=summary)
        geo = None
        if activity.latitude is not None and activity.longitude is not None:
            geo = (activity.latitude, activity.longitude)
        events.append(
            FeedEvent(
                uid=event_uid(activity.id, session.id, base_url),
                summary=summary,
                starts_at=session.starts_at,
                ends_at=session.ends_at,
                url=url,
                description=description,
                location=_location(activity),
                geo=geo,
                categories=(str(KIND_LABELS.get(activity.kind, activity.kind)),),
                cancelled=activity.is_cancelled,
                sequence=activity.sequence,
                created=session.created_at,
                last_modified=activity.updated_at,
            )
        )
    return events


def render_feed(feed: Feed, base_url: str) -> bytes:
    """The feed as iCalendar bytes."""
    events = [
        event for activity in feed_activities(feed) for event in activity_events(activity, base_url)
    ]
    return build_calendar(feed.name, events)


class RenderedFeedCache:
    """Recently built feeds by ETag, in this process, bounded in bytes.

    Calendar clients poll often and many never send If-None-Match; an unchanged feed
    then costs one aggregate query instead of a rebuild. The ETag covers everything
    the body shows, so a cached body is exactly what a rebuild would give.
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
