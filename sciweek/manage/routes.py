"""Back office: thin routes over manage.services."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from .. import signals
from ..activities.labels import STATUS_LABELS
from ..extensions import db
from ..forms import ConfirmForm
from ..i18n import format_span, to_local
from ..inputs import query_int
from ..models import Activity, Department, Role
from ..permissions import (
    EDITOR_ROLES,
    STAFF_ROLES,
    activities_visible_to,
    managed_activity_or_403,
    roles_required,
)
from ..training.invitations import set_roster_towns
from ..training.services import TrainingError
from ..transactions import all_or_nothing
from .forms import ActivityForm, CancelForm, DepartmentForm, aware
from .services import (
    ActivityData,
    SchedulingError,
    cancel_activity,
    publish_activity,
    save_activity,
    venue_conflicts,
)

bp = Blueprint("manage", __name__)
PER_PAGE = 30


@bp.route("/")
@roles_required(*STAFF_ROLES)
def dashboard():
    stmt = (
        activities_visible_to(current_user)
        .options(selectinload(Activity.sessions))
        .order_by(Activity.updated_at.desc())
    )
    status = request.args.get("status")
    if status in STATUS_LABELS:
        stmt = stmt.where(Activity.status == status)
    page = db.paginate(
        stmt, page=query_int("page") or 1, per_page=PER_PAGE, max_per_page=PER_PAGE, error_out=False
    )
    return render_template(
        "manage/dashboard.html",
        page=page,
        status=status,
    )


def _form_data(form: ActivityForm) -> ActivityData:
    return ActivityData(
        title=form.title.data,
        kind=form.kind.data,
        description=form.description.data or "",
        department_ids=list(form.departments.data or []),
        campaign_id=form.campaign_id.data or None,
        town_id=form.town_id.data or None,
        village_id=form.village_id.data or None,
        venue=form.venue.data or "",
        latitude=float(form.latitude.data) if form.latitude.data is not None else None,
        longitude=float(form.longitude.data) if form.longitude.data is not None else None,
        audience=form.audience.data,
        capacity=form.capacity.data,
        waitlist_enabled=form.waitlist_enabled.data,
        registration_opens_at=aware(form.registration_opens_at.data),
        registration_closes_at=aware(form.registration_closes_at.data),
        sessions=form.session_rows(),
    )


def _save(form: ActivityForm, activity: Activity | None):
    try:
        with all_or_nothing():
            activity = save_activity(activity, _form_data(form), current_user)
            set_roster_towns(
                activity,
                whole_district=bool(form.roster_whole_district.data),
                town_ids=list(form.roster_towns.data or []),
            )
    except (SchedulingError, TrainingError) as exc:
        form.form_errors.append(str(exc))
        return None
    except IntegrityError:
        form.form_errors.append(_("保存失败：数据与其他记录冲突，请检查后重试。"))
        return None
    for conflict in venue_conflicts(activity):
        flash(
            _(
                "注意：场次 %(mine)s 与同一地点的“%(other)s”（%(when)s）时间重叠。",
                mine=format_span(conflict.session.starts_at, conflict.session.ends_at),
                other=conflict.other.activity.title,
                when=format_span(conflict.other.starts_at, conflict.other.ends_at),
            ),
            "warning",
        )
    flash(_("已保存。"), "success")
    return activity


@bp.route("/activities/new", methods=["GET", "POST"])
@roles_required(*EDITOR_ROLES)
def new_activity():
    form = ActivityForm()
    if request.method == "GET" and current_user.department_id:
        form.departments.data = [current_user.department_id]
    if form.validate_on_submit():
        activity = _save(form, None)
        if activity is not None:
            return redirect(url_for("manage.edit_activity", activity_id=activity.id))
    _pad_sessions(form)
    return render_template("manage/activity_form.html", form=form, activity=None)


@bp.route("/activities/<int:activity_id>/edit", methods=["GET", "POST"])
@roles_required(*EDITOR_ROLES)
def edit_activity(activity_id: int):
    activity = managed_activity_or_403(activity_id)
    form = ActivityForm(obj=None if request.method == "POST" else activity)
    if request.method == "GET":
        _fill_form(form, activity)
    elif form.validate_on_submit() and _save(form, activity) is not None:
        return redirect(url_for("manage.edit_activity", activity_id=activity.id))
    _pad_sessions(form)
    return render_template(
        "manage/activity_form.html",
        form=form,
        activity=activity,
        confirm_form=ConfirmForm(),
    )


def _fill_form(form: ActivityForm, activity: Activity) -> None:
    form.departments.data = [d.id for d in activity.departments]
    form.campaign_id.data = activity.campaign_id or 0
    form.town_id.data = activity.town_id or 0
    form.village_id.data = activity.village_id or 0
    form.roster_towns.data = [t.id for t in activity.roster_towns]
    for field in ("registration_opens_at", "registration_closes_at"):
        value = getattr(activity, field)
        getattr(form, field).data = to_local(value).replace(tzinfo=None) if value else None
    while form.sessions.entries:
        form.sessions.pop_entry()
    for session in activity.sessions:
        form.sessions.append_entry(
            {
                "id": str(session.id),
                "starts_at": to_local(session.starts_at).replace(tzinfo=None),
                "ends_at": to_local(session.ends_at).replace(tzinfo=None),
                "credit_hours": session.credit_hours,
                "note": session.note,
            }
        )


def _pad_sessions(form: ActivityForm) -> None:
    """Offer blank rows for new sessions."""
    blanks = sum(1 for e in form.sessions.entries if e.form.is_blank)
    for _i in range(max(0, 2 - blanks)):
        if len(form.sessions.entries) < form.sessions.max_entries:
            form.sessions.append_entry()


@bp.route("/activities/<int:activity_id>/publish", methods=["POST"])
@roles_required(*EDITOR_ROLES)
def publish(activity_id: int):
    activity = managed_activity_or_403(activity_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        with all_or_nothing():
            publish_activity(activity)
        flash(_("已发布。"), "success")
    except SchedulingError as exc:
        flash(str(exc), "error")
    return redirect(url_for("manage.edit_activity", activity_id=activity.id))


@bp.route("/activities/<int:activity_id>/cancel", methods=["GET", "POST"])
@roles_required(*EDITOR_ROLES)
def cancel(activity_id: int):
    activity = managed_activity_or_403(activity_id)
    form = CancelForm()
    if form.validate_on_submit():
        try:
            with all_or_nothing():
                cancel_activity(activity, form.reason.data)
            flash(_("活动已取消，报名者将看到取消信息。"), "success")
            return redirect(url_for("manage.edit_activity", activity_id=activity.id))
        except SchedulingError as exc:
            form.reason.errors.append(str(exc))
    return render_template("manage/cancel.html", form=form, activity=activity)


def _save_department(form: DepartmentForm) -> None:
    department = db.session.scalar(
        select(Department).where(Department.code == form.code.data.strip())
    ) or Department(code=form.code.data.strip())
    old_name = department.name
    department.name = form.name.data.strip()
    department.former_names = (form.former_names.data or "").strip()
    if old_name and old_name != department.name and old_name not in department.former_names:
        department.former_names = "、".join(filter(None, [department.former_names, old_name]))
    db.session.add(department)
    db.session.flush()
    signals.door_access_changed.send(department)


@bp.route("/departments", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def departments():
    form = DepartmentForm()
    if form.validate_on_submit():
        try:
            with all_or_nothing():
                _save_department(form)
            flash(_("已保存。"), "success")
            return redirect(url_for("manage.departments"))
        except IntegrityError:
            form.name.errors.append(_("名称已被其他部门使用。"))
    items = db.session.scalars(select(Department).order_by(Department.id)).all()
    return render_template("manage/departments.html", form=form, departments=items)
