"""The delivery logs, the organizer's broadcast, the coordinator's invitations and the
public 退订 page: thin routes over the notifications services."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import ColumnElement

from ..extensions import db
from ..forms import ConfirmForm
from ..identity import mask_phone
from ..inputs import query_int
from ..models import Broadcast, InvitationBatch, OutboxMessage
from ..permissions import (
    EDITOR_ROLES,
    ROSTER_ROLES,
    managed_activity_or_403,
    roles_required,
    town_or_403,
)
from ..transactions import all_or_nothing
from . import optout, services
from .broadcasts import BroadcastRefused, broadcasts_of, preview_broadcast, send_broadcast
from .forms import BroadcastForm, InvitationForm
from .invitations import (
    InvitationRefused,
    batches_of_town,
    plan_invitations,
    send_invitations,
    training_for_town,
    upcoming_trainings,
)
from .labels import EVENT_LABELS, REASON_LABELS, STATUS_LABELS

bp = Blueprint("notifications", __name__)
PER_PAGE = 50
LABELS = {
    "EVENT_LABELS": EVENT_LABELS,
    "STATUS_LABELS": STATUS_LABELS,
    "REASON_LABELS": REASON_LABELS,
}


@bp.app_context_processor
def inject_labels():
    return {"people_notified": services.people_notified}


def _page(stmt):
    return db.paginate(
        stmt, page=query_int("page") or 1, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False
    )


@bp.route("/manage/activities/<int:activity_id>/notifications")
@roles_required(*EDITOR_ROLES)
def activity_log(activity_id: int):
    activity = managed_activity_or_403(activity_id)
    status = request.args.get("status") or None
    if status not in STATUS_LABELS:
        status = None
    return render_template(
        "notifications/log.html",
        activity=activity,
        counts=services.status_counts(activity.id),
        notified=services.people_notified(activity.id),
        page=_page(services.messages_query(activity.id, status)),
        status=status,
        **LABELS,
    )


# --- an organizer's broadcast ------------------------------------------------------------


@bp.route("/manage/activities/<int:activity_id>/broadcasts", methods=["GET", "POST"])
@roles_required(*EDITOR_ROLES)
def broadcast(activity_id: int):
    activity = managed_activity_or_403(activity_id)
    form = BroadcastForm()
    preview = None
    if form.validate_on_submit():
        try:
            if request.form.get("step") == "send":
                with all_or_nothing():
                    sent = send_broadcast(activity, form.text.data, current_user)
                flash(_("已提交群发，共 %(n)s 人，短信将陆续发出。", n=sent.recipients), "success")
                return redirect(url_for("notifications.broadcast_log", broadcast_id=sent.id))
            preview = preview_broadcast(activity, form.text.data)
        except BroadcastRefused as exc:
            if exc.field == "text":
                form.text.errors = [str(exc)]
            else:
                form.form_errors.append(str(exc))
    return render_template(
        "notifications/broadcast.html",
        activity=activity,
        form=form,
        preview=preview,
        history=[
            (b, services.counts_where(OutboxMessage.broadcast_id == b.id))
            for b in broadcasts_of(activity.id)
        ],
        **LABELS,
    )


def _batch_log(title: str, back: str, criterion: ColumnElement[bool], **context):
    return render_template(
        "notifications/batch_log.html",
        title=title,
        back=back,
        counts=services.counts_where(criterion),
        reasons=services.reason_counts(criterion),
        page=_page(services.messages_where(criterion)),
        **context,
        **LABELS,
    )


@bp.route("/manage/broadcasts/<int:broadcast_id>")
@roles_required(*EDITOR_ROLES)
def broadcast_log(broadcast_id: int):
    sent = db.get_or_404(Broadcast, broadcast_id)
    activity = managed_activity_or_403(sent.activity_id)
    return _batch_log(
        _("群发记录：%(title)s", title=activity.title),
        url_for("notifications.broadcast", activity_id=activity.id),
        OutboxMessage.broadcast_id == sent.id,
        broadcast=sent,
    )


# --- a coordinator's invitations ---------------------------------------------------------


@bp.route("/manage/training/towns/<int:town_id>/invitations", methods=["GET", "POST"])
@roles_required(*ROSTER_ROLES)
def invite(town_id: int):
    town = town_or_403(town_id)
    form = InvitationForm()
    trainings = upcoming_trainings(town.id)
    form.activity_id.choices = [(0, _("请选择培训")), *((a.id, a.title) for a in trainings)]
    plan = None
    if form.validate_on_submit():
        try:
            activity = training_for_town(form.activity_id.data, town)
            if request.form.get("step") == "send":
                with all_or_nothing():
                    batch = send_invitations(activity, town, current_user)
                flash(_("已邀请 %(n)s 人，短信将陆续发出。", n=batch.invited), "success")
                return redirect(url_for("notifications.invitation_log", batch_id=batch.id))
            plan = plan_invitations(activity, town)
        except InvitationRefused as exc:
            form.activity_id.errors = [str(exc)]
    return render_template(
        "notifications/invite.html",
        town=town,
        form=form,
        plan=plan,
        trainings=trainings,
        history=[
            (b, services.counts_where(OutboxMessage.invitation_batch_id == b.id))
            for b in batches_of_town(town.id)
        ],
        **LABELS,
    )


@bp.route("/manage/invitations/<int:batch_id>")
@roles_required(*ROSTER_ROLES)
def invitation_log(batch_id: int):
    batch = db.get_or_404(InvitationBatch, batch_id)
    town = town_or_403(batch.town_id)
    return _batch_log(
        _("培训邀请记录：%(title)s（%(town)s）", title=batch.activity.title, town=town.name),
        url_for("notifications.invite", town_id=town.id),
        OutboxMessage.invitation_batch_id == batch.id,
        batch=batch,
    )


# --- 退订 (public) -------------------------------------------------------------------------


@bp.route("/u/<token>", methods=["GET", "POST"])
def opt_out(token: str):
    preference = optout.preference(token)
    if preference is None:
        abort(404)
    form = ConfirmForm()
    if form.validate_on_submit():
        opted_out = request.form.get("choice") != "in"
        optout.set_opted_out(preference, opted_out)
        flash(
            _("已退订：不再收到活动提醒、群发通知和培训邀请短信。")
            if opted_out
            else _("已恢复接收活动提醒、群发通知和培训邀请短信。"),
            "success",
        )
        return redirect(url_for("notifications.opt_out", token=token))
    return render_template(
        "notifications/optout.html",
        preference=preference,
        phone=mask_phone(preference.phone),
        form=form,
    )
