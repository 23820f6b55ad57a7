"""The annual assessment (年度目标考核) in the back office: page, XLSX and PDF."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext as _

from ..pdf import PdfUnavailable
from ..permissions import REPORT_ROLES, roles_required
from ..spreadsheets import district_name, office_heading
from ..training.coverage import local_year_today
from .layout import assessment_layout
from .pdf import assessment_pdf
from .services import ReportYearError, annual_assessment, parse_report_year
from .xlsx import assessment_workbook

bp = Blueprint("reports", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _download(data: bytes, mimetype: str, filename: str, disposition: str) -> Response:
    response = Response(data, mimetype=mimetype)
    ascii_name = "annual." + filename.rsplit(".", 1)[-1]
    response.headers["Content-Disposition"] = (
        f"{disposition}; filename={ascii_name}; filename*=UTF-8''{quote(filename, safe='')}"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _year_or_error() -> tuple[int | None, str | None]:
    try:
        return parse_report_year(request.args.get("year"), local_year_today()), None
    except ReportYearError as exc:
        return None, str(exc)


def _refused(message: str, raw: str):
    """The page again, without figures, with the message beside the year field."""
    return (
        render_template(
            "reports/annual.html",
            report=None,
            year_error=message,
            year_value=raw,
        ),
        400,
    )


@bp.route("/manage/reports/annual")
@roles_required(*REPORT_ROLES)
def annual():
    year, error = _year_or_error()
    if year is None:
        return _refused(error or "", request.args.get("year", ""))
    report = annual_assessment(year, district_name=district_name())
    return render_template(
        "reports/annual.html",
        report=report,
        year_error=None,
        year_value=str(year),
        **assessment_layout(report),
    )


@bp.route("/manage/reports/annual.xlsx")
@roles_required(*REPORT_ROLES)
def annual_xlsx():
    year, error = _year_or_error()
    if year is None:
        return _refused(error or "", request.args.get("year", ""))
    report = annual_assessment(year, district_name=district_name())
    data = assessment_workbook(report, office_heading())
    return _download(data, XLSX, _("%(year)s年度目标考核.xlsx", year=year), "attachment")


@bp.route("/manage/reports/annual.pdf")
@roles_required(*REPORT_ROLES)
def annual_pdf():
    year, error = _year_or_error()
    if year is None:
        return _refused(error or "", request.args.get("year", ""))
    report = annual_assessment(year, district_name=district_name())
    try:
        data = assessment_pdf(report, office_heading())
    except PdfUnavailable:
        message = _(
            "本服务器缺少生成 PDF 所需的组件（WeasyPrint、Pango 和中文字体），请联系管理员。"
        )
        return render_template("errors/error.html", code=503, message=message), 503
    return _download(data, "application/pdf", _("%(year)s年度目标考核.pdf", year=year), "inline")
