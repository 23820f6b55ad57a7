"""XLSX exports of coverage and of untrained cadres: pure functions returning bytes."""

from __future__ import annotations

import io
import re

from flask_babel import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font

from ..identity import mask_phone
from .coverage import DistrictCoverage, UntrainedCadre

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    """Neutralise text a spreadsheet would run as a formula (CSV/formula injection)."""
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def _workbook_bytes(title: str, header: list[str], rows: list[list]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = re.sub(r"[\\/*?:\[\]]", "_", title)[:31] or "Sheet"
    sheet.append([safe_cell(h) for h in header])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([safe_cell(v) for v in row])
    for index, _h in enumerate(header, start=1):
        sheet.column_dimensions[sheet.cell(1, index).column_letter].width = 14
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _percent(value: float | None):
    return round(value * 100, 1) if value is not None else ""


def coverage_workbook(report: DistrictCoverage, *, include_district: bool = True) -> bytes:
    header = [
        _("镇街代码"),
        _("镇街"),
        _("应训人数"),
        _("已训人数"),
        _("覆盖率(%)"),
        _("目标(%)"),
        _("差额（人）"),
        _("人次"),
        _("期数"),
        _("学时"),
    ]
    rows = [
        [
            t.code,
            t.name,
            t.cadres,
            t.trained,
            _percent(t.coverage),
            _percent(t.target),
            "" if t.gap is None else t.gap,
            t.attendances,
            t.trainings,
            float(t.hours),
        ]
        for t in report.towns
    ]
    if include_district:
        rows.append(
            [
                "",
                _("全区"),
                report.cadres,
                report.trained,
                _percent(report.coverage),
                _percent(report.target),
                "" if report.gap is None else report.gap,
                report.attendances,
                report.trainings,
                float(report.hours),
            ]
        )
    return _workbook_bytes(_("%(year)s年培训覆盖率", year=report.year), header, rows)


def untrained_workbook(town_name: str, year: int, cadres: list[UntrainedCadre]) -> bytes:
    header = [_("村/社区"), _("姓名"), _("职务"), _("手机号"), _("已参训次数"), _("已得学时")]
    rows = [
        [c.village, c.name, c.posts, mask_phone(c.phone), c.attendances, float(c.hours)]
        for c in cadres
    ]
    return _workbook_bytes(_("%(town)s未训干部", town=town_name), header, rows)
