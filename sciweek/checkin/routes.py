"""Check-in at the door: the JSON API, the phone scanner, self check-in, tokens, checkers.

URLs (no blueprint prefix):
  POST /api/v1/checkins                          scan a ticket (docs/checkin_api.md)
  POST /api/v1/checkins/<id>/undo                take a check-in back (organizers)
  GET  /api/v1/activities/<id>/roster            hashes and names for offline scanning
  POST /api/v1/activities/<id>/walk-ins          register at the door and check in
  POST /api/v1/activities/<id>/over-capacity     admit a waitlisted person beyond capacity
  GET  /manage/checkin                           activities this user may check in for
  GET  /manage/activities/<id>/scan              the phone scanner page
  GET  /manage/activities/scan-sw.js             its service worker (offline)
  GET  /manage/activities/<id>/sessions/<sid>/projector    rotating self check-in QR
  GET  /manage/activities/<id>/sessions/<sid>/self-code    the current code, JSON
  GET  /manage/activities/<id>/sessions/<sid>/counts       the live counter, JSON
  GET|POST /checkin/self/<code>                  a participant checks themself in
  POST /checkin/self/<code>/sms-code             a roster cadre asks for an SMS code for it
  GET|POST /manage/tokens                        API tokens of the logged-in user
  GET|POST /manage/activities/<id>/checkers      assign checkers (organizers)
"""

from __future__ import annotations

import base64
import json
import os
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from wtforms import ValidationError

from ..api import ApiError, invalid, json_body
from ..extensions import csrf, db, limiter
from ..forms import ConfirmForm, add_error
from ..inputs import query_int
from ..links import site_base_url, site_base_urls
from ..models import (
    Activity,
    ActivitySession,
    ApiToken,
    CheckIn,
    ScanResult,
    User,
    utcnow,
)
from ..notifications.verification import VerificationRefused
from ..permissions import (
    DOOR_ROLES,
    EDITOR_ROLES,
    can_admit_over_capacity,
    can_check_in,
    can_manage_activity,
    can_override_checkin_window,
    managed_activity_or_403,
    roles_required,
)
from ..rate_limits import verification_limit, verification_limit_when_posted
from ..registration import device
from ..registration.qr import qr_png
from ..registration.services import RegistrationRefused
from ..security import allow_camera
from ..transactions import all_or_nothing
from . import roster_door, services, windows
from .codes import SELF_CODE_SLOT_SECONDS, make_self_code
from .fast import DoorUser
from .forms import (
    ApiTokenForm,
    CadreSelfCheckInForm,
    CadreSmsCodeForm,
    CheckerForm,
    HeldTicketForm,
    SelfCheckInForm,
)
from .schemas import OverCapacityBody, ScanBody, WalkInBody

bp = Blueprint("checkin", __name__)

API_MAX_BODY = 4 * 1024
# How often the projector's counter asks for the live counts.
PROJECTOR_COUNTS_SECONDS = 5


def self_checkin_rate_limit() -> str:
    return current_app.config["SCIWEEK_SELF_CHECKIN_RATE_LIMIT"]


# --- API plumbing ---------------------------------------------------------------


def _api_user(*, cached: bool = False) -> User | DoorUser | None:
    """The bearer token's user, or the logged-in user (whose writes need X-CSRFToken).

    ``cached``: a token's user may come from the scan's per-process cache, as a
    ``DoorUser`` snapshot (``services.door_user_for_token``).
    """
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _sep, raw = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        if cached:
            return services.door_user_for_token(raw.strip())
        return services.user_for_token(raw.strip())
    if not current_user.is_authenticated:
        return None
    if request.method not in ("GET", "HEAD", "OPTIONS") and current_app.config.get(
        "WTF_CSRF_ENABLED", True
    ):
        try:
            validate_csrf(request.headers.get("X-CSRFToken"))
        except ValidationError as exc:
            raise CSRFError(exc.args[0]) from None
    return current_user._get_current_object()


def api_view(view=None, *, cached_user: bool = False):
    """JSON API view: small bodies only; bearer token or session (+ CSRF header) auth.

    ``cached_user``: the token's user may come from the scan's per-process cache (on the
    PostgreSQL fast path); the view then may get a ``DoorUser``.
    """
    if view is None:
        return lambda v: api_view(v, cached_user=cached_user)

    @wraps(view)
    def wrapped(*args, **kwargs):
        if request.content_length is not None and request.content_length > API_MAX_BODY:
            abort(413)
        request.max_content_length = API_MAX_BODY  # also bounds chunked bodies
        user = _api_user(cached=cached_user)
        if user is None:
            raise _unauthorized()
        g.api_user = user
        try:
            return view(*args, **kwargs)
        except services.CheckInProblem as exc:
            raise _problem(exc) from None

    # Token requests carry no cookie to forge; session requests are checked in _api_user.
    return csrf.exempt(wrapped)


def _unauthorized() -> ApiError:
    return ApiError("unauthorized", _("请先登录或提供有效的 API 令牌。"), status=401)


def _problem(exc: services.CheckInProblem) -> ApiError:
    extra: dict[str, Any] = {"sessions": exc.sessions} if exc.sessions is not None else {}
    if exc.field is not None:
        return ApiError("invalid", exc.message, field=exc.field, fields={exc.field: exc.message})
    return ApiError(exc.kind, exc.message, **extra)


def _door_activity(activity_id: int, user: User) -> Activity:
    # Sessions come in the same query: every scan needs them to pick the session.
    activity = db.session.get(Activity, activity_id, options=[joinedload(Activity.sessions)])
    if activity is None:
        abort(404)
    if not can_check_in(user, activity):
        abort(403)
    return activity


# --- API ---------------------------------------------------------------------------


@limiter.request_filter
def _is_a_scan() -> bool:
    """No per-address limit on scans: a door's phones usually share the venue's one address,
    and a scan needs a staff token (docs/checkin_api.md). As a request filter (rather than
    ``limiter.exempt``, which still resolves the URL's limits) Flask-Limiter skips a scan at
    once: it cost a tenth of a scan's Python time while finding no limit."""
    return request.endpoint == "checkin.api_check_in"


@bp.route("/api/v1/checkins", methods=["POST"])
@api_view(cached_user=True)
def api_check_in():
    body = json_body(ScanBody)
    try:
        answer = services.scan(
            g.api_user,
            body.activity_id,
            body.code,
            base_url=site_base_urls(),
            session_id=body.session_id,
            nonce=body.nonce,
            scanned_at=body.scanned_at,
            override_reason=body.override_reason,
        )
    except services.NoSuchActivity:
        abort(404)
    except services.ScanNotAllowed:
        abort(403)
    except services.OverrideNotAllowed:
        raise override_forbidden() from None
    except services.UnknownUser:
        raise _unauthorized() from None
    return jsonify(answer.as_json())


def override_forbidden() -> ApiError:
    return ApiError("forbidden", _("只有本活动的组织者可以在签到时间以外签到。"), status=403)


@bp.route("/api/v1/checkins/<int:checkin_id>/undo", methods=["POST"])
@api_view
def api_undo_check_in(checkin_id: int):
    checkin = db.session.get(CheckIn, checkin_id)
    if checkin is None:
        abort(404)
    if not can_manage_activity(g.api_user, checkin.registration.activity):
        abort(403)
    return jsonify(services.undo_check_in(checkin, g.api_user).as_json())


@bp.route("/api/v1/activities/<int:activity_id>/roster")
@api_view
def api_roster(activity_id: int):
    activity = _door_activity(activity_id, g.api_user)
    response = jsonify(roster_door.add_roster_cadres(services.roster(activity), activity))
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/api/v1/activities/<int:activity_id>/walk-ins", methods=["POST"])
@api_view
def api_walk_in(activity_id: int):
    body = json_body(WalkInBody)
    activity = _door_activity(activity_id, g.api_user)
    if body.over_capacity and not can_admit_over_capacity(g.api_user, activity):
        abort(403)
    if body.no_phone and body.phone.strip():
        raise invalid({"phone": _("选择了“无手机”，就不要填写手机号。")})
    session = services.pick_session(activity, body.session_id, utcnow())
    person = services.WalkIn(
        name=body.name, phone=None if body.no_phone else body.phone, village_id=body.village_id
    )
    try:
        answer = services.admit_walk_in(
            g.api_user,
            activity,
            session,
            person,
            nonce=body.nonce,
            over_capacity=body.over_capacity,
            override_reason=body.override_reason,
        )
    except services.OverrideNotAllowed:
        raise override_forbidden() from None
    except RegistrationRefused as exc:
        raise _refused(exc) from None
    return jsonify(answer.as_json())


@bp.route("/api/v1/activities/<int:activity_id>/over-capacity", methods=["POST"])
@api_view
def api_admit_over_capacity(activity_id: int):
    body = json_body(OverCapacityBody)
    activity = _door_activity(activity_id, g.api_user)
    if not can_admit_over_capacity(g.api_user, activity):
        abort(403)
    session = services.pick_session(activity, body.session_id, utcnow())
    try:
        answer = services.admit_registration_over_capacity(
            g.api_user,
            activity,
            session,
            body.registration_id,
            nonce=body.nonce,
            override_reason=body.override_reason,
        )
    except services.OverrideNotAllowed:
        raise override_forbidden() from None
    except services.NoSuchRegistration:
        abort(404)
    except RegistrationRefused as exc:
        raise _refused(exc) from None
    return jsonify(answer.as_json())


def _refused(exc: RegistrationRefused) -> ApiError:
    if exc.field:
        return invalid({exc.field: exc.message})
    return ApiError("registration_refused", exc.message)


# --- scanner page -----------------------------------------------------------------------


def _door_activity_or_403(activity_id: int) -> Activity:
    return _door_activity(activity_id, current_user)


def _activity_session_or_404(activity: Activity, session_id: int) -> ActivitySession:
    for session in activity.sessions:
        if session.id == session_id:
            return session
    abort(404)


@bp.route("/manage/checkin")
@roles_required(*DOOR_ROLES)
def door_activities():
    # The door's week first (today and the next 7 days), then later sessions; sessions that
    # are over only on ?when=past.
    if request.args.get("when") == "past":
        past = services.door_sessions_past(current_user, utcnow())
        return render_template("checkin/index.html", past=past)
    week, later = services.door_sessions_ahead(current_user, utcnow())
    return render_template("checkin/index.html", week=week, later=later)


@bp.route("/manage/activities/<int:activity_id>/scan")
@roles_required(*DOOR_ROLES)
def scanner(activity_id: int):
    activity = _door_activity_or_403(activity_id)
    texts = {
        ScanResult.OK: _("签到成功"),
        ScanResult.ALREADY_CHECKED_IN: _("已签到"),
        "already_at": _("已于 {time} 签到"),
        ScanResult.INVALID: _("无效票码"),
        ScanResult.WRONG_ACTIVITY: _("不是本活动的票"),
        ScanResult.CANCELLED: _("报名已取消"),
        ScanResult.WAITLISTED: _("候补中，尚未确认名额"),
        ScanResult.UNDONE: _("已撤销签到"),
        ScanResult.NOT_NOW: _("不在签到时间"),
        "override_note": _("仍然签到：{reason}"),
        "offline_pending": _("离线 — {n} 条待同步"),
        "online": _("在线"),
        "synced": _("已同步"),
        "offline_decided": _("离线判断，联网后同步"),
        "not_in_roster": _("名单中没有此票"),
        "camera_failed": _("无法打开摄像头，请用扫码枪或手动输入票码。"),
        "camera_starting": _("正在打开摄像头…"),
        "choose_session": _("请选择场次"),
        "walk_in_offline": _("离线时不能现场报名，请联网后再试。"),
        "check_in": _("签到"),
        "undo": _("撤销"),
        "undo_confirm": _("确定撤销这次签到？"),
        "error": _("出错了，请重试。"),
        "conflict": _("另一台设备已先签到（{time}）"),
        "no_match": _("没有找到"),
        "tail_hint": _("手机号请输入后 4 位或完整号码；身份证号请输入后 4 位。"),
        "roster_cadre": _("花名册"),
        "no_phone": _("无手机"),
        "roster_loaded": _("名单已下载：{n} 人，{time}"),
        "admit": _("超额签到"),
        "admit_confirm": _("名额已满。现场确有空座，超额签到此人？"),
        "over_count": _("+超额 {n}"),
        "choose_village": _("请选择村/社区。"),
    }
    now = utcnow()
    can_override = can_override_checkin_window(current_user, activity)
    config = {
        "activityId": activity.id,
        # With each session's not_now messages, for scans the page answers offline.
        "sessions": [
            {**services.session_choice(s), "not_now": windows.not_now_messages(s, now)}
            for s in activity.sessions
        ],
        "checkinWindow": windows.checkin_window().settings(),
        "sessionId": query_int("session"),
        "baseUrls": list(site_base_urls()),
        "urls": {
            "checkin": url_for("checkin.api_check_in"),
            "roster": url_for("checkin.api_roster", activity_id=activity.id),
            "walkIn": url_for("checkin.api_walk_in", activity_id=activity.id),
            "rosterCheckin": url_for("roster_door.api_roster_check_in", activity_id=activity.id),
            "undo": url_for("checkin.api_undo_check_in", checkin_id=0).replace("/0/", "/{id}/"),
            "overCapacity": url_for("checkin.api_admit_over_capacity", activity_id=activity.id),
            "serviceWorker": url_for("checkin.scanner_service_worker"),
        },
        "canUndo": can_manage_activity(current_user, activity),
        "canOverride": can_override,
        "canAdmitOverCapacity": can_admit_over_capacity(current_user, activity),
        "csrfToken": generate_csrf(),
        "userId": current_user.id,
        "texts": texts,
    }
    response = Response(
        render_template(
            "checkin/scanner.html",
            activity=activity,
            config=json.dumps(config),
            can_override=can_override,
            # None where walk-ins without a phone are not taken (trainings).
            village_choices=services.village_choices(activity)
            if services.walk_ins_without_phone_allowed(activity)
            else None,
        )
    )
    response.headers["Cache-Control"] = "private, no-cache"
    return allow_camera(response)


@bp.route("/manage/activities/scan-sw.js")
def scanner_service_worker():
    # Served from here, not /static/, so its scope covers /manage/activities/<id>/scan.
    response = send_from_directory(
        os.path.join(current_app.static_folder, "js"), "scanner-sw.js", max_age=0
    )
    response.headers["Content-Type"] = "text/javascript; charset=utf-8"
    response.headers["Service-Worker-Allowed"] = "/manage/activities/"
    response.headers["Cache-Control"] = "no-cache"
    return response


# --- self check-in ------------------------------------------------------------------------


def _self_code_url(session: ActivitySession) -> str:
    code = make_self_code(current_app.config["SECRET_KEY"], session.id, utcnow().timestamp())
    return site_base_url() + url_for("checkin.self_check_in", code=code)


@bp.route("/manage/activities/<int:activity_id>/sessions/<int:session_id>/projector")
@roles_required(*DOOR_ROLES)
def projector(activity_id: int, session_id: int):
    activity = _door_activity_or_403(activity_id)
    session = _activity_session_or_404(activity, session_id)
    return render_template(
        "checkin/projector.html",
        activity=activity,
        session=session,
        code_url=url_for("checkin.self_code", activity_id=activity.id, session_id=session.id),
        slot_seconds=SELF_CODE_SLOT_SECONDS,
        counts_url=url_for(
            "checkin.session_counts", activity_id=activity.id, session_id=session.id
        ),
        counts_seconds=PROJECTOR_COUNTS_SECONDS,
    )


@bp.route("/manage/activities/<int:activity_id>/sessions/<int:session_id>/counts")
@roles_required(*DOOR_ROLES)
def session_counts(activity_id: int, session_id: int):
    """The live counter alone, for the projector to poll every few seconds."""
    activity = _door_activity_or_403(activity_id)
    session = _activity_session_or_404(activity, session_id)
    response = jsonify(services.session_counts(activity, session.id))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/manage/activities/<int:activity_id>/sessions/<int:session_id>/self-code")
@roles_required(*DOOR_ROLES)
def self_code(activity_id: int, session_id: int):
    activity = _door_activity_or_403(activity_id)
    session = _activity_session_or_404(activity, session_id)
    url = _self_code_url(session)
    qr = "data:image/png;base64," + base64.b64encode(qr_png(url)).decode()
    counts = services.session_counts(activity, session.id)
    response = jsonify(url=url, qr=qr, refresh_seconds=SELF_CODE_SLOT_SECONDS, counts=counts)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/checkin/self/<code>", methods=["GET", "POST"])
@limiter.limit(self_checkin_rate_limit, methods=["POST"])
@verification_limit_when_posted("sms-code")
def self_check_in(code: str):
    try:
        session = _self_check_in_session(code)
    except services.SelfCheckInRefused as exc:
        return render_template("checkin/self.html", problem=exc.message, form=None), 400
    # Three kinds of form on one page: a button per ticket held here, phone and short code,
    # and (trainings with a roster) a roster cadre's phone with the ID number's last 6 or
    # with an SMS code.
    posted = _posted_self_check_in()
    page = _SelfCheckInPage(session, code, posted)
    proof = _self_check_in_proof(posted, page)
    if posted is not None and proof is None:
        page.status = 400
    if proof is not None:
        try:
            page.answer = _check_in_self(session, proof)
        except VerificationRefused as exc:
            # 200: the wrong try is committed (it counts against the code's tries).
            add_error(page.sms_form.code, exc.message)
        except services.SelfCheckInRefused as exc:
            page.refused(exc)
    return page.render()


@bp.route("/checkin/self/<code>/sms-code", methods=["POST"])
@limiter.limit(self_checkin_rate_limit, methods=["POST"])
@verification_limit
def self_check_in_sms_code(code: str):
    """The "发送验证码" button of a roster cadre's SMS self check-in form: the same page
    again, answering alike whether or not the phone is an invited cadre's."""
    try:
        session = _self_check_in_session(code)
    except services.SelfCheckInRefused as exc:
        return render_template("checkin/self.html", problem=exc.message, form=None), 400
    if not session.activity.invites_roster:
        abort(404)
    page = _SelfCheckInPage(session, code, "sms")
    if not page.sms_form.phone.validate(page.sms_form):  # (the code is not typed yet)
        page.status = 400
        return page.render()
    try:
        roster_door.send_self_check_in_code(session, page.sms_form.phone.data or "")
    except services.SelfCheckInRefused as exc:
        page.refused(exc)
    except VerificationRefused as exc:
        add_error(page.sms_form.phone, exc.message)
        page.status = 429
    else:
        page.sms_sent = True
    return page.render()


def _self_check_in_session(code: str) -> ActivitySession:
    return services.self_code_session(current_app.config["SECRET_KEY"], code, utcnow())


class _SelfCheckInPage:
    """The self check-in page and its forms, the posted one bound to the request."""

    def __init__(self, session: ActivitySession, code: str, posted: str | None):
        self.session = session
        self.code = code
        self.posted = posted
        self.held = services.tickets_held_for(session.activity, device.tickets_on_device())
        self.form = SelfCheckInForm() if posted == "ticket" else SelfCheckInForm(formdata=None)
        self.cadre_form = (
            CadreSelfCheckInForm(prefix="cadre")
            if posted == "cadre"
            else CadreSelfCheckInForm(None, prefix="cadre")
        )
        self.sms_form = (
            CadreSmsCodeForm(prefix="sms")
            if posted == "sms"
            else CadreSmsCodeForm(None, prefix="sms")
        )
        self.answer: services.ScanAnswer | None = None
        self.problem: str | None = None
        self.sms_sent = False
        self.status = 200

    def refused(self, exc: services.SelfCheckInRefused) -> None:
        posted_form = {"cadre": self.cadre_form, "sms": self.sms_form}.get(
            self.posted or "", self.form
        )
        target = getattr(posted_form, exc.field, None) if exc.field else None
        if target is not None:
            add_error(target, exc.message)
        else:
            self.problem = exc.message
        self.status = 400

    def render(self) -> tuple[str, int]:
        return (
            render_template(
                "checkin/self.html",
                form=self.form,
                cadre_form=self.cadre_form,
                sms_form=self.sms_form,
                posted=self.posted,
                sms_sent=self.sms_sent,
                self_url=url_for("checkin.self_check_in", code=self.code),
                sms_code_url=url_for("checkin.self_check_in_sms_code", code=self.code),
                held=self.held,
                session=self.session,
                activity=self.session.activity,
                answer=self.answer,
                refusal=self.problem,
                # Outside the session's check-in window the page says when it is, not a form.
                outside=windows.not_now(self.session, utcnow()),
            ),
            self.status,
        )


def _posted_self_check_in() -> str | None:
    """Which self check-in form was sent: ``held``, ``cadre``, ``sms``, ``ticket``; None
    for a GET."""
    if request.method != "POST":
        return None
    if "registration_id" in request.form:
        return "held"
    if "cadre-id_tail" in request.form:
        return "cadre"
    if "sms-code" in request.form:
        return "sms"
    return "ticket"


def _self_check_in_proof(
    posted: str | None, page: _SelfCheckInPage
) -> services.SelfCheckInProof | roster_door.CadreProof | None:
    """The proof the posted form holds, or None (a form with errors, or a GET)."""
    if posted == "held":
        held_form = HeldTicketForm()
        held_form.validate()  # a tampered id reads as None, and is refused as not held
        return services.HeldTicket(
            held_form.registration_id.data, frozenset(r.id for r in page.held)
        )
    if posted == "cadre" and page.cadre_form.validate_on_submit():
        return roster_door.PhoneAndIdTail(
            page.cadre_form.phone.data or "", page.cadre_form.id_tail.data or ""
        )
    if posted == "sms" and page.sms_form.validate_on_submit():
        return roster_door.SmsCode(page.sms_form.phone.data or "", page.sms_form.code.data or "")
    if posted == "ticket" and page.form.validate_on_submit():
        return services.PhoneAndShortCode(page.form.phone.data, page.form.short_code.data)
    return None


def _check_in_self(
    session: ActivitySession, proof: services.SelfCheckInProof | roster_door.CadreProof
) -> services.ScanAnswer:
    if isinstance(proof, roster_door.PhoneAndIdTail | roster_door.SmsCode):
        return roster_door.cadre_self_check_in(session, proof)
    return services.self_check_in(session, proof)


# --- API tokens ------------------------------------------------------------------------------


@bp.route("/manage/tokens", methods=["GET", "POST"])
@roles_required(*DOOR_ROLES)
def api_tokens():
    form = ApiTokenForm()
    new_token = None
    if form.validate_on_submit():
        _token, new_token = services.create_api_token(current_user, form.name.data)
    response = Response(
        render_template(
            "checkin/tokens.html",
            form=form,
            new_token=new_token,
            tokens=services.tokens_of(current_user),
            confirm_form=ConfirmForm(),
        )
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/manage/tokens/<int:token_id>/revoke", methods=["POST"])
@roles_required(*DOOR_ROLES)
def revoke_api_token(token_id: int):
    token = db.get_or_404(ApiToken, token_id)
    if token.user_id != current_user.id and not current_user.is_admin:
        abort(403)
    if ConfirmForm().validate_on_submit():
        services.revoke_api_token(token)
        flash(_("令牌已停用。"), "success")
    return redirect(url_for("checkin.api_tokens"))


# --- checkers -----------------------------------------------------------------------------------


@bp.route("/manage/activities/<int:activity_id>/checkers", methods=["GET", "POST"])
@roles_required(*EDITOR_ROLES)
def checkers(activity_id: int):
    activity = managed_activity_or_403(activity_id)
    form = CheckerForm()
    form.username.choices = [
        (u.username, f"{u.display_name or u.username}（{u.username}）")
        for u in services.checker_accounts()
    ]
    if form.validate_on_submit():
        try:
            with all_or_nothing():
                user = services.assign_checker(activity, form.username.data)
        except services.CheckerError as exc:
            form.username.errors.append(exc.message)
        except IntegrityError:
            form.username.errors.append(_("保存失败，请重试。"))
        else:
            flash(_("已指派 %(name)s。", name=user.display_name or user.username), "success")
            return redirect(url_for("checkin.checkers", activity_id=activity.id))
    return render_template(
        "checkin/checkers.html",
        activity=activity,
        form=form,
        checkers=services.assigned_checkers(activity),
        confirm_form=ConfirmForm(),
    )


@bp.route("/manage/activities/<int:activity_id>/checkers/<int:user_id>/remove", methods=["POST"])
@roles_required(*EDITOR_ROLES)
def remove_checker(activity_id: int, user_id: int):
    activity = managed_activity_or_403(activity_id)
    user = db.get_or_404(User, user_id)
    if ConfirmForm().validate_on_submit():
        services.remove_checker(activity, user)
        flash(_("已取消指派。"), "success")
    return redirect(url_for("checkin.checkers", activity_id=activity.id))
