"""Cadre rosters and training coverage in the back office: thin routes over services."""

from __future__ import annotations

from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..forms import ConfirmForm
from ..i18n import local_today
from ..inputs import parse_id, query_int
from ..models import (
    TOWN_ORDER,
    Cadre,
    CoverageTarget,
    Registration,
    Role,
    Town,
    Village,
)
from ..permissions import (
    COVERAGE_ROLES,
    PLACE_ROLES,
    ROSTER_ROLES,
    TARGET_ROLES,
    cadre_or_403,
    coordinator_town_id,
    own_town_ids,
    roles_required,
    town_or_403,
)
from ..placenames import natural_key
from ..spreadsheets import district_name, office_heading
from ..transactions import all_or_nothing, finish_reading
from ..years import YEAR_MAX, YEAR_MIN
from .coverage import (
    coverage_by_town,
    district_target,
    local_year_today,
    unmatched_attendees,
    untrained_cadres,
)
from .export import coverage_workbook, roster_template_workbook, untrained_workbook
from .forms import (
    ConfirmImportForm,
    LeaveForm,
    LinkAttendeeForm,
    RosterUploadForm,
    TargetsForm,
)
from .invitations import trainings_inviting
from .ledger import cadre_ledger, ledger_title, town_ledger, town_ledger_workbook
from .picker import cadre_to_link, search_cadres
from .roster import RosterFileError, RosterLimits, parse_roster
from .services import (
    NewVillage,
    RosterImportError,
    TrainingError,
    check_roster,
    clear_target,
    import_roster,
    link_registration_to_cadre,
    mark_cadre_left,
    roster_report,
    set_district_target,
    set_target,
)
from .uploads import discard_upload, load_upload, save_upload

bp = Blueprint("training", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _year() -> int:
    return query_int("year", minimum=YEAR_MIN, maximum=YEAR_MAX) or local_year_today()


def _xlsx_response(data: bytes, filename: str) -> Response:
    response = Response(data, mimetype=XLSX)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=export.xlsx; filename*=UTF-8''{_quote(filename)}"
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _quote(text: str) -> str:
    return quote(text, safe="")


# --- coverage ------------------------------------------------------------------------------


@bp.route("/manage/training/")
@roles_required(*COVERAGE_ROLES)
def coverage():
    year = _year()
    report = coverage_by_town(year, own_town_ids(current_user))
    ranked = sorted(report.towns, key=lambda t: (-t.coverage, t.code))
    return render_template(
        "training/coverage.html",
        report=report,
        ranked=ranked,
        year=year,
        year_min=YEAR_MIN,
        year_max=YEAR_MAX,
        district=own_town_ids(current_user) is None,
    )


@bp.route("/manage/training/coverage.xlsx")
@roles_required(*COVERAGE_ROLES)
def coverage_export():
    year = _year()
    report = coverage_by_town(year, own_town_ids(current_user))
    data = coverage_workbook(report, include_district=own_town_ids(current_user) is None)
    return _xlsx_response(data, _("%(year)s年干部培训覆盖率.xlsx", year=year))


@bp.route("/manage/training/towns/<int:town_id>")
@roles_required(*ROSTER_ROLES)
def town_detail(town_id: int):
    town = town_or_403(town_id)
    year = _year()
    summary = coverage_by_town(year, [town.id]).towns[0]
    cadres = untrained_cadres(town.id, year)
    by_village: dict[str, list] = {}
    for cadre in cadres:
        by_village.setdefault(cadre.village, []).append(cadre)
    return render_template(
        "training/town.html",
        town=town,
        year=year,
        summary=summary,
        by_village=by_village,
        untrained_count=len(cadres),
        trainings=trainings_inviting(town.id),
    )


@bp.route("/manage/training/towns/<int:town_id>/ledger.xlsx")
@roles_required(*ROSTER_ROLES)
def town_ledger_export(town_id: int):
    """The town's 台账 of a year for audits: one row per cadre per session attended."""
    town = town_or_403(town_id)
    year = _year()
    data = town_ledger_workbook(
        town_ledger(town.id, year),
        title=ledger_title(district_name(), town.name, year),
        heading=office_heading(),
    )
    return _xlsx_response(data, _("%(year)s年%(town)s培训台账.xlsx", year=year, town=town.name))


@bp.route("/manage/training/cadres/<int:cadre_id>/ledger")
@roles_required(*ROSTER_ROLES)
def cadre_ledger_page(cadre_id: int):
    """A cadre's 培训台账: every session attended, totals per year; printable."""
    cadre = cadre_or_403(cadre_id)
    return render_template(
        "training/ledger.html",
        ledger=cadre_ledger(cadre),
        year=local_year_today(),
        today=local_today(),
    )


@bp.route("/manage/training/towns/<int:town_id>/untrained.xlsx")
@roles_required(*ROSTER_ROLES)
def town_untrained_export(town_id: int):
    town = town_or_403(town_id)
    year = _year()
    data = untrained_workbook(town.name, year, untrained_cadres(town.id, year))
    return _xlsx_response(data, _("%(year)s年%(town)s未训干部.xlsx", year=year, town=town.name))


# --- roster --------------------------------------------------------------------------------


@bp.route("/manage/training/roster")
@roles_required(*ROSTER_ROLES)
def roster():
    if current_user.role == Role.COORDINATOR:
        town_id = current_user.town_id
    else:
        town_id = query_int("town_id")
    towns = list(db.session.scalars(select(Town).order_by(*TOWN_ORDER)))
    town = town_or_403(town_id) if town_id else None
    year = _year()
    cadres = []
    if town is not None:
        cadres = sorted(
            db.session.execute(
                select(Cadre, Village.name)
                .join(Village, Village.id == Cadre.village_id)
                .where(Cadre.town_id == town.id)
            ),
            key=lambda r: (r[0].left_on is not None, natural_key(r[1]), r[0].name, r[0].id),
        )
    return render_template(
        "training/roster.html",
        confirm_form=ConfirmForm(),
        towns=towns,
        town=town,
        cadres=cadres,
        year=year,
        today=local_today(),
    )


@bp.route("/manage/training/cadres/<int:cadre_id>/leave", methods=["GET", "POST"])
@roles_required(*ROSTER_ROLES)
def leave(cadre_id: int):
    cadre = db.get_or_404(Cadre, cadre_id)
    town_or_403(cadre.town_id)
    form = LeaveForm()
    if request.method == "GET":
        form.left_on.data = local_today()
    if form.validate_on_submit():
        try:
            with all_or_nothing():
                mark_cadre_left(cadre, form.left_on.data)
        except TrainingError as exc:
            form.left_on.errors = [str(exc)]
        else:
            flash(_("已将 %(name)s 标记为离任，历史记录保留。", name=cadre.name), "success")
            return redirect(url_for("training.roster", town_id=cadre.town_id))
    return render_template("training/leave.html", form=form, cadre=cadre)


@bp.route("/manage/training/import", methods=["GET", "POST"])
@roles_required(*ROSTER_ROLES)
def import_upload():
    form = RosterUploadForm()
    limits = RosterLimits.from_config(current_app.config)
    if form.validate_on_submit():
        # Reading a file takes up to seconds: end the read transaction that loading the
        # user began (nothing is written here), so parsing holds no database connection
        # state or lock.
        finish_reading()
        upload = form.file.data
        data = upload.read(limits.max_file_bytes + 1)
        try:
            parsed = parse_roster(
                upload.filename or "", data, limits, include_hidden=not form.skip_hidden.data
            )
        except RosterFileError as exc:
            form.file.errors = [str(exc)]
        else:
            token = save_upload(parsed, current_user.id)
            return redirect(url_for("training.import_preview", token=token))
    return render_template("training/import.html", form=form, max_mb=limits.max_file_bytes // 2**20)


@bp.route("/manage/training/import/<token>", methods=["GET", "POST"])
@roles_required(*ROSTER_ROLES)
def import_preview(token: str):
    parsed = load_upload(token, current_user.id)
    if parsed is None:
        flash(_("上传的文件已过期或不存在，请重新上传。"), "warning")
        return redirect(url_for("training.import_upload"))
    check = check_roster(parsed, only_town_id=coordinator_town_id(current_user))
    form = ConfirmImportForm()
    form.villages.choices = [(_village_value(v), v.village) for v in check.new_villages]
    if request.method == "GET":
        form.active_from.data = local_today()
    if form.validate_on_submit():
        chosen = set(form.villages.data or [])
        confirmed = [
            v.key
            for v in check.new_villages
            if form.all_villages.data or _village_value(v) in chosen
        ]
        try:
            with all_or_nothing():
                result = import_roster(
                    check,
                    active_from=form.active_from.data,
                    only_valid=form.only_valid.data,
                    new_villages=confirmed,
                )
        except RosterImportError as exc:
            form.form_errors.append(str(exc))
        except IntegrityError:
            form.form_errors.append(
                _("导入失败：数据与其他记录冲突（可能有人同时在修改花名册），未导入任何数据。")
            )
        else:
            discard_upload(token)
            flash(
                _(
                    "已导入：新增 %(new)s 人，更新 %(updated)s 人，不变 %(same)s 人，"
                    "新建村/社区 %(villages)s 个，跳过 %(skipped)s 行，"
                    "关联此前的报名 %(linked)s 条。",
                    new=result.created,
                    updated=result.updated,
                    same=result.unchanged,
                    villages=result.villages_created,
                    skipped=result.skipped_rows,
                    linked=result.linked_registrations,
                ),
                "success",
            )
            for refused in result.refused_links:
                flash(refused.message, "warning")
            return redirect(url_for("training.roster"))
    return render_template(
        "training/preview.html",
        check=check,
        report=roster_report(check),
        form=form,
        token=token,
        village_fields={str(c.data): c for c in form.villages},
        village_values=[_village_value(v) for v in check.new_villages],
    )


def _village_value(village: NewVillage) -> str:
    return f"{village.town_id}:{village.village}"


@bp.route("/manage/training/roster-template.xlsx")
@roles_required(*ROSTER_ROLES)
def roster_template():
    """A blank roster workbook: the header, a 说明 sheet, phone and ID columns as text and
    a list of the towns (a coordinator's own) to choose from."""
    town_id = coordinator_town_id(current_user)
    stmt = select(Town.name).order_by(*TOWN_ORDER)
    if town_id is not None:
        stmt = stmt.where(Town.id == town_id)
    data = roster_template_workbook(list(db.session.scalars(stmt)))
    return _xlsx_response(data, _("干部花名册模板.xlsx"))


# --- town aliases ---------------------------------------------------------------------------


@bp.route("/manage/training/town-aliases")
@roles_required(*PLACE_ROLES)
def town_aliases():
    """Aliases are kept with their town now (places); old links land on the list of towns."""
    return redirect(url_for("places.towns"))


# --- targets -------------------------------------------------------------------------------


@bp.route("/manage/training/targets", methods=["GET", "POST"])
@roles_required(*TARGET_ROLES)
def targets():
    year = _year()
    towns = list(db.session.scalars(select(Town).order_by(*TOWN_ORDER)))
    existing = {
        t.town_id: t
        for t in db.session.scalars(select(CoverageTarget).where(CoverageTarget.year == year))
    }
    form = TargetsForm()
    if request.method == "GET":
        form.district_percent.data = district_target(year)
        for town in towns:
            target = existing.get(town.id)
            form.rows.append_entry(
                {
                    "town_id": town.id,
                    "target_percent": target.target_percent if target else None,
                    "threshold_hours": target.threshold_hours if target else None,
                }
            )
    town_by_id = {t.id: t for t in towns}
    if form.validate_on_submit():
        set_district_target(year, form.district_percent.data)  # empty: no district target
        for row in form.rows:
            town_id = parse_id(row.town_id.data)
            if town_id not in town_by_id:
                abort(400)
            if row.target_percent.data is None:
                clear_target(town_id, year)  # an emptied field removes the target
                continue
            set_target(town_id, year, row.target_percent.data, row.threshold_hours.data)
        flash(_("%(year)s年目标已保存。", year=year), "success")
        return redirect(url_for("training.targets", year=year))
    rows = [(row, town_by_id.get(parse_id(row.town_id.data))) for row in form.rows]
    return render_template(
        "training/targets.html",
        form=form,
        rows=rows,
        year=year,
        year_min=YEAR_MIN,
        year_max=YEAR_MAX,
    )


# --- attendees who match no cadre ----------------------------------------------------------


def _unmatched_scope() -> tuple[int, int | None]:
    """The year and the town (a coordinator's own; others may ask for one) of the page."""
    town_id = coordinator_town_id(current_user)
    if town_id is None:
        town_id = query_int("town_id")
    return _year(), town_id


@bp.route("/manage/training/unmatched", methods=["GET", "POST"])
@roles_required(*ROSTER_ROLES)
def unmatched():
    year, town_id = _unmatched_scope()
    form = LinkAttendeeForm()
    attendees = unmatched_attendees(year, town_id)
    if form.validate_on_submit():
        registration = db.session.get(Registration, form.registration_id.data)
        visible = {a.registration_id for a in attendees}
        if registration is None or registration.id not in visible:
            abort(403)
        cadre = cadre_to_link(form.cadre_id.data, year, town_id)
        if cadre is None:
            # Not one a search of this page could offer (another town's, or not that year's).
            flash(_("所选干部不在%(year)s年可关联的花名册范围内。", year=year), "error")
        else:
            try:
                with all_or_nothing():
                    link_registration_to_cadre(registration, cadre)
            except TrainingError as exc:
                flash(str(exc), "error")
            else:
                flash(
                    _(
                        "已将 %(who)s 关联到干部 %(cadre)s。",
                        who=registration.name,
                        cadre=cadre.name,
                    ),
                    "success",
                )
            return redirect(url_for("training.unmatched", year=year, town_id=town_id))
    # Without JavaScript, a row's search form comes back here with its results.
    searched_for = query_int("for")
    found = search_cadres(request.args.get("q", ""), year, town_id) if searched_for else None
    return render_template(
        "training/unmatched.html",
        attendees=attendees,
        form=form,
        year=year,
        town_id=town_id,
        searched_for=searched_for,
        query=request.args.get("q", ""),
        found=found,
    )


@bp.route("/manage/training/cadres/search")
@roles_required(*ROSTER_ROLES)
def cadre_search():
    """JSON for the unmatched-attendees page's picker (``picker.search_cadres``)."""
    year, town_id = _unmatched_scope()
    response = jsonify(search_cadres(request.args.get("q", ""), year, town_id).as_json())
    response.headers["Cache-Control"] = "no-store"
    return response
