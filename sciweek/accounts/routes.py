from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..database import reads_only
from ..extensions import limiter
from ..forms import add_error
from ..models import Role, User
from ..rate_limits import verification_limit
from .auth import safe_next_url
from .forms import (
    ChangePasswordForm,
    ForgotPasswordForm,
    LoginForm,
    ResetPasswordForm,
    SetPasswordForm,
)
from .links import use_set_password_link, user_of_link
from .reset import request_password_reset, reset_password_with_code
from .services import AccountError, LoginRefused, authenticate, change_own_password

bp = Blueprint("accounts", __name__)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
@reads_only  # checking a password takes 0.1-0.2 s: never while holding SQLite's write lock
def login():
    if current_user.is_authenticated:
        return redirect(safe_next_url(request.args.get("next")) or url_for("activities.index"))
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        try:  # (a failed log-in is counted after the check: authenticate begins the write)
            user = authenticate(form.username.data.strip(), form.password.data)
        except LoginRefused as exc:
            add_error(form.password, exc.message)
        else:
            login_user(user, remember=form.remember.data)
            if user.must_change_password:
                return redirect(url_for("accounts.change_password"))
            return redirect(safe_next_url(form.next.data) or _landing_page(user))
    return render_template("accounts/login.html", form=form)


def _landing_page(user: User) -> str:
    """Where a log-in without ``next`` leads: checkers work only at the door, so to the
    check-in list; other staff to the back office; everyone else to the activities."""
    if user.role == Role.CHECKER:
        return url_for("checkin.door_activities")
    return url_for("manage.dashboard") if user.is_staff else url_for("activities.index")


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
    flash(_("已退出登录。"), "info")
    return redirect(url_for("activities.index"))


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
@reads_only  # two password hashes: the service takes the write lock after them
def change_password():
    """Everyone's own password (the current one required); where a forced change leads."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            user = change_own_password(current_user, form.current.data, form.password.data)
        except AccountError as exc:
            add_error(getattr(form, exc.field or "password"), exc.message)
        else:
            login_user(user)  # the change ended every session of the account, this one too
            flash(_("密码已修改。"), "success")
            return redirect(_landing_page(user))
    return render_template(
        "accounts/change_password.html", form=form, forced=current_user.must_change_password
    )


def _no_referrer(response: Response) -> Response:
    """The set-password link's token must not leave in a Referer header."""
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/password/set/<token>", methods=["GET", "POST"])
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
@reads_only  # hashes first: the service takes the write lock after
def set_password(token: str):
    """The one-time set-password link; works without logging in."""
    user = user_of_link(token)
    if user is None:
        page = render_template("accounts/set_password.html", form=None, user=None)
        return _no_referrer(Response(page, status=404))
    form = SetPasswordForm()
    if form.validate_on_submit():
        try:
            user = use_set_password_link(token, form.password.data or "")
        except AccountError as exc:
            add_error(form.password, exc.message)
        else:
            if current_user.is_authenticated:
                logout_user()
            flash(_("密码已设置，请用新密码登录。"), "success")
            return redirect(url_for("accounts.login"))
    page = render_template("accounts/set_password.html", form=form, user=user)
    return _no_referrer(Response(page))


@bp.route("/password/forgot", methods=["GET", "POST"])
@verification_limit
def forgot_password():
    """忘记密码, step 1: the user name or phone; the answer is the same for every account,
    existing or not."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        request_password_reset(form.identifier.data)
        code_form = ResetPasswordForm(formdata=None, identifier=form.identifier.data.strip())
        return render_template("accounts/reset_password.html", form=code_form)
    return render_template("accounts/forgot_password.html", form=form)


@bp.route("/password/reset", methods=["POST"])
@verification_limit
@reads_only  # hashes first: the service takes the write lock after
def reset_password():
    """忘记密码, step 2: the code and a new password. A wrong code counts a try, so a
    refusal is a page (status 200: the try commits)."""
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            reset_password_with_code(form.identifier.data, form.code.data, form.password.data)
        except AccountError as exc:
            add_error(getattr(form, exc.field or "code"), exc.message)
        else:
            flash(_("密码已重设，请用新密码登录。"), "success")
            return redirect(url_for("accounts.login"))
    elif form.identifier.errors:
        return redirect(url_for("accounts.forgot_password"))
    return render_template("accounts/reset_password.html", form=form)
