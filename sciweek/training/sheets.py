"""Reading spreadsheet files into tables of cells: pure functions, no database.

An .xlsx workbook becomes one :class:`SheetTable` per sheet (hidden rows, merged ranges and
the results saved with formulas kept), a .csv or text file one table. The work is bounded
before and while reading (:class:`RosterLimits`); a file that cannot be read as a table
raises :class:`RosterFileError` with a message for people. What the cells mean is for
``roster``.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

import openpyxl
from defusedxml import DefusedXmlException
from flask_babel import gettext as _
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter, range_boundaries
from openpyxl.utils.datetime import from_excel
from openpyxl.worksheet._reader import VALUE_TAG, WorkSheetParser

# openpyxl parses with defusedxml (no entities, no external resources) when it is installed
# and OPENPYXL_DEFUSEDXML is not "False"; refuse to run with a parser open to XXE.
if not openpyxl.DEFUSEDXML:
    raise ImportError("openpyxl must parse with defusedxml: install it, unset OPENPYXL_DEFUSEDXML")

log = logging.getLogger(__name__)

HEADER_SEARCH_ROWS = 30
MAX_COLUMNS = 100  # columns read from each row; a roster has about ten
MAX_ZIP_ENTRIES = 1_000  # parts in one .xlsx; a workbook has a dozen or so
MAX_MERGED_RANGES = 10_000  # a roster merges a title, a header group, a town per village
RATIO_CHECKED_ABOVE = 2**20  # a part this small cannot be a bomb worth refusing
EXCEL_MAX_ROWS = 1_048_576

# Excel's way to keep a leading zero in CSV: ="0123" is the text 0123, not a formula.
_CSV_TEXT_FORMULA = re.compile(r'^="(.*)"$', re.S)
# C0 and C1 control characters except tab, line feed and carriage return (which are spaces
# in a cell). PostgreSQL text cannot hold NUL; none of them belongs in a roster.
_SEPARATOR_LINE = re.compile(r"^sep=([,;\t|])[ \t]*\r?\n")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class RosterFileError(ValueError):
    """The file cannot be read as a roster at all; the message is for people."""


@dataclass(frozen=True)
class RosterLimits:
    """Bounds on the work one roster file may cause, checked before and while parsing.

    From the ``SCIWEEK_ROSTER_*`` settings (see README); the defaults suit a district
    (up to ~2,500 cadres) with a wide margin.
    """

    max_file_bytes: int = 10 * 2**20
    max_unzipped_bytes: int = 30 * 2**20  # all parts of an .xlsx, as declared in the zip
    max_zip_ratio: int = 100  # uncompressed / compressed size of one part
    max_rows: int = 20_000  # data rows with content, all sheets together
    max_cell_chars: int = 1_000

    @classmethod
    def from_config(cls, config: Mapping) -> RosterLimits:
        return cls(
            max_file_bytes=config["SCIWEEK_ROSTER_MAX_FILE_MB"] * 2**20,
            max_unzipped_bytes=config["SCIWEEK_ROSTER_MAX_UNZIPPED_MB"] * 2**20,
            max_zip_ratio=config["SCIWEEK_ROSTER_MAX_ZIP_RATIO"],
            max_rows=config["SCIWEEK_ROSTER_MAX_ROWS"],
            max_cell_chars=config["SCIWEEK_ROSTER_MAX_CELL_CHARS"],
        )


@dataclass
class Cell:
    """One spreadsheet cell as read: ``kind`` is text, number, formula, date or empty.

    A formula keeps the value the file saved with it (``cached``, a Cell), if any.
    """

    value: object
    kind: str
    cached: Cell | None = None


EMPTY = Cell(None, "empty")


@dataclass
class SheetTable:
    """The rows with content of one sheet (or CSV file), as read, before any interpretation."""

    name: str
    rows: list[tuple[int, list[Cell]]]
    hidden: bool = False  # a hidden sheet (read, so that a roster hidden there can be named)
    hidden_rows: dict[int, str] = field(default_factory=dict)  # row -> "hidden" | "filtered"
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)  # c1, r1, c2, r2


# --- reading files -------------------------------------------------------------------------


def _megabytes(size: int) -> int:
    return -(-size // 2**20)


_OTHER_FORMATS = {
    ".ods": "OpenDocument 表格（.ods）",
    ".et": "WPS 表格（.et）",
    ".numbers": "Numbers 表格",
    ".xlsb": "Excel 二进制工作簿（.xlsb）",
}


def read_sheets(filename: str, data: bytes, limits: RosterLimits) -> list[SheetTable]:
    """The sheets of an .xlsx file, hidden ones marked (one table for a CSV or text file),
    from the file's bytes.

    Only rows with content are returned. Raises RosterFileError when the file is not a
    readable table or breaks one of ``limits``.
    """
    if not data:
        raise RosterFileError(_("文件是空的。"))
    if len(data) > limits.max_file_bytes:
        raise RosterFileError(
            _(
                "文件太大（上限 %(mb)s MB），请按镇街拆分后分别导入。",
                mb=_megabytes(limits.max_file_bytes),
            )
        )
    lower = filename.lower()
    if lower.endswith(".xls") or data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise RosterFileError(_("不支持旧版 .xls 文件，请在 Excel 中另存为 .xlsx 后再导入。"))
    for suffix, kind in _OTHER_FORMATS.items():
        if lower.endswith(suffix):
            raise RosterFileError(
                _("不支持%(kind)s，请另存为 .xlsx（Excel 工作簿）或 .csv 后再导入。", kind=kind)
            )
    if data[:4] == b"PK\x03\x04":
        if not lower.endswith((".xlsx", ".xlsm")):
            raise RosterFileError(_("只支持 .xlsx、.csv 和 .txt 文件。"))
        return _read_xlsx(data, limits)
    if lower.endswith((".xlsx", ".xlsm")):
        raise RosterFileError(_("文件不是有效的 .xlsx 表格（可能已损坏或只是改了扩展名）。"))
    if lower.endswith((".csv", ".txt")):
        return [SheetTable("", _read_csv(data, limits))]
    raise RosterFileError(_("只支持 .xlsx、.csv 和 .txt 文件。"))


def too_many_rows(limits: RosterLimits) -> RosterFileError:
    return RosterFileError(
        _(
            "表格超过 %(n)s 行，不像一份镇街花名册；请检查是否选错了文件，或拆分后导入。",
            n=limits.max_rows,
        )
    )


def _cell_too_long(row: int, column: int, length: int, limits: RosterLimits) -> RosterFileError:
    return RosterFileError(
        _(
            "第 %(row)s 行 %(column)s 列的单元格有 %(n)s 个字符，超过上限 %(limit)s 个字符，"
            "未读取；请检查是否选错了文件。",
            row=row,
            column=get_column_letter(column),
            n=length,
            limit=limits.max_cell_chars,
        )
    )


def _beyond_excel(rows: int) -> RosterFileError:
    return RosterFileError(
        _(
            "表格有第 %(rows)s 行，超出了 Excel 的上限（%(limit)s 行）：文件已损坏或是特意构造的，"
            "未读取。",
            rows=rows,
            limit=EXCEL_MAX_ROWS,
        )
    )


def _damaged() -> RosterFileError:
    return RosterFileError(_("无法读取这个 .xlsx 文件（可能已损坏或设置了密码）。"))


def _check_archive(entries: list[zipfile.ZipInfo], limits: RosterLimits) -> None:
    """Refuse a zip whose parts would inflate beyond the limits, before anything is inflated.

    The sizes are those the zip declares; zipfile never returns more than the declared size
    of a part (it stops there and reports a CRC error), so they bound the real work.
    """
    if len(entries) > MAX_ZIP_ENTRIES:
        raise _damaged()
    total = sum(entry.file_size for entry in entries)
    if total > limits.max_unzipped_bytes:
        raise RosterFileError(
            _(
                "表格解压后有 %(size)s MB，超过上限 %(limit)s MB，未读取；"
                "请删除多余的工作表、图片和空行，或按镇街拆分后分别导入。",
                size=_megabytes(total),
                limit=_megabytes(limits.max_unzipped_bytes),
            )
        )
    for entry in entries:
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > RATIO_CHECKED_ABOVE and ratio > limits.max_zip_ratio:
            raise RosterFileError(
                _(
                    "表格中的 %(part)s 压缩比异常（%(ratio)s 倍，上限 %(limit)s 倍），"
                    "可能是特意构造的文件，未读取；请在 Excel 中打开后另存为 .xlsx 再导入。",
                    part=entry.filename[:80],
                    ratio=int(ratio),
                    limit=limits.max_zip_ratio,
                )
            )


def _read_xlsx(data: bytes, limits: RosterLimits) -> list[SheetTable]:
    """Every sheet, hidden ones marked."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _check_archive(archive.infolist(), limits)
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
        try:
            budget = _RowBudget(limits)
            tables = []
            for sheet in workbook.worksheets:
                table = _sheet_table(workbook, sheet, limits, budget)
                table.hidden = getattr(sheet, "sheet_state", "visible") != "visible"
                tables.append(table)
            return tables
        finally:
            workbook.close()
    except RosterFileError:
        raise
    except Exception as exc:
        # A damaged workbook fails anywhere in zipfile, zlib, the XML parser or openpyxl,
        # with many kinds of exception (BadZipFile, zlib.error, ParseError, KeyError, ...),
        # which openpyxl often wraps in a ValueError.
        unsafe = _in_chain(exc, DefusedXmlException)
        if unsafe is not None:
            raise RosterFileError(
                _(
                    "表格中含有不安全的 XML 内容（实体声明），已拒绝读取；"
                    "请在 Excel 中打开后另存为 .xlsx 再导入。"
                )
            ) from unsafe
        log.info("unreadable roster workbook: %r", exc)
        raise _damaged() from exc


def _in_chain(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """``exc`` or the exception it was raised from (or during) that is a ``kind``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


class _RowBudget:
    """Rows with content read so far from all sheets together, against the limit."""

    def __init__(self, limits: RosterLimits):
        self.limits = limits
        self.rows = 0
        self.sheets = 0

    def start_sheet(self) -> None:
        self.sheets += 1

    def spend(self) -> None:
        self.rows += 1
        if self.rows > self.limits.max_rows + HEADER_SEARCH_ROWS * self.sheets:
            raise too_many_rows(self.limits)


class _SheetParser(WorkSheetParser):
    """openpyxl's sheet parser, also keeping the value a formula cell was saved with.

    With ``data_only=False`` openpyxl replaces a formula cell's value by its formula and
    drops the ``<v>`` the file holds: the result Excel or WPS computed when saving.
    """

    def parse_cell(self, element):
        cell = super().parse_cell(element)
        if cell["data_type"] == "f":
            cell["cached"] = self._saved_result(element, cell["style_id"])
        return cell

    def _saved_result(self, element, style_id) -> Cell | None:
        value = element.findtext(VALUE_TAG, None)
        kind = element.get("t", "n")
        if value is None or value == "" or kind == "e":
            return None  # never computed, or an error such as #REF!
        if kind in ("str", "s", "inlineStr"):
            return Cell(value, "text") if value.strip() else None
        if kind == "b":
            return Cell(str(bool(int(value))), "text")
        try:
            number: int | float = int(value)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                return None
        if style_id in self.date_formats:
            try:
                return Cell(from_excel(number, self.epoch), "date")
            except (OverflowError, ValueError):
                return None
        return Cell(number, "number")


def _sheet_table(workbook, sheet, limits: RosterLimits, budget: _RowBudget) -> SheetTable:
    """The rows with content of one sheet, as present in its XML, with hidden rows and merges.

    openpyxl's read-only ``iter_rows`` trusts the sheet's ``<dimension>``: a stale one cuts
    the read short, and a huge one makes up an empty row for every row number missing
    before a row present and widens rows to it (a 2 KB file with one cell at row
    40,000,000 kept a worker busy for 30 s). Its own sheet parser yields only the rows and
    cells present, so the work follows the size of the XML, which is bounded, and every
    row present is read whatever the dimension says. (These are openpyxl internals;
    pyproject.toml pins openpyxl 3.1.)
    """
    if (sheet.max_row or 0) > EXCEL_MAX_ROWS:
        raise _beyond_excel(sheet.max_row)
    budget.start_sheet()
    rows = []
    with sheet._get_source() as source:
        parser = _SheetParser(
            source,
            sheet._shared_strings,
            data_only=False,
            epoch=workbook.epoch,
            date_formats=workbook._date_formats,
            timedelta_formats=workbook._timedelta_formats,
        )
        for number, cells in parser.parse():
            if number > EXCEL_MAX_ROWS:
                raise _beyond_excel(number)
            row = _xlsx_row(number, cells, limits)
            if row:
                rows.append((number, row))
                budget.spend()
    return SheetTable(
        name=sheet.title,
        rows=rows,
        hidden_rows=_hidden_rows(parser, {number for number, _cells in rows}),
        merged=_merged_ranges(parser),
    )


def _hidden_rows(parser: WorkSheetParser, present: set[int]) -> dict[int, str]:
    """Rows with content that the sheet hides: by a filter (within the autofilter's range)
    or by hand."""
    filtered: tuple[int, int] | None = None
    auto_filter = getattr(parser, "auto_filter", None)
    if auto_filter is not None and auto_filter.ref:
        try:
            _c1, first, _c2, last = range_boundaries(auto_filter.ref)
        except (TypeError, ValueError):
            first = last = None
        if first is not None:
            filtered = (first, last or EXCEL_MAX_ROWS)
    hidden = {}
    for key, attributes in parser.row_dimensions.items():
        if str(attributes.get("hidden", "")).lower() not in ("1", "true"):
            continue
        number = int(key)
        if number in present:
            in_filter = filtered is not None and filtered[0] < number <= filtered[1]
            hidden[number] = "filtered" if in_filter else "hidden"
    return hidden


def _merged_ranges(parser: WorkSheetParser) -> list[tuple[int, int, int, int]]:
    merged = getattr(parser, "merged_cells", None)
    cells = list(getattr(merged, "mergeCell", None) or [])
    if len(cells) > MAX_MERGED_RANGES:
        raise RosterFileError(
            _(
                "表格中有 %(n)s 处合并单元格，超过上限 %(limit)s 处，未读取；请取消合并后再导入。",
                n=len(cells),
                limit=MAX_MERGED_RANGES,
            )
        )
    ranges = []
    for cell in cells:
        try:
            c1, r1, c2, r2 = range_boundaries(cell.ref)
        except (TypeError, ValueError):
            continue
        if c1 and r1 and c2 and r2 and (c1, r1) != (c2, r2):
            ranges.append((c1, r1, c2, r2))
    return ranges


def _xlsx_row(number: int, cells: list[dict], limits: RosterLimits) -> list[Cell]:
    """Cells by column (empty list for a row without content), columns past MAX_COLUMNS dropped."""
    found: dict[int, Cell] = {}
    for raw in cells:
        column = raw["column"]
        if column > MAX_COLUMNS:
            continue
        cell = _xlsx_cell(raw["value"], raw["data_type"], raw.get("cached"))
        if cell.kind == "empty":
            continue
        for text in (cell.value, cell.cached.value if cell.cached else None):
            if isinstance(text, str) and len(text) > limits.max_cell_chars:
                raise _cell_too_long(number, column, len(text), limits)
        found[column] = cell
    if not found:
        return []
    return [found.get(column, EMPTY) for column in range(1, max(found) + 1)]


def _xlsx_cell(value: object, data_type: str | None, cached: Cell | None = None) -> Cell:
    if value is None or (isinstance(value, str) and not value.strip()):
        return EMPTY
    if data_type == "f" or (isinstance(value, str) and value.startswith("=")):
        return Cell(str(value), "formula", cached)
    if isinstance(value, bool):
        return Cell(str(value), "text")
    if isinstance(value, int | float):
        return Cell(value, "number")
    if isinstance(value, datetime | date):
        return Cell(value, "date")
    return Cell(str(value), "text")


def _decode_text(data: bytes) -> str:
    """The text of a CSV or text file: UTF-8 (with or without BOM), GBK/GB18030, or UTF-16
    (Excel's "Unicode 文本", tab-separated, with a BOM)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise RosterFileError(
                _("无法读取这个 UTF-16 文本文件（内容不完整或已损坏）。")
            ) from exc
    sample = data[:4096]
    if sample.count(b"\x00") * 100 > len(sample):
        # NUL bytes everywhere: UTF-16 text without its BOM, or a binary file. A stray NUL
        # in a cell is reported on its cell instead.
        for encoding in ("utf-16-le", "utf-16-be"):
            text = _utf16_without_bom(data, encoding)
            if text is not None:
                return text
        raise RosterFileError(_("文件不是文本格式的 CSV（可能选错了文件）。"))
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise RosterFileError(_("无法识别 CSV 文件的编码，请另存为 UTF-8 或 GBK 编码。"))


def _utf16_without_bom(data: bytes, encoding: str) -> str | None:
    """UTF-16 text without BOM, when it decodes to printable text with line breaks."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None
    head = text[:2000]
    if "\n" not in head or CONTROL_CHARACTERS.search(head.replace("\x00", "\x01")):
        return None
    return text


def _delimiter(first_line: str) -> str:
    """Comma, semicolon (Excel in locales with a decimal comma) or tab, by the header line."""
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def _read_csv(data: bytes, limits: RosterLimits) -> list[tuple[int, list[Cell]]]:
    text = _decode_text(data)
    # Excel writes (and reads) a first line "sep=;" naming the separator; it shows the line
    # after it as row 1.
    directive = _SEPARATOR_LINE.match(text)
    if directive:
        delimiter = directive.group(1)
        text = text[directive.end() :]
    else:
        lines = [line for line in text.splitlines()[:HEADER_SEARCH_ROWS] if line.strip()]
        # The header is the line with the most separators among the first ones (a title
        # line above it has none).
        header_line = max(lines, key=lambda line: max(line.count(d) for d in ",;\t"), default="")
        delimiter = _delimiter(header_line)
    # The csv module refuses fields over 131,072 characters with an English message; let
    # it read any field the file can hold, and say in Chinese which cell is too long.
    csv.field_size_limit(max(csv.field_size_limit(), limits.max_file_bytes))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    table = []
    try:
        start = 1
        for values in reader:
            values = values[:MAX_COLUMNS]
            if any(not value.isspace() for value in values if value):
                table.append((start, _csv_row(start, values, limits)))
                if len(table) > limits.max_rows + HEADER_SEARCH_ROWS:
                    raise too_many_rows(limits)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise RosterFileError(_("CSV 文件格式有误：%(error)s", error=str(exc))) from exc
    return table


def _csv_row(number: int, values: list[str], limits: RosterLimits) -> list[Cell]:
    cells = []
    for column, value in enumerate(values, start=1):
        value = value.strip()
        if len(value) > limits.max_cell_chars:
            raise _cell_too_long(number, column, len(value), limits)
        as_text = _CSV_TEXT_FORMULA.match(value)
        if as_text:
            value = as_text.group(1).replace('""', '"').strip()
            cells.append(Cell(value, "text") if value else EMPTY)
        elif not value:
            cells.append(EMPTY)
        elif value.startswith("="):
            cells.append(Cell(value, "formula"))
        else:
            cells.append(Cell(value, "text"))
    return cells
