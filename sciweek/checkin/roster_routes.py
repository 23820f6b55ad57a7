"""The roster door of a training: its invited cadres searched and checked in (thin routes
over ``roster_door``).

URLs (no blueprint prefix):
  GET  /api/v1/activities/<id>/roster/search         registrations and invited cadres, JSON
  POST /api/v1/activities/<id>/roster-checkins       check in an invited cadre (docs/checkin_api.md)
  GET  /manage/activities/<id>/cadres                the training's cadre list, searchable
  POST /manage/activities/<id>/cadres/checkin        its check-in button

Door staff of the activity see every invited cadre; coordinators whose town the training
invites see their own town's (``permissions.can_work_roster_door``).
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload

from ..api import ApiError, json_body
from ..extensions import db
from ..i18n import format_time
from ..inputs import query_int
from ..models import TOWN_ORDER, Activity, ActivitySession, ScanResult, Town, User, utcnow
from ..permissions import STAFF_ROLES, can_work_roster_door, roles_required, roster_door_town_id
from ..registration.services import RegistrationRefused
from ..transactions import all_or_nothing
from . import roster_door, services
from .forms import RosterCheckInForm
from .routes import api_view, override_forbidden
from .schemas import RosterCheckInBody

bp = Blueprint("roster_door", __name__)


def _roster_door_activity(activity_id: int, user: User) -> Activity:
    activity = db.session.get(
        Activity,
        activity_id,
        options=[joinedload(Activity.sessions), selectinload(Activity.roster_towns)],
    )
    if activity is None:
        abort(404)
    if not can_work_roster_door(user, activity):
        abort(403)
    return activity


def _not_your_town() -> ApiError:
    return ApiError("not_your_town", _("您只能查找和签到本镇街花名册上的干部。"), status=403)


# --- API ---------------------------------------------------------------------------------


@bp.route("/api/v1/activities/<int:activity_id>/roster/search")
@api_view
def api_search(activity_id: int):
    activity = _roster_door_activity(activity_id, g.api_user)
    try:
        found = roster_door.search_door(
            g.api_user, activity, request.args.get("q", ""), town_id=query_int("town_id")
        )
    except roster_door.NotYourTown:
        raise _not_your_town() from None
    response = jsonify(found.as_json())
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/api/v1/activities/<int:activity_id>/roster-checkins", methods=["POST"])
@api_view
def api_roster_check_in(activity_id: int):
    body = json_body(RosterCheckInBody)
    activity = _roster_door_activity(activity_id, g.api_user)
    now = utcnow()
    at = services.parse_scan_time(body.scanned_at, now)
    session = services.pick_session(activity, body.session_id, at or now)
    try:
        answer = roster_door.check_in_cadre(
            g.api_user,
            activity,
            session,
            body.cadre_id,
            nonce=body.nonce,
            scanned_at=at,
            override_reason=body.override_reason,
        )
    except roster_door.NotYourTown:
        raise _not_your_town() from None
    except services.OverrideNotAllowed:
        raise override_forbidden() from None
    except RegistrationRefused as exc:
        raise ApiError("registration_refused", exc.message) from None
    data = answer.as_json()
    data["cadre_id"] = body.cadre_id
    return jsonify(data)


# --- the cadre list page --------------------------------------------------------------------


def _chosen_session(activity: Activity, session_id: int | None) -> ActivitySession:
    """The session asked for, else the one under way or next today, else the first."""
    if session_id is not None:
        for session in activity.sessions:
            if session.id == session_id:
                return session
        abort(404)
    try:
        return services.pick_session(activity, None, utcnow())
    except services.CheckInProblem:
        return activity.sessions[0]


def _checked_in_time(entry: dict, session: ActivitySession) -> str | None:
    at = entry["checked_in"].get(str(session.id))
    return format_time(datetime.fromisoformat(at)) if at else None


def _town_choices(activity: Activity, user: User) -> list[Town]:
    """The towns a door list may be narrowed to: none for a coordinator (their own)."""
    if roster_door_town_id(user, activity) is not None:
        return []
    if activity.roster_whole_district:
        return list(db.session.scalars(select(Town).order_by(*TOWN_ORDER)))
    return list(activity.roster_towns)


@bp.route("/manage/activities/<int:activity_id>/cadres")
@roles_required(*STAFF_ROLES)
def cadre_list(activity_id: int):
    activity = _roster_door_activity(activity_id, current_user)
    session = _chosen_session(activity, query_int("session"))
    town_id = query_int("town")
    text = request.args.get("q", "")
    hint = None
    try:
        if text.strip():
            found = roster_door.search_door(current_user, activity, text, town_id=town_id)
            entries, hint = found.entries, found.hint
        else:
            entries = roster_door.door_list(current_user, activity, town_id=town_id)
    except roster_door.NotYourTown:
        abort(403)
    own_town = roster_door_town_id(current_user, activity)
    return render_template(
        "checkin/cadres.html",
        activity=activity,
        session=session,
        rows=[(entry, _checked_in_time(entry, session)) for entry in entries],
        query=text,
        hint=hint,
        towns=_town_choices(activity, current_user),
        town_id=town_id,
        own_town=db.session.get(Town, own_town) if own_town is not None else None,
        form=RosterCheckInForm(formdata=None),
    )


@bp.route("/manage/activities/<int:activity_id>/cadres/checkin", methods=["POST"])
@roles_required(*STAFF_ROLES)
def cadre_check_in(activity_id: int):
    activity = _roster_door_activity(activity_id, current_user)
    form = RosterCheckInForm()
    query, town = request.args.get("q") or None, request.args.get("town") or None
    if not form.validate_on_submit():
        flash(_("请求无效，请刷新页面后重试。"), "error")
        return redirect(url_for("roster_door.cadre_list", activity_id=activity.id, q=query))
    session = _chosen_session(activity, form.session_id.data)
    try:
        with all_or_nothing():
            answer = roster_door.check_in_cadre(
                current_user, activity, session, form.cadre_id.data or 0
            )
    except roster_door.NotYourTown:
        abort(403)
    except (services.CheckInProblem, RegistrationRefused) as exc:
        flash(exc.message, "error")
    else:
        person = answer.person["name"] if answer.person else ""
        level = "success" if answer.result == ScanResult.OK else "warning"
        flash(_("%(name)s：%(result)s", name=person, result=answer.message()), level)
    return redirect(
        url_for(
            "roster_door.cadre_list",
            activity_id=activity.id,
            session=session.id,
            q=query,
            town=town,
        )
    )
