"""XLSX exports of coverage and of untrained cadres: pure functions returning bytes."""

from __future__ import annotations

import io

from flask_babel import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from ..identity import mask_phone
from ..spreadsheets import neutralise, xlsx_bytes
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
        blank = [""] * (len(header) - 2)
        if report.town_gaps is not None:
            rows.append(["", _("各镇街差额之和（人）"), *blank[:4], report.town_gaps, *blank[5:]])
        if report.target is not None and not report.target_is_own:
            rows.append(["", _("注：本年未设全区目标，全区目标按各镇街目标折算。"), *blank])
    return xlsx_bytes(_("%(year)s年培训覆盖率", year=report.year), header, rows)


def untrained_workbook(town_name: str, year: int, cadres: list[UntrainedCadre]) -> bytes:
    header = [_("村/社区"), _("姓名"), _("职务"), _("手机号"), _("已参训次数"), _("已得学时")]
    rows = [
        [c.village, c.name, c.posts, mask_phone(c.phone), c.attendances, float(c.hours)]
        for c in cadres
    ]
    return xlsx_bytes(_("%(town)s未训干部", town=town_name), header, rows)


TEMPLATE_ROWS = 1000  # rows prepared with text-formatted phone and ID cells


def roster_template_workbook(towns: list[str]) -> bytes:
    """A blank roster (花名册) to fill in: the header the import reads, phone and ID number
    columns formatted as text (so Excel keeps 13800138000 and 11010519491231002X as
    typed), the town column limited to ``towns``, and a 说明 sheet with an example row."""
    header = list(TEMPLATE_HEADER)
    workbook = Workbook()
    roster = workbook.active
    assert isinstance(roster, Worksheet)  # a new workbook holds one worksheet
    roster.title = "花名册"
    roster.append(header)
    for cell in roster[1]:
        cell.font = Font(bold=True)
    text_columns = {header.index("手机号码") + 1, header.index("身份证号") + 1}
    for index in range(1, len(header) + 1):
        letter = get_column_letter(index)
        roster.column_dimensions[letter].width = 22 if index in text_columns else 12
        if index in text_columns:
            roster.column_dimensions[letter].number_format = "@"
            for row in range(2, TEMPLATE_ROWS + 2):
                roster.cell(row=row, column=index).number_format = "@"
    roster.freeze_panes = "A2"
    _instructions(workbook, header)
    _town_list(workbook, roster, towns, header.index("所属镇街") + 1)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# The names the import reads (roster.HEADER_ALIASES), in Chinese whatever the page's
# language: they are data, not interface text.
TEMPLATE_HEADER = (
    "序号",
    "姓名",
    "性别",
    "出生年月",
    "职务",
    "所属镇街",
    "村/社区",
    "手机号码",
    "身份证号",
)


def _town_list(workbook: Workbook, roster: Worksheet, towns: list[str], column: int) -> None:
    """The towns on a hidden sheet, and the town column validated against them."""
    if not towns:
        return
    lists = workbook.create_sheet(_("镇街列表"))
    for town in towns:
        lists.append([neutralise(town)])
    lists.sheet_state = "hidden"
    letter = get_column_letter(column)
    validation = DataValidation(
        type="list",
        formula1=f"'{lists.title}'!$A$1:$A${len(towns)}",
        allow_blank=True,
        showErrorMessage=True,
        errorTitle=_("镇街"),
        error=_("请从列表中选择镇街。"),
        showInputMessage=True,
        promptTitle=_("镇街"),
        prompt=_("请从列表中选择本行干部所属的镇街。"),
    )
    validation.add(f"{letter}2:{letter}{TEMPLATE_ROWS + 1}")
    roster.add_data_validation(validation)


def _instructions(workbook: Workbook, header: list[str]) -> None:
    sheet = workbook.create_sheet(_("说明"))
    lines = [
        _("填表说明"),
        _(
            "1. 在“花名册”工作表中每行填一名干部；一人兼任两个职务（一肩挑）可填两行，"
            "手机号相同即合并为一人。"
        ),
        _("2. 必填：姓名、所属镇街、村/社区、手机号码；身份证号可不填，填写时须为 18 位。"),
        _(
            "3. 手机号码和身份证号两列已设为文本格式，请直接输入或“选择性粘贴 → 数值”，"
            "不要改为数字格式。"
        ),
        _("4. 所属镇街请从下拉列表中选择；新的村/社区会在导入预览中列出，确认后才新建。"),
        _("5. 不要在表头上方或表格中插入合并单元格、公式或隐藏的行。"),
        "",
        _("示例（本工作表不会被导入）："),
    ]
    for line in lines:
        sheet.append([line])
    sheet.append(header)
    sheet.append(
        ["示例", "张三", "男", "1970.01", "村党组织书记", "城关镇", "城关一村", "13800138000"]
    )
    sheet.column_dimensions["A"].width = 12
