"""Reading cadre rosters (花名册) from .xlsx and .csv files: pure functions, no database.

A roster file becomes a :class:`ParsedRoster`: the header row found beneath any title rows,
one :class:`RosterRow` per person row with phone and ID numbers normalised, and every
problem as an :class:`Issue` carrying the spreadsheet row number and column. Whether towns
exist and who is already on the roster is decided later, in ``services``.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime

import openpyxl
from defusedxml import DefusedXmlException
from flask import current_app
from flask_babel import gettext as _
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._reader import WorkSheetParser

from ..identity import IdentityError, mask_id_number, normalize_id_number, normalize_phone

# openpyxl parses with defusedxml (no entities, no external resources) when it is installed
# and OPENPYXL_DEFUSEDXML is not "False"; refuse to run with a parser open to XXE.
if not openpyxl.DEFUSEDXML:
    raise ImportError("openpyxl must parse with defusedxml: install it, unset OPENPYXL_DEFUSEDXML")

log = logging.getLogger(__name__)

HEADER_SEARCH_ROWS = 30
MAX_COLUMNS = 100  # columns read from each row; a roster has about ten
MAX_ZIP_ENTRIES = 1_000  # parts in one .xlsx; a workbook has a dozen or so
RATIO_CHECKED_ABOVE = 2**20  # a part this small cannot be a bomb worth refusing
EXCEL_MAX_ROWS = 1_048_576
MAX_FILENAME_CHARS = 120

FIELDS = ("seq", "name", "gender", "birth_month", "post", "town", "village", "phone", "id_number")
REQUIRED_FIELDS = ("name", "town", "village", "phone")
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "seq": ("序号", "编号"),
    "name": ("姓名", "名字"),
    "gender": ("性别",),
    "birth_month": ("出生年月", "出生日期", "出生年月日"),
    "post": ("职务", "现任职务", "职位", "担任职务"),
    "town": (
        "所属镇街",
        "镇街",
        "乡镇(街道)",
        "镇(街道)",
        "所属乡镇(街道)",
        "乡镇/街道",
        "镇/街",
        "乡镇街道",
        "所属乡镇",
        "乡镇",
        "所在镇街",
    ),
    "village": (
        "村/社区",
        "村(社区)",
        "所属村(社区)",
        "所属村/社区",
        "村社区",
        "村(居)",
        "村居",
        "行政村",
        "所在村",
        "村",
    ),
    "phone": ("手机号", "手机号码", "联系电话", "手机", "电话", "电话号码", "联系方式"),
    "id_number": ("身份证号", "身份证号码", "公民身份号码", "身份证"),
}
_ALIAS_TO_FIELD = {alias: name for name, aliases in HEADER_ALIASES.items() for alias in aliases}
_SCIENTIFIC = re.compile(r"^\d+(\.\d+)?[eE]\+?\d+$")
_FLOAT_TEXT = re.compile(r"^(\d+)\.0+$")
_SPACES = re.compile(r"[\s\u00a0\u3000\u200b\ufeff]+")
_CJK_SPACED = re.compile(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")
# C0 and C1 control characters except tab, line feed and carriage return (which are spaces
# in a cell). PostgreSQL text cannot hold NUL; none of them belongs in a roster.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


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
    max_rows: int = 20_000  # data rows with content
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
    """One spreadsheet cell as read: ``kind`` is text, number, formula, date or empty."""

    value: object
    kind: str


@dataclass
class Issue:
    """A problem (``error``), a doubt (``warning``) or a note (``info``) about one row."""

    row: int | None
    column: str
    message: str
    level: str = "error"


@dataclass
class RosterRow:
    row: int
    name: str = ""
    gender: str = ""
    birth_month: str = ""
    post: str = ""
    town: str = ""
    village: str = ""
    phone: str | None = None
    id_number: str | None = None
    valid: bool = True


@dataclass
class ParsedRoster:
    filename: str
    header_row: int
    columns: dict[str, str]  # field -> "H（手机号码）"
    rows: list[RosterRow] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ParsedRoster:
        return cls(
            filename=data["filename"],
            header_row=data["header_row"],
            columns=data["columns"],
            rows=[RosterRow(**r) for r in data["rows"]],
            issues=[Issue(**i) for i in data["issues"]],
        )


# --- reading files -------------------------------------------------------------------------


def _megabytes(size: int) -> int:
    return -(-size // 2**20)


def read_table(filename: str, data: bytes, limits: RosterLimits) -> list[tuple[int, list[Cell]]]:
    """Rows of cells with their 1-based spreadsheet row numbers, from .xlsx or .csv bytes.

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
    if data[:4] == b"PK\x03\x04":
        if not lower.endswith((".xlsx", ".xlsm")):
            raise RosterFileError(_("只支持 .xlsx 和 .csv 文件。"))
        return _read_xlsx(data, limits)
    if lower.endswith((".xlsx", ".xlsm")):
        raise RosterFileError(_("文件不是有效的 .xlsx 表格（可能已损坏或只是改了扩展名）。"))
    if lower.endswith((".csv", ".txt")):
        return _read_csv(data, limits)
    raise RosterFileError(_("只支持 .xlsx 和 .csv 文件。"))


def _too_many_rows(limits: RosterLimits) -> RosterFileError:
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


def _read_xlsx(data: bytes, limits: RosterLimits) -> list[tuple[int, list[Cell]]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            _check_archive(archive.infolist(), limits)
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
        try:
            sheets = [
                ws
                for ws in workbook.worksheets
                if getattr(ws, "sheet_state", "visible") == "visible"
            ]
            first = None
            for sheet in sheets or workbook.worksheets:
                table = _sheet_rows(workbook, sheet, limits)
                if find_header(table) is not None:
                    return table
                if first is None:
                    first = table
            # No sheet has a header: return the first so the caller says so.
            return first or []
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


def _sheet_rows(workbook, sheet, limits: RosterLimits) -> list[tuple[int, list[Cell]]]:
    """The rows with content of one sheet, as present in its XML.

    openpyxl's read-only ``iter_rows`` makes up an empty row for every row number missing
    before a row present and widens rows to the declared ``<dimension>``: a 2 KB file with
    one cell at row 40,000,000 kept a worker busy for 30 s. Its own sheet parser yields only
    the rows and cells present, so the work follows the size of the XML, which is bounded.
    (These are openpyxl internals; pyproject.toml pins openpyxl 3.1.)
    """
    if (sheet.max_row or 0) > EXCEL_MAX_ROWS:
        raise _beyond_excel(sheet.max_row)
    table = []
    with sheet._get_source() as source:
        parser = WorkSheetParser(
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
                table.append((number, row))
                if len(table) > limits.max_rows + HEADER_SEARCH_ROWS:
                    raise _too_many_rows(limits)
    return table


def _xlsx_row(number: int, cells: list[dict], limits: RosterLimits) -> list[Cell]:
    """Cells by column (empty list for a row without content), columns past MAX_COLUMNS dropped."""
    found: dict[int, Cell] = {}
    for raw in cells:
        column = raw["column"]
        if column > MAX_COLUMNS:
            continue
        cell = _xlsx_cell(raw["value"], raw["data_type"])
        if cell.kind == "empty":
            continue
        if isinstance(cell.value, str) and len(cell.value) > limits.max_cell_chars:
            raise _cell_too_long(number, column, len(cell.value), limits)
        found[column] = cell
    if not found:
        return []
    return [found.get(column, Cell(None, "empty")) for column in range(1, max(found) + 1)]


def _xlsx_cell(value: object, data_type: str | None) -> Cell:
    if value is None or (isinstance(value, str) and not value.strip()):
        return Cell(None, "empty")
    if data_type == "f" or (isinstance(value, str) and value.startswith("=")):
        return Cell(str(value), "formula")
    if isinstance(value, bool):
        return Cell(str(value), "text")
    if isinstance(value, int | float):
        return Cell(value, "number")
    if isinstance(value, datetime | date):
        return Cell(value, "date")
    return Cell(str(value), "text")


def _read_csv(data: bytes, limits: RosterLimits) -> list[tuple[int, list[Cell]]]:
    sample = data[:4096]
    if sample.count(b"\x00") * 100 > len(sample):
        # NUL bytes everywhere: a binary file or UTF-16 text. A stray NUL in a cell is
        # reported on its cell instead.
        raise RosterFileError(_("文件不是文本格式的 CSV（可能选错了文件）。"))
    text = None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        raise RosterFileError(_("无法识别 CSV 文件的编码，请另存为 UTF-8 或 GBK 编码。"))
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
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
                    raise _too_many_rows(limits)
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
        if not value:
            cells.append(Cell(None, "empty"))
        elif value.startswith("="):
            cells.append(Cell(value, "formula"))
        else:
            cells.append(Cell(value, "text"))
    return cells


# --- header --------------------------------------------------------------------------------


def normalize_header(value: object) -> str:
    text = _SPACES.sub("", str(value or ""))
    text = text.replace("（", "(").replace("）", ")").replace("／", "/").replace("＊", "*")
    return text.strip("*:：")


def _header_map(cells: list[Cell]) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        if cell.kind != "text":
            continue
        name = _ALIAS_TO_FIELD.get(normalize_header(cell.value))
        if name and name not in found:
            found[name] = index
    return found


def find_header(table: list[tuple[int, list[Cell]]]) -> tuple[int, dict[str, int]] | None:
    """The first row (within the first rows) naming at least a name and a phone column."""
    for position, (_number, cells) in enumerate(table[:HEADER_SEARCH_ROWS]):
        mapping = _header_map(cells)
        if "name" in mapping and "phone" in mapping and ("town" in mapping or "village" in mapping):
            return position, mapping
    return None


# --- rows ----------------------------------------------------------------------------------


def _column_label(index: int, header: str) -> str:
    return f"{get_column_letter(index + 1)}（{header}）"


def _plain_text(cell: Cell) -> str:
    if cell.kind == "empty":
        return ""
    if cell.kind == "number":
        value = cell.value
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value)
    if cell.kind == "date":
        return f"{cell.value.year}.{cell.value.month:02d}"
    return _SPACES.sub(" ", str(cell.value)).strip()


def _read_phone(cell: Cell) -> tuple[str | None, str | None, str | None]:
    """(phone, error, warning) from a phone cell, saying when Excel changed the number."""
    if cell.kind == "number":
        value = cell.value
        if isinstance(value, float) and not value.is_integer():
            return (
                None,
                _("手机号被 Excel 存成了小数（%(v)s），请把该列设为文本后重新填写。", v=value),
                None,
            )
        digits = str(int(value))
        try:
            phone = normalize_phone(digits)
        except IdentityError as exc:
            return None, str(exc), None
        return (
            phone,
            None,
            _(
                "手机号单元格是数字格式（Excel 可能改写过），已读作 %(phone)s，请核对；建议把该列设为文本。",  # noqa: E501
                phone=phone,
            ),
        )
    text = _plain_text(cell)
    if _SCIENTIFIC.match(text):
        return (
            None,
            _(
                "手机号被 Excel 改成了科学计数法（%(v)s），原号码已丢失，请把该列设为文本后重新填写。",  # noqa: E501
                v=_excerpt(text),
            ),
            None,
        )
    warning = None
    float_text = _FLOAT_TEXT.match(text)
    if float_text:
        text = float_text.group(1)
        warning = _(
            "手机号带有小数点（Excel 曾把它当作数字），已读作 %(phone)s，请核对。", phone=text
        )
    try:
        return normalize_phone(text), None, warning
    except IdentityError as exc:
        return None, _("%(error)s（表中为：%(value)s）", error=str(exc), value=_excerpt(text)), None


def _read_id_number(cell: Cell) -> tuple[str | None, str | None]:
    """(id_number, error); an empty cell is fine (ID numbers are optional)."""
    if cell.kind == "empty":
        return None, None
    if cell.kind == "number":
        return None, _(
            "身份证号被 Excel 存成了数字（%(v)s），后几位已丢失（Excel 只保留 15 位有效数字），"
            "请把该列设为文本后重新填写。",
            v=_plain_text(cell),
        )
    text = _plain_text(cell)
    if _SCIENTIFIC.match(text) or _FLOAT_TEXT.match(text):
        return None, _(
            "身份证号被 Excel 改成了数字（%(v)s），原号码已丢失，请把该列设为文本后重新填写。",
            v=_excerpt(text),
        )
    try:
        return normalize_id_number(text), None
    except IdentityError as exc:
        shown = mask_id_number(text) if len(text) == 18 else text[:4] + "…"
        return None, _("%(error)s（表中为：%(value)s）", error=str(exc), value=shown)


def parse_roster(filename: str, data: bytes, limits: RosterLimits | None = None) -> ParsedRoster:
    """Read a roster file; raise RosterFileError when it is not a readable roster at all.

    ``limits`` default to the application's ``SCIWEEK_ROSTER_*`` settings.
    """
    limits = limits or RosterLimits.from_config(current_app.config)
    filename = _clean_filename(filename)
    table = read_table(filename, data, limits)
    header = find_header(table)
    if header is None:
        raise RosterFileError(
            _(
                "找不到表头：前 %(n)s 行中没有同时包含“姓名”“手机号”和“所属镇街”或“村/社区”的行。",
                n=HEADER_SEARCH_ROWS,
            )
        )
    position, mapping = header
    if len(table) - position - 1 > limits.max_rows:
        raise _too_many_rows(limits)
    header_number, header_cells = table[position]
    missing = [f for f in REQUIRED_FIELDS if f not in mapping]
    if missing:
        names = "、".join(HEADER_ALIASES[f][0] for f in missing)
        raise RosterFileError(_("表头缺少必需的列：%(names)s。", names=names))
    labels = {
        name: _column_label(index, normalize_header(header_cells[index].value))
        for name, index in mapping.items()
    }
    parsed = ParsedRoster(filename=filename, header_row=header_number, columns=labels)
    header_texts = [normalize_header(c.value) for c in header_cells]
    for number, cells in table[position + 1 :]:
        if [normalize_header(c.value) for c in cells[: len(header_texts)]] == header_texts:
            continue  # the header repeated on a printed page
        _parse_row(parsed, number, cells, mapping)
    if not parsed.rows:
        parsed.issues.append(Issue(None, "", _("表头下面没有任何干部数据。")))
    return parsed


def _clean_filename(filename: str) -> str:
    """The uploaded file's name as shown and stored: no control characters, not too long."""
    name = _CONTROL.sub("", filename)
    if len(name) <= MAX_FILENAME_CHARS:
        return name
    stem, dot, suffix = name.rpartition(".")
    if not dot or len(suffix) > 10:
        return name[:MAX_FILENAME_CHARS]
    return stem[: MAX_FILENAME_CHARS - len(suffix) - 2] + "…." + suffix


def _excerpt(text: str, length: int = 30) -> str:
    """A value quoted in a message, shortened: messages are stored with the preview."""
    return text if len(text) <= length else text[:length] + "…"


def _parse_row(parsed: ParsedRoster, number: int, cells: list[Cell], mapping: dict[str, int]):
    """Read one data row into ``parsed`` with its issues; a row empty in every key column
    (a note or total line beneath the table) is passed over."""
    reader = _RowReader(parsed.columns, number, cells, mapping)
    if reader.is_blank():
        return
    reader.refuse_unreadable_cells()
    parsed.rows.append(reader.read())
    parsed.issues.extend(reader.issues)


class _RowReader:
    """The cells of one data row, read field by field; problems collect in ``issues``."""

    KEY_FIELDS = ("name", "town", "village", "phone", "id_number")

    def __init__(
        self, columns: dict[str, str], number: int, cells: list[Cell], mapping: dict[str, int]
    ):
        self.columns = columns
        self.number = number
        self.cells = cells
        self.mapping = mapping
        self.unusable: set[str] = set()  # cells reported as errors and not read any further
        self.issues: list[Issue] = []

    def cell(self, name: str) -> Cell:
        index = self.mapping.get(name)
        if index is None or index >= len(self.cells) or name in self.unusable:
            return Cell(None, "empty")
        return self.cells[index]

    def problem(self, name: str, message: str, level: str = "error") -> None:
        self.issues.append(Issue(self.number, self.columns.get(name, ""), message, level))

    def is_blank(self) -> bool:
        return all(self.cell(name).kind == "empty" for name in self.KEY_FIELDS)

    def refuse_unreadable_cells(self) -> None:
        """Formulas and control characters are errors; such cells are not read further."""
        for name in FIELDS:
            value = self.cell(name)
            if value.kind == "formula":
                self.problem(
                    name,
                    _(
                        "单元格是公式（%(f)s），请改为直接填写的内容。",
                        f=_excerpt(str(value.value)),
                    ),
                )
                self.unusable.add(name)
            elif value.kind == "text" and _CONTROL.search(value.value):
                self.problem(
                    name,
                    _("单元格含有不可见的控制字符（如 NUL），请删除后重新填写；该单元格未读取。"),
                )
                self.unusable.add(name)

    def read(self) -> RosterRow:
        """The row's values; ``valid`` is False when any of its issues is an error."""
        row = RosterRow(row=self.number)
        row.name = self._name()
        row.gender = _plain_text(self.cell("gender"))[:4]
        row.birth_month = _plain_text(self.cell("birth_month"))[:10]
        row.post = _plain_text(self.cell("post"))[:60]
        for name, label in (("town", _("所属镇街")), ("village", _("村/社区"))):
            if name not in self.unusable:
                setattr(row, name, self._place(name, label))
        if "phone" not in self.unusable:
            row.phone = self._phone()
        if "id_number" not in self.unusable:
            row.id_number = self._id_number()
        row.valid = not any(i.level == "error" for i in self.issues)
        return row

    def _name(self) -> str:
        # Spaces between Chinese characters (王 五, to line names up) are not part of it.
        text = _CJK_SPACED.sub("", _plain_text(self.cell("name")))
        if "name" not in self.unusable:
            if not text:
                self.problem("name", _("姓名为空。"))
            elif len(text) > 50:
                self.problem("name", _("姓名过长。"))
        return text[:50]

    def _place(self, name: str, label: str) -> str:
        text = _plain_text(self.cell(name))
        if not text:
            self.problem(name, _("%(label)s为空。", label=label))
        elif len(text) > 64:
            self.problem(name, _("%(label)s过长。", label=label))
        return text[:64]

    def _phone(self) -> str | None:
        if self.cell("phone").kind == "empty":
            self.problem("phone", _("请填写手机号。"))
            return None
        phone, error, warning = _read_phone(self.cell("phone"))
        if error:
            self.problem("phone", error)
        if warning:
            self.problem("phone", warning, "warning")
        return phone

    def _id_number(self) -> str | None:
        id_number, error = _read_id_number(self.cell("id_number"))
        if error:
            self.problem("id_number", error)
        return id_number
