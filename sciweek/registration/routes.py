"""Registering, tickets, citizen accounts and the organizer's registrant list."""

from __future__ import annotations

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
from flask_login import current_user, login_required, login_user

from ..accounts.services import AccountError, create_user
from ..extensions import db, limiter
from ..forms import ConfirmForm, add_error
from ..identity import is_digit_query, phone_tail
from ..links import site_base_url
from ..models import Activity, ActivityStatus, Registration, Role
from ..notifications.verification import VerificationRefused
from ..permissions import EDITOR_ROLES, managed_activity_or_403, roles_required
from ..rate_limits import verification_limit, verification_limit_when_posted
from ..spreadsheets import csv_bytes, xlsx_bytes
from . import device, exports, recovery, services
from .forms import (
    FindTicketForm,
    RecoverAskForm,
    RecoverCodeForm,
    RegistrationForm,
    SignupForm,
)
from .labels import STATUS_LABELS, status_filter_choices, ticket_status_label
from .qr import qr_png, qr_svg
from .tickets import ticket_path, ticket_url

bp = Blueprint("registration", __name__)


@bp.app_context_processor
def inject_labels():
    return {
        "REGISTRATION_STATUS_LABELS": STATUS_LABELS,
        "registration_status_filter_choices": status_filter_choices,
        "ticket_status_label": ticket_status_label,
    }


def registration_rate_limit() -> str:
    return current_app.config["SCIWEEK_REGISTRATION_RATE_LIMIT"]


# Asking for and checking SMS codes, per client address: one budget for every page.
sending_code_limit = verification_limit_when_posted("send_code")


def _ticket_headers(response: Response) -> Response:
    # The secret is in the URL: keep it out of caches and Referer headers.
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/activities/<int:activity_id>/register", methods=["POST"])
@limiter.limit(registration_rate_limit, methods=["POST"])
@sending_code_limit
def register(activity_id: int):
    activity = db.get_or_404(Activity, activity_id)
    if activity.status == ActivityStatus.DRAFT:
        abort(404)
    form = RegistrationForm()
    if activity.sms_verification and "send_code" in request.form:
        return _send_registration_code(activity, form)
    if form.validate_on_submit():
        try:
            issued = services.register_for_activity(
                activity.id,
                services.RegistrationRequest(
                    name=form.name.data,
                    phone=form.phone.data,
                    town_id=form.town_id.data or None,
                    village_id=form.village_id.data or None,
                    user_id=current_user.id if current_user.is_authenticated else None,
                    submission=form.submission.data or None,
                    verification_code=form.verification_code.data or None,
                ),
            )
        except VerificationRefused as exc:
            # 200: the wrong try is committed (it counts against the code's tries).
            add_error(form.verification_code, exc.message)
            return _detail_with_form(activity, form)
        except services.AlreadyRegistered as exc:
            form.phone.errors.append(exc.message)
            return _detail_with_form(activity, form, already=True), 409
        except services.RegistrationRefused as exc:
            target = getattr(form, exc.field, None) if exc.field else None
            (target.errors if target is not None else form.form_errors).append(exc.message)
            return _detail_with_form(activity, form), 422
        return redirect(ticket_path(issued.secret), code=303)
    return _detail_with_form(activity, form), 422


def _detail_with_form(
    activity: Activity, form: RegistrationForm, already: bool = False, code_sent: bool = False
) -> str:
    return render_template(
        "activities/detail.html",
        activity=activity,
        register_form=form.load_choices(),
        already_registered=already,
        registration_problem=services.registration_open_problem(activity),
        verification_code_sent=code_sent,
    )


def _send_registration_code(activity: Activity, form: RegistrationForm):
    """报名需短信验证: the "发送验证码" button of the registration form."""
    if not form.phone.validate(form):
        return _detail_with_form(activity, form), 422
    try:
        services.send_registration_code(activity, form.phone.data or "")
    except services.RegistrationRefused as exc:
        form.form_errors.append(exc.message)
        return _detail_with_form(activity, form), 422
    except VerificationRefused as exc:
        add_error(form.verification_code, exc.message)
        return _detail_with_form(activity, form), 429
    return _detail_with_form(activity, form, code_sent=True)


def _registration_or_gone(secret: str) -> Registration:
    """An old link of a re-issued ticket (its page, QR images, cancel page) is gone (410), its
    page saying that a newer one exists and how to get it; a secret never issued is not found."""
    registration = services.registration_by_secret(secret)
    if registration is None:
        if services.replaced_ticket(secret) is None:
            abort(404)
        page = render_template("registration/ticket_replaced.html")
        abort(_ticket_headers(Response(page, status=410)))
    return registration


@bp.route("/t/<secret>")
def ticket(secret: str):
    registration = _registration_or_gone(secret)
    response = Response(
        render_template(
            "registration/ticket.html",
            registration=registration,
            activity=registration.activity,
            status=registration.effective_status,
            position=services.waitlist_position(registration),
            secret=secret,
            url=ticket_url(site_base_url(), secret),
        )
    )
    # This device now holds the ticket: proof for self check-in (checkin/routes.py).
    device.remember_ticket(response, registration.id)
    return _ticket_headers(response)


@bp.route("/t/<secret>/qr.png")
def ticket_qr_png(secret: str):
    _registration_or_gone(secret)
    data = qr_png(ticket_url(site_base_url(), secret))
    return _ticket_headers(Response(data, mimetype="image/png"))


@bp.route("/t/<secret>/qr.svg")
def ticket_qr_svg(secret: str):
    _registration_or_gone(secret)
    data = qr_svg(ticket_url(site_base_url(), secret))
    return _ticket_headers(Response(data, mimetype="image/svg+xml"))


@bp.route("/t/<secret>/cancel", methods=["GET", "POST"])
def cancel_ticket(secret: str):
    registration = _registration_or_gone(secret)
    form = ConfirmForm()
    if not registration.is_active:
        flash(_("此报名已取消。"), "info")
        return redirect(ticket_path(secret))
    if form.validate_on_submit():
        try:
            services.cancel_registration(registration.id)
            flash(_("已取消报名。"), "success")
        except services.RegistrationRefused as exc:
            flash(exc.message, "error")
        return redirect(ticket_path(secret), code=303)
    response = Response(
        render_template(
            "registration/cancel.html", registration=registration, form=form, secret=secret
        )
    )
    return _ticket_headers(response)


@bp.route("/tickets/find", methods=["GET", "POST"])
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
def find_ticket():
    form = FindTicketForm()
    if form.validate_on_submit():
        registration = services.find_ticket(form.phone.data, form.short_code.data)
        if registration is None:
            form.short_code.errors.append(_("没有找到与此手机号和票码对应的报名。"))
        else:
            secret = services.reissue_ticket(registration)
            flash(_("已重新生成电子票，之前保存的二维码已失效。"), "info")
            return redirect(ticket_path(secret), code=303)
    return render_template("registration/find.html", form=form)


@bp.route("/tickets/recover", methods=["GET", "POST"])
@verification_limit
def recover_tickets():
    """找回我的票, step 1: the phone; a code is sent when it has active tickets (the
    page answers alike either way)."""
    form = RecoverAskForm()
    if request.method == "GET":
        return render_template("registration/recover.html", form=form)
    if not form.validate_on_submit():
        return render_template("registration/recover.html", form=form), 422
    try:
        recovery.ask_for_code(form.phone.data)
    except VerificationRefused as exc:
        add_error(form.phone, exc.message)
        return render_template("registration/recover.html", form=form), 429
    code_form = RecoverCodeForm(formdata=None, phone=form.phone.data)
    return render_template("registration/recover_code.html", form=code_form)


@bp.route("/tickets/recover/code", methods=["POST"])
@verification_limit
def recover_tickets_code():
    """找回我的票, step 2: the code; every active ticket is re-issued and shown."""
    form = RecoverCodeForm()
    if not form.validate_on_submit():
        if form.phone.errors:
            return redirect(url_for("registration.recover_tickets"))
        return render_template("registration/recover_code.html", form=form), 422
    try:
        tickets = recovery.recover_tickets(form.phone.data, form.code.data)
    except VerificationRefused as exc:
        # 200: the wrong try is committed (it counts against the code's tries).
        add_error(form.code, exc.message)
        return render_template("registration/recover_code.html", form=form)
    page = render_template("registration/recovered.html", tickets=tickets)
    return _ticket_headers(Response(page))


@bp.route("/account/signup", methods=["GET", "POST"])
@limiter.limit("10 per minute; 30 per hour", methods=["POST"])
def signup():
    if current_user.is_authenticated:
        return redirect(url_for("registration.my_registrations"))
    form = SignupForm()
    if form.validate_on_submit():
        try:  # (refuses before writing; it hashes before its first query, see database)
            user = create_user(
                form.phone.data,
                Role.CITIZEN,
                form.password.data,
                display_name=(form.display_name.data or "").strip() or form.phone.data[-4:],
            )
        except AccountError as exc:
            if exc.field == "password":  # one of the most common passwords
                form.password.errors.append(exc.message)
            else:
                form.phone.errors.append(_("此手机号已注册，请直接登录。"))
        else:
            login_user(user)
            flash(_("注册成功。之后登录状态下的报名都会出现在“我的报名”中。"), "success")
            return redirect(url_for("registration.my_registrations"))
    return render_template("registration/signup.html", form=form)


@bp.route("/my/registrations")
@login_required
def my_registrations():
    items = services.registrations_of_user(current_user.id)
    return render_template(
        "registration/mine.html",
        items=items,
        waitlist_position=services.waitlist_position,
        confirm_form=ConfirmForm(),
    )


@bp.route("/my/registrations/<int:registration_id>/ticket", methods=["POST"])
@login_required
def my_ticket(registration_id: int):
    """Show the ticket of one's own registration (a fresh secret: only hashes are kept)."""
    registration = db.get_or_404(Registration, registration_id)
    if registration.user_id != current_user.id:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    secret = services.reissue_ticket(registration)
    return redirect(ticket_path(secret), code=303)


# --- organizer view -------------------------------------------------------


@bp.route("/manage/activities/<int:activity_id>/registrations")
@roles_required(*EDITOR_ROLES)
def registrants(activity_id: int):
    activity = managed_activity_or_403(activity_id)
    query = (request.args.get("q") or "").strip()[:50]
    status = request.args.get("status") or None
    rows = services.list_registrants(activity.id, query=query, status=status)
    return render_template(
        "registration/registrants.html",
        activity=activity,
        rows=rows,
        counts=services.registrant_counts(activity.id),
        query=query,
        # Digits that are not a phone's last four match nothing: say why.
        tail_hint=is_digit_query(query) and phone_tail(query) is None,
        status=status,
        show_full_phone=current_user.is_admin,
        confirm_form=ConfirmForm(),
    )


@bp.route("/manage/activities/<int:activity_id>/registrations.<fmt>")
@roles_required(*EDITOR_ROLES)
def export_registrants(activity_id: int, fmt: str):
    if fmt not in ("csv", "xlsx"):
        abort(404)
    activity = managed_activity_or_403(activity_id)
    full = current_user.is_admin and request.args.get("full_phone") == "1"
    header, rows = exports.registrant_table(activity, full_phone=full)
    filename = f"registrations-{activity.id}.{fmt}"
    if fmt == "csv":
        body, mimetype = csv_bytes(header, rows), "text/csv; charset=utf-8"
    else:
        body = xlsx_bytes("报名名单", header, rows)
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/manage/registrations/<int:registration_id>/cancel", methods=["POST"])
@roles_required(*EDITOR_ROLES)
def organizer_cancel(registration_id: int):
    registration = db.get_or_404(Registration, registration_id)
    managed_activity_or_403(registration.activity_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        promoted = services.cancel_registration(registration.id, by_staff=True)
        message = _("已取消该报名。")
        if promoted is not None:
            message += " " + _("候补的 %(name)s 已转为正式报名。", name=promoted.name)
        flash(message, "success")
    except services.RegistrationRefused as exc:
        flash(exc.message, "error")
    return redirect(url_for("registration.registrants", activity_id=registration.activity_id))
