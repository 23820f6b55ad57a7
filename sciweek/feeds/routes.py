"""Calendar feeds (.ics) and the page that hands out a personal feed link."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from flask_babel import get_locale
from flask_login import current_user, login_required
from werkzeug.http import is_resource_modified

from .forms import ResetFeedLinkForm
from .services import (
    Feed,
    FeedFilterError,
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


def _calendar_response(feed: Feed) -> Response:
    """The feed, or 304 when the client's copy is current (without building it)."""
    base_url = current_app.config["SCIWEEK_BASE_URL"]
    version = feed_version(feed, str(get_locale()), base_url)
    response = Response(mimetype=CALENDAR_MIMETYPE)  # Flask adds charset=utf-8
    response.set_etag(version.etag)
    if version.last_modified is not None:
        response.last_modified = version.last_modified
    if feed.private:
        response.cache_control.private = True
        response.headers["X-Robots-Tag"] = "noindex"
    else:
        response.cache_control.public = True
    response.cache_control.max_age = CACHE_SECONDS
    response.vary.add("Cookie")  # the language may come from the lang cookie
    modified = is_resource_modified(
        request.environ, etag=version.etag, last_modified=version.last_modified
    )
    if not modified:
        response.status_code = 304
        return response
    response.set_data(feed_body(feed, version, base_url, _rendered_cache()))
    return response


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
    return current_app.config["SCIWEEK_BASE_URL"] + url_for("feeds.personal_calendar", token=token)


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
        base = current_app.config["SCIWEEK_BASE_URL"]
        if activity is not None:
            path = url_for("feeds.activity_calendar", activity_id=activity.id)
        else:
            path = url_for("feeds.public_calendar", **valid_feed_args(request.args))
        https = base + path
        scheme, _, rest = https.partition("://")
        return {"https": https, "webcal": f"webcal://{rest}", "download": path}

    return {"feed_links": feed_links}
