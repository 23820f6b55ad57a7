from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from ..database import reads_only
from ..extensions import limiter
from ..models import Role, User
from .auth import safe_next_url
from .forms import LoginForm
from .services import authenticate

bp = Blueprint("accounts", __name__)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
@reads_only  # checking a password takes 0.1-0.2 s: never while holding SQLite's write lock
def login():
    if current_user.is_authenticated:
        return redirect(safe_next_url(request.args.get("next")) or url_for("activities.index"))
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        user = authenticate(form.username.data.strip(), form.password.data)
        if user is None:
            form.password.errors.append(_("手机号/用户名或密码不正确。"))
        else:
            login_user(user, remember=form.remember.data)
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
