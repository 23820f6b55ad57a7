"""显示完整号码 (POST, CSRF, logged) and the admins' list of reveals."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, url_for
from flask_login import current_user

from ..extensions import db
from ..forms import ConfirmForm
from ..models import Cadre, Registration, Role
from ..permissions import (
    REVEAL_LOG_ROLES,
    can_reveal_cadre_phone,
    can_reveal_registrant_phone,
    roles_required,
)
from . import services

bp = Blueprint("privacy", __name__)


def _revealed(name: str, phone: str, back: str) -> Response:
    response = Response(render_template("privacy/revealed.html", name=name, phone=phone, back=back))
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/manage/registrations/<int:registration_id>/phone", methods=["POST"])
@roles_required(Role.ADMIN, Role.ORGANIZER)
def reveal_registrant(registration_id: int):
    registration = db.get_or_404(Registration, registration_id)
    if not can_reveal_registrant_phone(current_user, registration.activity):
        abort(403)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    phone = services.reveal_registrant_phone(current_user, registration)
    back = url_for("registration.registrants", activity_id=registration.activity_id)
    return _revealed(registration.name, phone, back)


@bp.route("/manage/training/cadres/<int:cadre_id>/phone", methods=["POST"])
@roles_required(Role.ADMIN, Role.COORDINATOR)
def reveal_cadre(cadre_id: int):
    cadre = db.get_or_404(Cadre, cadre_id)
    if not can_reveal_cadre_phone(current_user, cadre.town_id):
        abort(403)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    phone = services.reveal_cadre_phone(current_user, cadre)
    back = url_for("training.roster", town_id=cadre.town_id)
    return _revealed(cadre.name, phone, back)


@bp.route("/manage/phone-reveals")
@roles_required(*REVEAL_LOG_ROLES)
def reveal_log():
    return render_template("privacy/reveals.html", reveals=services.recent_reveals())
