"""Public pages: the activity listing (list or month view) and an activity's page."""

from __future__ import annotations

import re

from flask import (
    Blueprint,
    abort,
    current_app,
    render_template,
    request,
    send_from_directory,
)
from sqlalchemy import select

from ..extensions import db
from ..i18n import local_today
from ..inputs import query_int
from ..models import Campaign, Town
from ..registration.forms import RegistrationForm
from ..registration.services import registration_open_problem
from ..years import YEAR_MAX, YEAR_MIN
from .forms import ListingFilterForm
from .labels import AUDIENCE_LABELS, KIND_LABELS, STATUS_LABELS
from .maps import amap_url, baidu_url
from .services import (
    ListingFilters,
    month_calendar,
    public_activities,
    visible_activity,
)

bp = Blueprint("activities", __name__)
PER_PAGE = 20
MONTH_RE = re.compile(r"^([0-9]{4})-([0-9]{2})$")


@bp.app_context_processor
def inject_labels():
    return {
        "KIND_LABELS": KIND_LABELS,
        "STATUS_LABELS": STATUS_LABELS,
        "AUDIENCE_LABELS": AUDIENCE_LABELS,
        "amap_url": amap_url,
        "baidu_url": baidu_url,
    }


def _filters_from(form: ListingFilterForm) -> ListingFilters:
    """Valid fields filter; invalid ones are shown with their message and ignored."""
    filters = ListingFilters()
    if form.kind.data and not form.kind.errors:
        filters.kind = form.kind.data
    if form.town.data and not form.town.errors:
        filters.town = db.session.scalar(select(Town).where(Town.code == form.town.data))
    if form.campaign.data and not form.campaign.errors:
        filters.campaign = db.session.get(Campaign, int(form.campaign.data))
    if not form.from_.errors:
        filters.date_from = form.from_.data
    if not form.to.errors:
        filters.date_to = form.to.data
    if not form.q.errors:
        filters.words = (form.q.data or "").strip()
    return filters


def _dates_picked() -> bool:
    """Did the visitor fill in a date? The filter form sends ``from=`` and ``to=`` empty."""
    return any((request.args.get(name) or "").strip() for name in ("from", "to"))


@bp.app_template_filter("reject_keys")
def reject_keys(args: dict, keys: list[str]) -> dict:
    """Query arguments without ``keys``, to build links that keep the other filters."""
    return {k: v for k, v in args.items() if k not in keys}


@bp.route("/")
def index():
    form = ListingFilterForm(request.args)
    form.validate()
    filters = _filters_from(form)
    if request.args.get("view") == "month":
        today = local_today()
        year, month = today.year, today.month
        match = MONTH_RE.match(request.args.get("month", ""))
        if match and YEAR_MIN <= int(match[1]) <= YEAR_MAX and 1 <= int(match[2]) <= 12:
            year, month = int(match[1]), int(match[2])
        weeks = month_calendar(year, month, filters)
        prev_month = f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"
        next_month = f"{year + 1}-01" if month == 12 else f"{year}-{month + 1:02d}"
        return render_template(
            "activities/month.html",
            form=form,
            weeks=weeks,
            year=year,
            month=month,
            prev_month=prev_month,
            next_month=next_month,
        )
    if form.from_.errors or form.to.errors:
        # A date the listing cannot use (or a range ending before it starts): the message
        # beside the field, and no results that would pretend to answer it.
        return render_template("activities/index.html", form=form, page=None)
    if not _dates_picked():
        filters.date_from = local_today()  # upcoming, until the visitor picks dates
    page = db.paginate(
        public_activities(filters),
        page=query_int("page") or 1,
        per_page=PER_PAGE,
        max_per_page=PER_PAGE,
        error_out=False,
    )
    return render_template("activities/index.html", form=form, page=page)


@bp.route("/favicon.ico")
def favicon():
    # Browsers ask for /favicon.ico whatever the page links to.
    return send_from_directory(current_app.static_folder or "", "favicon.ico", max_age=86400)


@bp.route("/activities/<int:activity_id>")
def detail(activity_id: int):
    activity = visible_activity(activity_id)
    if activity is None:
        abort(404)
    return render_template(
        "activities/detail.html",
        activity=activity,
        register_form=RegistrationForm().load_choices(),
        registration_problem=registration_open_problem(activity),
    )
