"""Back office: thin routes over manage.services."""

from __future__ import annotations

from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from .. import signals
from ..activities.labels import STATUS_LABELS
from ..checkin.labels import method_label
from ..checkin.paper import (
    PaperEntryRefused,
    enter_paper_sheet,
    paper_entry_refusal,
    parse_row_keys,
    sheet_rows,
)
from ..extensions import db
from ..forms import ConfirmForm, add_error
from ..i18n import format_span, to_local
from ..inputs import query_int
from ..models import Activity, Department, RegistrationStatus, Role, utcnow
from ..permissions import (
    EDITOR_ROLES,
    SIGNIN_SHEET_ROLES,
    STAFF_ROLES,
    activities_visible_to,
    can_print_signin_sheet,
    managed_activity_or_403,
    roles_required,
    session_or_404,
)
from ..placenames import with_former_name
from ..training.invitations import set_roster_towns
from ..training.services import TrainingError
from ..transactions import all_or_nothing
from .dashboard import build_dashboard
from .forms import ActivityForm, CancelForm, DepartmentForm, PaperSheetForm, aware
from .services import (
    ActivityData,
    SchedulingError,
    cancel_activity,
    cancellation_plan,
    publish_activity,
    save_activity,
    venue_conflicts,
)
from .signin_sheet import (
    DEFAULT_BLANK_ROWS,
    MAX_BLANK_ROWS,
    SheetPage,
    SheetUnavailable,
    render_signin_sheet,
    self_checkin_url,
    sheet_file_name,
)

bp = Blueprint("manage", __name__)
FORMER_NAMES_MAX = 200  # departments.former_names
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
        board=build_dashboard(current_user, utcnow()),
        waitlisted_status=RegistrationStatus.WAITLISTED,
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
        sms_verification=bool(form.sms_verification.data),
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
                plan = cancel_activity(activity, form.reason.data)
            flash(_("活动已取消，报名者将看到取消信息。"), "success")
            if plan.held:
                flash(
                    _(
                        "已开始的 %(n)s 个场次保留为已举行，其签到照常计入。",
                        n=len(plan.held),
                    ),
                    "info",
                )
            return redirect(url_for("manage.edit_activity", activity_id=activity.id))
        except SchedulingError as exc:
            form.reason.errors.append(str(exc))
    return render_template(
        "manage/cancel.html",
        form=form,
        activity=activity,
        plan=cancellation_plan(activity, utcnow()),
    )


def _save_department(form: DepartmentForm) -> bool:
    """Add or rename; False (a message beside the field) when the former names, the old
    name added, would not fit their column."""
    department = db.session.scalar(
        select(Department).where(Department.code == form.code.data.strip())
    ) or Department(code=form.code.data.strip())
    new_name = form.name.data.strip()
    history = with_former_name(
        (form.former_names.data or "").strip(), department.name or "", new_name
    )
    if len(history) > FORMER_NAMES_MAX:
        add_error(form.former_names, _("曾用名合计不能超过 %(num)s 个字。", num=FORMER_NAMES_MAX))
        return False
    department.name, department.former_names = new_name, history
    db.session.add(department)
    db.session.flush()
    signals.door_access_changed.send(department)
    return True


@bp.route("/departments", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def departments():
    form = DepartmentForm()
    if form.validate_on_submit():
        try:
            with all_or_nothing():
                saved = _save_department(form)
            if saved:
                flash(_("已保存。"), "success")
                return redirect(url_for("manage.departments"))
        except IntegrityError:
            form.name.errors.append(_("名称已被其他部门使用。"))
    items = db.session.scalars(select(Department).order_by(Department.id)).all()
    return render_template("manage/departments.html", form=form, departments=items)


# --- sessions: the paper 签到表, printed and typed in ------------------------------------


def _sheet_activity_or_403(activity_id: int) -> Activity:
    activity = db.get_or_404(Activity, activity_id)
    if not can_print_signin_sheet(current_user, activity):
        abort(403)
    return activity


@bp.route("/activities/<int:activity_id>/sessions")
@roles_required(*SIGNIN_SHEET_ROLES)
def sessions(activity_id: int):
    activity = _sheet_activity_or_403(activity_id)
    now = utcnow()
    days = current_app.config["SCIWEEK_PAPER_ENTRY_DAYS"]
    return render_template(
        "manage/sessions.html",
        activity=activity,
        now=now,
        entry_refusals={s.id: paper_entry_refusal(s, now, days) for s in activity.sessions},
    )


@bp.route("/sessions/<int:session_id>/signin-sheet.pdf")
@roles_required(*SIGNIN_SHEET_ROLES)
def signin_sheet(session_id: int):
    session = session_or_404(session_id)
    activity = _sheet_activity_or_403(session.activity_id)
    blank = query_int("blank", minimum=0, maximum=MAX_BLANK_ROWS)
    page = SheetPage(
        activity=activity,
        session=session,
        rows=sheet_rows(activity, session),
        blank_rows=DEFAULT_BLANK_ROWS if blank is None else blank,
        self_checkin_url=self_checkin_url(
            session, lambda code: url_for("checkin.self_check_in", code=code)
        ),
        printed_at=utcnow(),
    )
    try:
        pdf = render_signin_sheet(page)
    except SheetUnavailable:
        message = _(
            "本服务器缺少生成 PDF 所需的组件（WeasyPrint、Pango 和中文字体），请联系管理员。"
        )
        return render_template("errors/error.html", code=503, message=message), 503
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f"inline; filename=signin-sheet-{session.id}.pdf; "
        f"filename*=UTF-8''{quote(sheet_file_name(activity, session))}"
    )
    response.headers["Cache-Control"] = "private, no-store"  # names and masked phones
    return response


@bp.route("/sessions/<int:session_id>/paper", methods=["GET", "POST"])
@roles_required(*EDITOR_ROLES)
def paper_entry(session_id: int):
    session = session_or_404(session_id)
    activity = managed_activity_or_403(session.activity_id)
    days = current_app.config["SCIWEEK_PAPER_ENTRY_DAYS"]
    form = PaperSheetForm()
    if form.validate_on_submit():
        ticked = parse_row_keys(form.present.data or [])
        seen = parse_row_keys([k for k in (form.on_paper.data or "").split(",") if k])
        try:
            if ticked is None or seen is None:
                raise PaperEntryRefused(_("提交的名单无效，请刷新页面后重试。"))
            with all_or_nothing():
                result = enter_paper_sheet(current_user, session, ticked, seen, days=days)
        except PaperEntryRefused as exc:
            form.form_errors.append(exc.message)
        else:
            flash(
                _(
                    "已保存：补录签到 %(added)s 人，撤销纸质签到 %(removed)s 人，"
                    "%(kept)s 人此前已签到。",
                    added=result.added,
                    removed=result.removed,
                    kept=result.kept,
                ),
                "success",
            )
            return redirect(url_for("manage.paper_entry", session_id=session.id))
    rows = sheet_rows(activity, session)
    return render_template(
        "manage/paper_entry.html",
        form=form,
        activity=activity,
        session=session,
        rows=rows,
        on_paper=",".join(r.key for r in rows if r.on_paper),
        refusal=paper_entry_refusal(session, utcnow(), days),
        checked_in=sum(1 for r in rows if r.checked_in),
        method_label=method_label,
    )
