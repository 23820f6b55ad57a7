"""CSV and XLSX exports that spreadsheet programs cannot turn into formulas."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

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
