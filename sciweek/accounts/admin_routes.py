"""The admins' account pages (/manage/users): list, create, edit, disable, unlock, issue a
set-password link, and the audit log. Thin routes over ``services`` and ``links``."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..forms import ConfirmForm, add_error
from ..identity import is_mobile, mask_phone
from ..inputs import has_unsafe_text, query_int
from ..models import ROLE_VALUES, Department, Town, User, utcnow
from ..permissions import ACCOUNT_ROLES, roles_required
from ..transactions import all_or_nothing
from .audit import audit_page, detail_lines
from .forms import AccountForm, EditAccountForm, LinkForm, NewAccountForm
from .labels import AUDIT_ACTION_LABELS, ROLE_LABELS, role_choices
from .links import LINK_VALID_FOR, SHOWN, IssuedLink, issue_set_password_link
from .services import (
    AccountData,
    AccountError,
    create_user,
    set_user_enabled,
    unlock_user,
    update_user,
)

bp = Blueprint("users", __name__)
PER_PAGE = 50
QUERY_MAX = 64


def _fill_choices(form: AccountForm) -> None:
    form.role.choices = role_choices()
    departments = db.session.scalars(select(Department).order_by(Department.code))
    form.department.choices = [("", "—")] + [(d.code, d.name) for d in departments]
    towns = db.session.scalars(select(Town).order_by(Town.code))
    form.town.choices = [("", "—")] + [(t.code, t.name) for t in towns]


def _account_data(form: AccountForm, user: User | None = None) -> AccountData:
    """The form's values; editing ``user``, an empty phone field keeps their number (the
    form shows it only masked) unless 删除手机号 is ticked."""
    phone = form.phone.data
    if isinstance(form, EditAccountForm) and user is not None and not (phone or "").strip():
        phone = None if form.remove_phone.data else user.phone
    return AccountData(
        role=form.role.data,
        display_name=form.display_name.data or "",
        department_code=form.department.data or None,
        town_code=form.town.data or None,
        email=form.email.data,
        phone=phone,
        must_change_password=isinstance(form, EditAccountForm) and form.must_change_password.data,
    )


def _show_refusal(form, exc: AccountError) -> None:
    field = getattr(form, exc.field, None) if exc.field else None
    if field is None:
        form.form_errors.append(exc.message)
    else:
        add_error(field, exc.message)


def _link_page(user: User, link: IssuedLink) -> Response:
    """The link, shown this once: never cached, never sent on as a Referer."""
    response = Response(
        render_template(
            "users/link.html",
            user=user,
            shown_name=shown_username,
            link=link,
            hours=int(LINK_VALID_FOR.total_seconds() // 3600),
        )
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/")
@roles_required(*ACCOUNT_ROLES)
def index():
    query = (request.args.get("q") or "").strip()[:QUERY_MAX]
    if has_unsafe_text(query):
        query = ""
    role = request.args.get("role") or ""
    stmt = select(User).options(selectinload(User.department), selectinload(User.town))
    if query:
        stmt = stmt.where(
            or_(
                User.username.contains(query, autoescape=True),
                User.display_name.contains(query, autoescape=True),
            )
        )
    if role in ROLE_VALUES:
        stmt = stmt.where(User.role == role)
    else:
        role = ""
    page = db.paginate(
        stmt.order_by(User.is_enabled.desc(), User.role, User.username),
        page=query_int("page") or 1,
        per_page=PER_PAGE,
        error_out=False,
    )
    return render_template(
        "users/index.html",
        page=page,
        query=query,
        role=role,
        ROLE_LABELS=ROLE_LABELS,
        shown_name=shown_username,
        mask_phone=mask_phone,
        now=utcnow(),
    )


def shown_username(user: User | None) -> str:
    """A citizen's account is named by their phone: masked like every phone."""
    if user is None:
        return "—"
    return mask_phone(user.username) if is_mobile(user.username) else user.username


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*ACCOUNT_ROLES)
def new():
    form = NewAccountForm()
    _fill_choices(form)
    if form.validate_on_submit():
        try:
            with all_or_nothing():
                data = _account_data(form)
                user = create_user(
                    form.username.data or "",
                    data.role,
                    None,
                    department_code=data.department_code,
                    town_code=data.town_code,
                    display_name=data.display_name,
                    email=data.email,
                    phone=data.phone,
                    actor=current_user,
                    via="web",
                )
                link = issue_set_password_link(
                    user, actor=current_user, send=form.send.data == "send"
                )
        except AccountError as exc:
            _show_refusal(form, exc)
        except IntegrityError:  # the same name, e-mail or phone, saved a moment before
            add_error(form.username, _("用户名、邮箱或手机号已被其他账号使用，请刷新后重试。"))
        else:
            if link.channel != SHOWN:
                flash(_("账号已创建，设置密码链接已发送给本人。"), "success")
                return redirect(url_for("users.edit", user_id=user.id))
            return _link_page(user, link)
    return render_template("users/form.html", form=form, user=None)


class _Values:
    """An account as the edit form's fields name its values."""

    def __init__(self, user: User):
        self.display_name = user.display_name
        self.role = str(user.role)
        self.department = user.department.code if user.department is not None else ""
        self.town = user.town.code if user.town is not None else ""
        self.email = user.email or ""
        self.phone = ""  # never the full number: the template shows it masked
        self.must_change_password = user.must_change_password


@bp.route("/<int:user_id>", methods=["GET", "POST"])
@roles_required(*ACCOUNT_ROLES)
def edit(user_id: int):
    user = db.get_or_404(User, user_id)
    form = EditAccountForm(obj=None if request.method == "POST" else _Values(user))
    _fill_choices(form)
    if form.validate_on_submit():
        try:
            with all_or_nothing():
                changes = update_user(user, _account_data(form, user), actor=current_user)
        except AccountError as exc:
            _show_refusal(form, exc)
        except IntegrityError:
            add_error(form.email, _("邮箱或手机号已被其他账号使用，请刷新后重试。"))
        else:
            flash(_("已保存。") if changes else _("没有改动。"), "success")
            return redirect(url_for("users.edit", user_id=user.id))
    return render_template(
        "users/form.html",
        form=form,
        user=user,
        link_form=LinkForm(formdata=None),
        confirm=ConfirmForm(),
        now=utcnow(),
        ROLE_LABELS=ROLE_LABELS,
        shown_name=shown_username,
    )


@bp.route("/<int:user_id>/link", methods=["POST"])
@roles_required(*ACCOUNT_ROLES)
def link(user_id: int):
    user = db.get_or_404(User, user_id)
    form = LinkForm()
    if form.validate_on_submit():
        try:
            with all_or_nothing():
                issued = issue_set_password_link(
                    user, actor=current_user, send=form.send.data == "send"
                )
        except AccountError as exc:
            flash(exc.message, "error")
        else:
            if issued.channel == SHOWN:
                return _link_page(user, issued)
            flash(_("设置密码链接已发送给本人，之前的链接已失效。"), "success")
    return redirect(url_for("users.edit", user_id=user.id))


def _account_action(user_id: int, action, done: str):
    user = db.get_or_404(User, user_id)
    if ConfirmForm().validate_on_submit():
        try:
            with all_or_nothing():
                action(user)
        except AccountError as exc:
            flash(exc.message, "error")
        else:
            flash(done, "success")
    return redirect(url_for("users.edit", user_id=user.id))


@bp.route("/<int:user_id>/disable", methods=["POST"])
@roles_required(*ACCOUNT_ROLES)
def disable(user_id: int):
    return _account_action(
        user_id,
        lambda user: set_user_enabled(user, False, actor=current_user),
        _("账号已停用，其登录状态已全部失效。"),
    )


@bp.route("/<int:user_id>/enable", methods=["POST"])
@roles_required(*ACCOUNT_ROLES)
def enable(user_id: int):
    return _account_action(
        user_id, lambda user: set_user_enabled(user, True, actor=current_user), _("账号已启用。")
    )


@bp.route("/<int:user_id>/unlock", methods=["POST"])
@roles_required(*ACCOUNT_ROLES)
def unlock(user_id: int):
    return _account_action(
        user_id, lambda user: unlock_user(user, actor=current_user), _("账号已解锁。")
    )


@bp.route("/audit")
@roles_required(*ACCOUNT_ROLES)
def audit():
    page = audit_page(query_int("page") or 1)
    return render_template(
        "users/audit.html",
        page=page,
        ACTION_LABELS=AUDIT_ACTION_LABELS,
        detail_lines=detail_lines,
        shown_name=shown_username,
    )
