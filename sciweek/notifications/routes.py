"""The delivery log of an activity, for its organizers."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from ..extensions import db
from ..inputs import query_int
from ..permissions import EDITOR_ROLES, managed_activity_or_403, roles_required
from . import services
from .labels import EVENT_LABELS, REASON_LABELS, STATUS_LABELS

bp = Blueprint("notifications", __name__)
PER_PAGE = 50


@bp.app_context_processor
def inject_labels():
    return {"people_notified": services.people_notified}


@bp.route("/manage/activities/<int:activity_id>/notifications")
@roles_required(*EDITOR_ROLES)
def activity_log(activity_id: int):
    activity = managed_activity_or_403(activity_id)
    status = request.args.get("status") or None
    if status not in STATUS_LABELS:
        status = None
    page = db.paginate(
        services.messages_query(activity.id, status),
        page=query_int("page") or 1,
        per_page=PER_PAGE,
        max_per_page=PER_PAGE,
        error_out=False,
    )
    return render_template(
        "notifications/log.html",
        activity=activity,
        counts=services.status_counts(activity.id),
        notified=services.people_notified(activity.id),
        page=page,
        status=status,
        EVENT_LABELS=EVENT_LABELS,
        STATUS_LABELS=STATUS_LABELS,
        REASON_LABELS=REASON_LABELS,
    )
