"""CSV and XLSX exports that spreadsheet programs cannot turn into formulas."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from flask import current_app
from flask_babel import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from .i18n import format_date, local_today

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """Prefix text that a spreadsheet would read as a formula with an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    """UTF-8 with BOM, so Excel on Chinese Windows opens it correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([neutralise(h) for h in header])
    for row in rows:
        writer.writerow([neutralise(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def xlsx_bytes(title: str, header: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert isinstance(sheet, Worksheet)  # a new workbook holds one worksheet
    # Excel refuses sheet titles with \ / * ? : [ ] or longer than 31 characters.
    sheet.title = re.sub(r"[\\/*?:\[\]]", "_", title)[:31] or "Sheet1"
    sheet.append([neutralise(h) for h in header])
    widths = [len(str(h)) * 2 + 2 for h in header]
    for row in rows:
        values = [neutralise(v) for v in row]
        sheet.append(values)
        for i, v in enumerate(values):
            widths[i] = min(max(widths[i], len(str(v)) * 2 + 2), 60)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    # Text cells stay text: phone numbers must not become 1.38E+10.
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str):
                cell.data_type = "s"
                cell.number_format = "@"
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@dataclass
class OfficeSheet:
    """One table in the form offices hand upward: a title row, 填报单位 and 填报日期, the
    header, the rows, a totals row, notes, and the 单位负责人 / 填报人 line to sign.

    ``formats`` gives a number format per column (0-based), e.g. ``"0.0%"`` for a share
    stored as a fraction: the cell stays a number. Text is made formula-safe."""

    name: str
    title: str
    header: Sequence[str]
    rows: Sequence[Sequence]
    totals: Sequence | None = None
    notes: Sequence[str] = ()
    formats: dict[int, str] = field(default_factory=dict)


@dataclass
class OfficeHeading:
    """The words around every sheet (already translated): "填报单位：", the unit (blank:
    a line to fill in by hand), "填报日期：", the date, and the signature line."""

    unit_label: str
    unit: str
    date_label: str
    filled_on: str
    signatures: str


_THIN = Side(style="thin", color="000000")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)


def office_workbook(sheets: Sequence[OfficeSheet], heading: OfficeHeading) -> bytes:
    """The sheets as one XLSX workbook (A4 landscape, fitted to the page width)."""
    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]  # the new workbook's sheet
    for spec in sheets:
        _office_sheet(workbook, spec, heading)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _office_sheet(workbook: Workbook, spec: OfficeSheet, heading: OfficeHeading) -> None:
    sheet = workbook.create_sheet(re.sub(r"[\\/*?:\[\]]", "_", spec.name)[:31] or "Sheet1")
    width = len(spec.header)
    last = get_column_letter(width)

    def line(text: str, row: int, *, first: int = 1, through: int = width) -> None:
        cell = sheet.cell(row=row, column=first, value=neutralise(text))
        cell.data_type = "s"
        if through > first:
            sheet.merge_cells(start_row=row, start_column=first, end_row=row, end_column=through)

    line(spec.title, 1)
    sheet["A1"].font = Font(bold=True, size=16)
    sheet["A1"].alignment = Alignment(horizontal="center", vertical="center")
    sheet.row_dimensions[1].height = 30
    half = max(width // 2, 1)
    unit = heading.unit or "＿" * 12
    line(heading.unit_label + unit, 2, through=half)
    line(heading.date_label + heading.filled_on, 2, first=min(half + 1, width))
    sheet.cell(row=2, column=min(half + 1, width)).alignment = Alignment(horizontal="right")

    header_row = 3
    for column, text in enumerate(spec.header, start=1):
        cell = sheet.cell(row=header_row, column=column, value=neutralise(text))
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        cell.border = _BORDER
    widths = [max(len(str(h)) * 2 + 2, 8) for h in spec.header]
    body = [*spec.rows, *([spec.totals] if spec.totals is not None else [])]
    for offset, values in enumerate(body, start=1):
        row = header_row + offset
        for column, value in enumerate(values, start=1):
            cell = sheet.cell(row=row, column=column, value=neutralise(value))
            cell.border = _BORDER
            if isinstance(value, str):
                cell.data_type = "s"
                cell.number_format = "@"
            elif (column - 1) in spec.formats:
                cell.number_format = spec.formats[column - 1]
            widths[column - 1] = min(max(widths[column - 1], len(str(value)) * 2 + 2), 40)
        if spec.totals is not None and offset == len(body):
            for column in range(1, width + 1):
                sheet.cell(row=row, column=column).font = Font(bold=True)
    row = header_row + len(body) + 1
    for note in spec.notes:
        row += 1
        line(note, row)
        sheet.cell(row=row, column=1).alignment = Alignment(wrap_text=True, vertical="top")
        sheet.row_dimensions[row].height = 15 * (1 + len(note) // (width * 6))
    line(heading.signatures, row + 2)
    for column, column_width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = column_width
    sheet.print_title_rows = f"{header_row}:{header_row}"
    sheet.print_area = f"A1:{last}{row + 2}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True


def office_heading(filled_on: date | None = None) -> OfficeHeading:
    """The heading words of the office's tables, in the page's language: the unit from
    ``SCIWEEK_REPORT_UNIT`` (blank: a line to fill in), the date today (Asia/Shanghai)."""
    return OfficeHeading(
        unit_label=_("填报单位："),
        unit=current_app.config.get("SCIWEEK_REPORT_UNIT", ""),
        date_label=_("填报日期："),
        filled_on=format_date(filled_on or local_today()),
        signatures=_("单位负责人：＿＿＿＿＿＿　　填报人：＿＿＿＿＿＿　　联系电话：＿＿＿＿＿＿"),
    )


def district_name() -> str:
    """The district's name before report titles (``SCIWEEK_DISTRICT_NAME``; may be empty)."""
    return current_app.config.get("SCIWEEK_DISTRICT_NAME", "")
