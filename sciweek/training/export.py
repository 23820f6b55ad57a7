"""XLSX exports of coverage and of untrained cadres: pure functions returning bytes."""

from __future__ import annotations

from flask_babel import gettext as _

from ..identity import mask_phone
from ..spreadsheets import xlsx_bytes
from .coverage import DistrictCoverage, UntrainedCadre


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
    return xlsx_bytes(_("%(year)s年培训覆盖率", year=report.year), header, rows)


def untrained_workbook(town_name: str, year: int, cadres: list[UntrainedCadre]) -> bytes:
    header = [_("村/社区"), _("姓名"), _("职务"), _("手机号"), _("已参训次数"), _("已得学时")]
    rows = [
        [c.village, c.name, c.posts, mask_phone(c.phone), c.attendances, float(c.hours)]
        for c in cadres
    ]
    return xlsx_bytes(_("%(town)s未训干部", town=town_name), header, rows)
