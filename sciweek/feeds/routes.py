"""Calendar feeds (.ics) and the page that hands out a personal feed link."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.http import http_date, parse_date

from ..i18n import select_locale
from ..links import site_base_url
from .forms import ResetFeedLinkForm
from .services import (
    Feed,
    FeedFilterError,
    FeedVersion,
    RenderedFeedCache,
    activity_feed,
    feed_body,
    feed_version,
    issue_feed_token,
    issue_first_feed_token,
    personal_feed,
    public_feed,
    user_for_feed_token,
    valid_feed_args,
)

bp = Blueprint("feeds", __name__)
CALENDAR_MIMETYPE = "text/calendar"
CACHE_SECONDS = 300
# Built feeds kept per worker process (the 10,000-event feed is about 8 MB).
RENDERED_CACHE_BYTES = 64 * 1024 * 1024


def _rendered_cache() -> RenderedFeedCache:
    """One cache per application (tests create many apps in one process)."""
    cache = current_app.extensions.get("sciweek_feed_cache")
    if cache is None:
        size = current_app.config.get("SCIWEEK_FEED_CACHE_BYTES", RENDERED_CACHE_BYTES)
        cache = current_app.extensions["sciweek_feed_cache"] = RenderedFeedCache(size)
    return cache


def _client_copy_is_current(version: FeedVersion) -> bool:
    """The conditional GET (RFC 9110 13.1.2, 13.1.3): If-None-Match decides when sent
    (weak comparison, ``*`` matches), else If-Modified-Since against Last-Modified.

    werkzeug's ``is_resource_modified`` does more (If-Range, ...) at several times the cost
    of the rest of a 304; a feed needs only this.
    """
    if_none_match = request.environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        ours = f'"{version.etag}"'
        return any(
            tag.strip().removeprefix("W/") in (ours, "*") for tag in if_none_match.split(",")
        )
    if version.last_modified is None:
        return False
    since = parse_date(request.environ.get("HTTP_IF_MODIFIED_SINCE"))
    return since is not None and version.last_modified.replace(microsecond=0) <= since


def _calendar_response(feed: Feed) -> Response:
    """The feed, or 304 when the client's copy is current (without building it).

    Headers are written as plain values: calendar polls are most of a feed server's
    traffic, and werkzeug's header objects cost more than the rest of a 304.
    """
    base_url = site_base_url()
    version = feed_version(feed, select_locale(), base_url)
    headers = [
        ("ETag", f'"{version.etag}"'),
        ("Cache-Control", f"{'private' if feed.private else 'public'}, max-age={CACHE_SECONDS}"),
        ("Vary", "Cookie"),  # the language may come from the lang cookie
    ]
    if version.last_modified is not None:
        headers.append(("Last-Modified", http_date(version.last_modified)))
    if feed.private:
        headers.append(("X-Robots-Tag", "noindex"))
    if _client_copy_is_current(version):
        return Response(status=304, headers=headers)
    body = feed_body(feed, version, base_url, _rendered_cache())
    return Response(body, headers=headers, mimetype=CALENDAR_MIMETYPE)  # + charset=utf-8


@bp.get("/calendar.ics")
def public_calendar():
    try:
        feed = public_feed(request.args)
    except FeedFilterError as exc:
        return Response(f"{exc}\n", status=400, mimetype="text/plain")
    return _calendar_response(feed)


@bp.get("/activities/<int:activity_id>.ics")
def activity_calendar(activity_id: int):
    feed = activity_feed(activity_id)
    if feed is None:
        abort(404)
    return _calendar_response(feed)


@bp.get("/calendar/<token>.ics")
def personal_calendar(token: str):
    user = user_for_feed_token(token)
    if user is None:
        abort(404)
    return _calendar_response(personal_feed(user))


def personal_feed_url(token: str) -> str:
    return site_base_url() + url_for("feeds.personal_calendar", token=token)


@bp.route("/account/calendar", methods=["GET", "POST"])
@login_required
def account_calendar():
    """Show the personal feed link once: on first visit, and after each reset.

    Only the token's hash is kept, so a later visit cannot show the link again;
    it offers to replace it instead (which stops the old link).
    """
    form = ResetFeedLinkForm()
    token = None
    reset = False
    if form.validate_on_submit():
        token, reset = issue_feed_token(current_user), True
    elif request.method == "GET":
        token = issue_first_feed_token(current_user._get_current_object())
    response = Response(
        render_template(
            "feeds/account.html",
            form=form,
            feed_url=personal_feed_url(token) if token else None,
            reset=reset,
        )
    )
    response.headers["Cache-Control"] = "no-store"  # the page may hold a secret link
    return response


@bp.app_context_processor
def subscribe_links():
    """``feed_links(activity)`` for the subscribe partial: https, webcal and download URLs."""

    def feed_links(activity=None) -> dict[str, str]:
        base = site_base_url()
        if activity is not None:
            path = url_for("feeds.activity_calendar", activity_id=activity.id)
        else:
            path = url_for("feeds.public_calendar", **valid_feed_args(request.args))
        https = base + path
        scheme, _, rest = https.partition("://")
        return {"https": https, "webcal": f"webcal://{rest}", "download": path}

    return {"feed_links": feed_links}
