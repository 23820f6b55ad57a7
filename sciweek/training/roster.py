"""Reading cadre rosters (花名册) from .xlsx and .csv files: pure functions, no database.

A roster file becomes a :class:`ParsedRoster`: the header row found beneath any title rows,
one :class:`RosterRow` per person row with phone and ID numbers normalised, and every
problem as an :class:`Issue` carrying the spreadsheet row number and column. Whether towns
exist and who is already on the roster is decided later, in ``services``.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import date, datetime

from flask_babel import gettext as _
from openpyxl.utils import get_column_letter

from ..identity import IdentityError, mask_id_number, normalize_id_number, normalize_phone

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_DATA_ROWS = 20_000
HEADER_SEARCH_ROWS = 30

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


class RosterFileError(ValueError):
    """The file cannot be read as a roster at all; the message is for people."""


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


def read_table(filename: str, data: bytes) -> list[tuple[int, list[Cell]]]:
    """Rows of cells with their 1-based spreadsheet row numbers, from .xlsx or .csv bytes."""
    if not data:
        raise RosterFileError(_("文件是空的。"))
    if len(data) > MAX_FILE_BYTES:
        raise RosterFileError(
            _("文件太大（上限 %(mb)s MB），请按镇街拆分后分别导入。", mb=MAX_FILE_BYTES // 2**20)
        )
    lower = filename.lower()
    if lower.endswith(".xls") or data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise RosterFileError(_("不支持旧版 .xls 文件，请在 Excel 中另存为 .xlsx 后再导入。"))
    if data[:4] == b"PK\x03\x04":
        if not lower.endswith((".xlsx", ".xlsm")):
            raise RosterFileError(_("只支持 .xlsx 和 .csv 文件。"))
        return _read_xlsx(data)
    if lower.endswith((".xlsx", ".xlsm")):
        raise RosterFileError(_("文件不是有效的 .xlsx 表格（可能已损坏或只是改了扩展名）。"))
    if lower.endswith((".csv", ".txt")):
        return _read_csv(data)
    raise RosterFileError(_("只支持 .xlsx 和 .csv 文件。"))


def _too_many_rows() -> RosterFileError:
    return RosterFileError(
        _(
            "表格超过 %(n)s 行，不像一份镇街花名册；请检查是否选错了文件，或拆分后导入。",
            n=MAX_DATA_ROWS,
        )
    )


def _read_xlsx(data: bytes) -> list[tuple[int, list[Cell]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
        raise RosterFileError(_("无法读取这个 .xlsx 文件（可能已损坏或设置了密码）。")) from exc
    try:
        sheets = [
            ws for ws in workbook.worksheets if getattr(ws, "sheet_state", "visible") == "visible"
        ]
        for sheet in sheets or workbook.worksheets:
            table = _sheet_rows(sheet)
            if find_header(table) is not None:
                return table
        # No sheet has a header: return the first so the caller says so.
        return _sheet_rows(workbook.worksheets[0]) if workbook.worksheets else []
    finally:
        workbook.close()


def _sheet_rows(sheet) -> list[tuple[int, list[Cell]]]:
    table = []
    for number, row in enumerate(sheet.iter_rows(), start=1):
        cells = [_xlsx_cell(c) for c in row]
        if any(c.kind != "empty" for c in cells):
            table.append((number, cells))
        if len(table) > MAX_DATA_ROWS + HEADER_SEARCH_ROWS:
            raise _too_many_rows()
    return table


def _xlsx_cell(cell) -> Cell:
    value = getattr(cell, "value", None)
    if value is None or (isinstance(value, str) and not value.strip()):
        return Cell(None, "empty")
    data_type = getattr(cell, "data_type", None)
    if data_type == "f" or (isinstance(value, str) and value.startswith("=")):
        return Cell(str(value), "formula")
    if isinstance(value, bool):
        return Cell(str(value), "text")
    if isinstance(value, int | float):
        return Cell(value, "number")
    if isinstance(value, datetime | date):
        return Cell(value, "date")
    return Cell(str(value), "text")


def _read_csv(data: bytes) -> list[tuple[int, list[Cell]]]:
    if b"\x00" in data[:4096]:
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
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    table = []
    try:
        start = 1
        for values in reader:
            cells = []
            for value in values:
                value = value.strip()
                if not value:
                    cells.append(Cell(None, "empty"))
                elif value.startswith("="):
                    cells.append(Cell(value, "formula"))
                else:
                    cells.append(Cell(value, "text"))
            if any(c.kind != "empty" for c in cells):
                table.append((start, cells))
            start = reader.line_num + 1
            if len(table) > MAX_DATA_ROWS + HEADER_SEARCH_ROWS:
                raise _too_many_rows()
    except csv.Error as exc:
        raise RosterFileError(_("CSV 文件格式有误：%(error)s", error=str(exc))) from exc
    return table


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
                v=text,
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
        return None, _("%(error)s（表中为：%(value)s）", error=str(exc), value=text), None


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
            v=text,
        )
    try:
        return normalize_id_number(text), None
    except IdentityError as exc:
        shown = mask_id_number(text) if len(text) == 18 else text[:4] + "…"
        return None, _("%(error)s（表中为：%(value)s）", error=str(exc), value=shown)


def parse_roster(filename: str, data: bytes) -> ParsedRoster:
    """Read a roster file; raise RosterFileError when it is not a readable roster at all."""
    table = read_table(filename, data)
    header = find_header(table)
    if header is None:
        raise RosterFileError(
            _(
                "找不到表头：前 %(n)s 行中没有同时包含“姓名”“手机号”和“所属镇街”或“村/社区”的行。",
                n=HEADER_SEARCH_ROWS,
            )
        )
    position, mapping = header
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


def _parse_row(parsed: ParsedRoster, number: int, cells: list[Cell], mapping: dict[str, int]):
    def cell(name: str) -> Cell:
        index = mapping.get(name)
        if index is None or index >= len(cells):
            return Cell(None, "empty")
        return cells[index]

    key_fields = ("name", "town", "village", "phone", "id_number")
    if all(cell(name).kind == "empty" for name in key_fields):
        return  # a note or total line beneath the table
    issues: list[Issue] = []

    def problem(name: str, message: str, level: str = "error") -> None:
        issues.append(Issue(number, parsed.columns.get(name, ""), message, level))

    for name in FIELDS:
        if cell(name).kind == "formula":
            problem(
                name,
                _("单元格是公式（%(f)s），请改为直接填写的内容。", f=str(cell(name).value)[:40]),
            )

    row = RosterRow(row=number)
    name_text = _CJK_SPACED.sub("", _plain_text(cell("name")))
    if cell("name").kind != "formula":
        if not name_text:
            problem("name", _("姓名为空。"))
        elif len(name_text) > 50:
            problem("name", _("姓名过长。"))
    row.name = name_text
    row.gender = _plain_text(cell("gender"))[:4] if cell("gender").kind != "formula" else ""
    row.birth_month = (
        _plain_text(cell("birth_month"))[:10] if cell("birth_month").kind != "formula" else ""
    )
    row.post = _plain_text(cell("post"))[:60] if cell("post").kind != "formula" else ""
    for name, label in (("town", _("所属镇街")), ("village", _("村/社区"))):
        if cell(name).kind == "formula":
            continue
        text = _plain_text(cell(name))
        if not text:
            problem(name, _("%(label)s为空。", label=label))
        elif len(text) > 64:
            problem(name, _("%(label)s过长。", label=label))
        setattr(row, name, text)

    if cell("phone").kind == "empty":
        problem("phone", _("请填写手机号。"))
    elif cell("phone").kind != "formula":
        phone, error, warning = _read_phone(cell("phone"))
        if error:
            problem("phone", error)
        if warning:
            problem("phone", warning, "warning")
        row.phone = phone
    if cell("id_number").kind != "formula":
        id_number, error = _read_id_number(cell("id_number"))
        if error:
            problem("id_number", error)
        row.id_number = id_number

    row.valid = not any(i.level == "error" for i in issues)
    parsed.rows.append(row)
    parsed.issues.extend(issues)
