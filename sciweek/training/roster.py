"""Reading cadre rosters (花名册) from .xlsx, .csv and .txt files: pure functions, no database.

A roster file becomes a :class:`ParsedRoster`: every visible sheet with a roster header
(found beneath any title rows, on one row or two), one :class:`RosterRow` per person row with
phone and ID numbers normalised, and every problem as an :class:`Issue` carrying the sheet,
the spreadsheet row number and the column. Files come as township offices make them: an
instructions sheet with an example row, one sheet per town, hidden and filtered rows, merged
and two-row headers, town cells merged down the column, formulas in optional columns, CSV
with semicolons or as Excel's UTF-16 "Unicode 文本". Whether towns exist and who is already
on the roster is decided later, in ``services``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import asdict, dataclass, field

from flask import current_app
from flask_babel import gettext as _
from openpyxl.utils import get_column_letter

from ..identity import IdentityError, mask_id_number, normalize_id_number, normalize_phone
from ..kept_messages import KeptMessage as N_
from ..kept_messages import RowRanges, from_data, to_data
from .sheets import (
    CONTROL_CHARACTERS,
    EMPTY,
    HEADER_SEARCH_ROWS,
    MAX_COLUMNS,
    Cell,
    RosterFileError,
    RosterLimits,
    SheetTable,
    read_sheets,
    too_many_rows,
)

__all__ = [
    "Cell",
    "Issue",
    "ParsedRoster",
    "RosterFileError",
    "RosterLimits",
    "RosterRow",
    "RowKey",
    "SheetRead",
    "parse_roster",
    "read_sheets",
    "row_ranges",
]

MAX_FILENAME_CHARS = 120

FIELDS = ("seq", "name", "gender", "birth_month", "post", "town", "village", "phone", "id_number")
REQUIRED_FIELDS = ("name", "town", "village", "phone")
# Cells whose value decides who the person is and where: a formula there may be stale.
KEY_FIELDS = ("name", "town", "village", "phone", "id_number")
# Header names by field, the usual first. Brackets, spaces and notes such as （必填）are
# ignored when matching (see ``header_field``).
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "seq": ("序号", "编号"),
    "name": ("姓名", "名字", "干部姓名"),
    "gender": ("性别",),
    "birth_month": ("出生年月", "出生日期", "出生年月日"),
    "post": ("职务", "现任职务", "职位", "担任职务", "现职务"),
    "town": (
        "所属镇街",
        "镇街",
        "乡镇(街道)",
        "镇(街道)",
        "所属乡镇(街道)",
        "乡镇/街道",
        "镇/街",
        "镇/街道",
        "乡镇街道",
        "所属乡镇",
        "乡镇",
        "所在镇街",
        "所在乡镇",
        "所在乡镇(街道)",
        "所在街道",
        "所属街道",
        "所属街镇",
        "街镇",
        "乡镇名称",
        "镇街名称",
        "镇(乡、街道)",
        "乡(镇、街道)",
        "乡镇(街)",
        "镇(街)",
    ),
    "village": (
        "村/社区",
        "村(社区)",
        "所属村(社区)",
        "所属村/社区",
        "所在村(社区)",
        "所在村/社区",
        "村社区",
        "村(居)",
        "村居",
        "村/居",
        "所在村居",
        "行政村",
        "所在村",
        "村",
        "社区",
        "村名",
        "村(社区)名称",
        "村居名称",
        "村(居)委会",
        "村(社区)委会",
    ),
    # The first seven say "mobile"; the rest may hold a landline, so a column they name is
    # taken only when no column says mobile.
    "phone": (
        "手机号",
        "手机号码",
        "手机",
        "移动电话",
        "联系电话(手机)",
        "联系方式(手机)",
        "电话(手机)",
        "联系电话",
        "电话",
        "电话号码",
        "联系方式",
        "联系号码",
    ),
    "id_number": ("身份证号", "身份证号码", "公民身份号码", "身份证", "身份证件号码"),
}
_MOBILE_ALIASES = 7
# A column named so holds a landline: never the mobile column, whatever the group above says.
LANDLINE_WORDS = ("办公", "固定", "座机", "固话", "宅电", "家庭电话", "单位电话", "传真")
# An example row (张三 beneath the header of an instructions sheet) says so in one of its cells
# (normalize_header has turned （）【】 into plain brackets and dropped a trailing colon.)
_EXAMPLE_CELL = re.compile(
    r"^(?:\(?(?:示例|样例|范例|举例)\)?.*|\(?例\)?[:：0-9一二三]*|.*\((?:示例|样例|范例|例)\))$"
)
_ALIAS_TO_FIELD: dict[str, tuple[str, int]] = {}
_SCIENTIFIC = re.compile(r"^\d+(\.\d+)?[eE]\+?\d+$")
_FLOAT_TEXT = re.compile(r"^(\d+)\.0+$")
_SPACES = re.compile(r"[\s\u00a0\u3000\u200b\ufeff]+")
_CJK_SPACED = re.compile(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])")
_BRACKETED = re.compile(r"\([^()]*\)")
_CONTROL = CONTROL_CHARACTERS

RowKey = tuple[str, int]  # (sheet, row number): one row of the file


def _register_aliases() -> None:
    for name, aliases in HEADER_ALIASES.items():
        for position, alias in enumerate(aliases):
            weak = name == "phone" and position >= _MOBILE_ALIASES
            _ALIAS_TO_FIELD[alias] = (name, 1 if weak else 2)


_register_aliases()


@dataclass
class Issue:
    """A problem (``error``), a doubt (``warning``), a note (``info``) or rows passed over
    (``skipped``), about one row (or the whole sheet when ``row`` is None)."""

    row: int | None
    column: str
    message: str
    level: str = "error"
    sheet: str = ""


@dataclass
class RosterRow:
    row: int
    sheet: str = ""
    name: str = ""
    gender: str = ""
    birth_month: str = ""
    post: str = ""
    town: str = ""
    village: str = ""
    phone: str | None = None
    id_number: str | None = None
    valid: bool = True
    hidden: str = ""  # "hidden" or "filtered" when the row was not shown in the sheet

    @property
    def key(self) -> RowKey:
        return (self.sheet, self.row)


@dataclass
class SheetRead:
    """One sheet the roster was read from: where its header is and what it maps."""

    name: str
    header_row: int
    columns: dict[str, str]  # field -> "H（手机号码）"
    rows_read: int = 0  # data rows with content beneath the header, examples included


@dataclass
class ParsedRoster:
    filename: str
    sheets: list[SheetRead] = field(default_factory=list)
    rows: list[RosterRow] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @property
    def header_row(self) -> int:
        return self.sheets[0].header_row if self.sheets else 0

    @property
    def columns(self) -> dict[str, str]:
        """The first sheet's columns (the same in every sheet of a tidy workbook)."""
        return self.sheets[0].columns if self.sheets else {}

    def columns_of(self, sheet: str) -> dict[str, str]:
        for read in self.sheets:
            if read.name == sheet:
                return read.columns
        return self.columns

    @property
    def sheet_names(self) -> list[str]:
        """The sheets read (none for a CSV file)."""
        return [s.name for s in self.sheets if s.name]

    @property
    def rows_read(self) -> int:
        return sum(s.rows_read for s in self.sheets)

    def to_dict(self) -> dict:
        """For JSON; messages and column labels as msgids and values (``kept_messages``),
        so that they are shown in the language of whoever reads them back."""
        data = asdict(self)
        for sheet in data["sheets"]:
            sheet["columns"] = {k: to_data(v) for k, v in sheet["columns"].items()}
        for issue in data["issues"]:
            issue.update(column=to_data(issue["column"]), message=to_data(issue["message"]))
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ParsedRoster:
        """What :meth:`to_dict` gave, its messages in the current language (text stored
        by earlier versions stays as it was)."""
        return cls(
            filename=data["filename"],
            sheets=[
                SheetRead(**{**s, "columns": {k: from_data(v) for k, v in s["columns"].items()}})
                for s in data["sheets"]
            ],
            rows=[RosterRow(**r) for r in data["rows"]],
            issues=[
                Issue(**{**i, "column": from_data(i["column"]), "message": from_data(i["message"])})
                for i in data["issues"]
            ],
        )


def row_ranges(numbers: list[int]) -> str:
    """5、8–10、14: row numbers as short ranges, for messages (kept as numbers when a
    message is stored, so an English reader sees 5, 8–10, 14)."""
    return RowRanges(numbers)


# --- header --------------------------------------------------------------------------------

_IGNORED = ("", 0)  # a column the header names as no roster field (a landline)


def normalize_header(value: object) -> str:
    text = _SPACES.sub("", str(value or ""))
    text = text.replace("（", "(").replace("）", ")").replace("／", "/").replace("＊", "*")
    text = text.replace("【", "(").replace("】", ")")
    return text.strip("*:：")


def header_field(value: object) -> tuple[str, int] | None:
    """(field, strength) that a header cell names, ``_IGNORED`` for a landline column, or
    None. Notes in brackets (（必填）, （11位）) are ignored; a mobile-only name is stronger
    than 联系电话, which may hold a landline."""
    label = normalize_header(value)
    if not label:
        return None
    if any(word in label for word in LANDLINE_WORDS) and "手机" not in label:
        return _IGNORED
    hit = _ALIAS_TO_FIELD.get(label)
    if hit is None:
        bare = _BRACKETED.sub("", label).strip("*:：")
        hit = _ALIAS_TO_FIELD.get(bare)
        if hit is not None and hit[0] == "phone" and "手机" in label:
            hit = ("phone", 2)
    return hit


@dataclass
class Header:
    """Where a sheet's header is (one row or two) and the column of each field."""

    position: int  # index in the table of the header's last row
    number: int  # its spreadsheet row number
    mapping: dict[str, int]  # field -> column index (0-based)
    labels: dict[int, str]  # column index -> the header text shown in messages


def _text_of(cells: list[Cell], index: int) -> str:
    if index < len(cells) and cells[index].kind == "text":
        return normalize_header(cells[index].value)
    return ""


def _header_from(rows: list[list[Cell]]) -> Header:
    """The mapping of a header made of ``rows`` (the lower row's names win over a group
    name merged above them: 手机号码 and 办公电话 under 联系方式)."""
    width = max(len(cells) for cells in rows)
    best: dict[str, tuple[int, int]] = {}  # field -> (score, -index)
    labels: dict[int, str] = {}
    for index in range(width):
        for depth, cells in enumerate(reversed(rows)):
            text = _text_of(cells, index)
            hit = header_field(text)
            if hit is None:
                continue
            labels[index] = text
            name, strength = hit
            if name:
                score = (strength + 10 * (len(rows) - depth), -index)
                if name not in best or score > best[name]:
                    best[name] = score
            break
    mapping = {name: -score[1] for name, score in best.items()}
    return Header(position=0, number=0, mapping=mapping, labels=labels)


def _is_lower_header(upper: list[Cell], lower: list[Cell]) -> bool:
    """Whether ``lower`` is the second row of a two-row header under ``upper``: it names
    fields in cells that are not a copy of the cell above (a vertical merge)."""
    for index in range(len(lower)):
        text = _text_of(lower, index)
        if text and text != _text_of(upper, index) and header_field(text) is not None:
            return True
    return False


def _usable(mapping: dict[str, int]) -> bool:
    return "name" in mapping and "phone" in mapping and ("town" in mapping or "village" in mapping)


def find_header(table: list[tuple[int, list[Cell]]]) -> Header | None:
    """The first row (within the first rows) naming at least a name, a phone and a town or
    village column; with the row beneath it when the two make a two-row header."""
    rows = table[:HEADER_SEARCH_ROWS]
    for position, (number, cells) in enumerate(rows):
        header_rows = [cells]
        if position + 1 < len(table):
            below_number, below = table[position + 1]
            if below_number == number + 1 and _is_lower_header(cells, below):
                header_rows.append(below)
        header = _header_from(header_rows)
        if _usable(header.mapping):
            header.position = position + len(header_rows) - 1
            header.number = table[header.position][0]
            return header
    return None


def _looks_like_header(cells: list[Cell]) -> bool:
    """A header repeated on a printed page (or its second row): three cells name fields."""
    named = 0
    for cell in cells:
        if cell.kind == "text" and header_field(cell.value) is not None:
            named += 1
    return named >= 3


def header_rows(table: SheetTable) -> list[tuple[int, list[Cell]]]:
    """The first rows of a sheet, as the header is searched in: each merged cell's value
    copied over its range, so a group name (联系方式 over 手机号码 / 办公电话) or a name
    merged over two header rows is seen in every column and row it covers. The data rows
    are left as they are (town cells merged down are filled with a warning later)."""
    head = [(number, list(cells)) for number, cells in table.rows[:HEADER_SEARCH_ROWS]]
    if not head or not table.merged:
        return head
    last = head[-1][0]
    by_number = dict(head)
    # Each cell of the head is filled once at most; overlapping ranges (a crafted file)
    # cannot make this loop longer than a few times the head's size.
    budget = 4 * HEADER_SEARCH_ROWS * MAX_COLUMNS
    for c1, r1, c2, r2 in table.merged:
        if r1 > last or r1 not in by_number or c1 > MAX_COLUMNS:
            continue
        budget -= (min(r2, last) - r1 + 1) * (min(c2, MAX_COLUMNS) - c1 + 1)
        if budget < 0:
            break
        top = by_number[r1][c1 - 1] if c1 - 1 < len(by_number[r1]) else EMPTY
        if top.kind != "text":
            continue
        for number in range(r1, min(r2, last) + 1):
            cells = by_number.get(number)
            if cells is None:
                continue
            for column in range(c1, min(c2, MAX_COLUMNS) + 1):
                while len(cells) < column:
                    cells.append(EMPTY)
                if cells[column - 1].kind == "empty":
                    cells[column - 1] = top
    return head


def _is_example(cells: list[Cell]) -> bool:
    """A row marked as an example (示例, 样例, 例 in the 序号 column, 张三（示例）)."""
    return any(
        cell.kind == "text" and _EXAMPLE_CELL.match(normalize_header(cell.value)) is not None
        for cell in cells
    )


# --- rows ----------------------------------------------------------------------------------


def _column_label(index: int, header: str) -> str:
    return N_("%(letter)s（%(header)s）", letter=get_column_letter(index + 1), header=header)


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
                N_("手机号被 Excel 存成了小数（%(v)s），请把该列设为文本后重新填写。", v=value),
                None,
            )
        digits = str(int(value))
        try:
            phone = normalize_phone(digits)
        except IdentityError as exc:
            return None, exc.message, None
        return (
            phone,
            None,
            N_(
                "手机号单元格是数字格式（Excel 可能改写过），已读作 %(phone)s，请核对；建议把该列设为文本。",  # noqa: E501
                phone=phone,
            ),
        )
    text = _plain_text(cell)
    if _SCIENTIFIC.match(text):
        return (
            None,
            N_(
                "手机号被 Excel 改成了科学计数法（%(v)s），原号码已丢失，请把该列设为文本后重新填写。",  # noqa: E501
                v=_excerpt(text),
            ),
            None,
        )
    warning = None
    float_text = _FLOAT_TEXT.match(text)
    if float_text:
        text = float_text.group(1)
        warning = N_(
            "手机号带有小数点（Excel 曾把它当作数字），已读作 %(phone)s，请核对。", phone=text
        )
    try:
        return normalize_phone(text), None, warning
    except IdentityError as exc:
        shown = _excerpt(text)
        return None, N_("%(error)s（表中为：%(value)s）", error=exc.message, value=shown), None


def _read_id_number(cell: Cell) -> tuple[str | None, str | None]:
    """(id_number, error); an empty cell is fine (ID numbers are optional)."""
    if cell.kind == "empty":
        return None, None
    if cell.kind == "number":
        return None, N_(
            "身份证号被 Excel 存成了数字（%(v)s），后几位已丢失（Excel 只保留 15 位有效数字），"
            "请把该列设为文本后重新填写。",
            v=_plain_text(cell),
        )
    text = _plain_text(cell)
    if _SCIENTIFIC.match(text) or _FLOAT_TEXT.match(text):
        return None, N_(
            "身份证号被 Excel 改成了数字（%(v)s），原号码已丢失，请把该列设为文本后重新填写。",
            v=_excerpt(text),
        )
    try:
        return normalize_id_number(text), None
    except IdentityError as exc:
        shown = mask_id_number(text) if len(text) == 18 else text[:4] + "…"
        return None, N_("%(error)s（表中为：%(value)s）", error=exc.message, value=shown)


def parse_roster(
    filename: str,
    data: bytes,
    limits: RosterLimits | None = None,
    *,
    include_hidden: bool = True,
) -> ParsedRoster:
    """Read a roster file; raise RosterFileError when it is not a readable roster at all.

    Every visible sheet with a roster header is read; sheets without one are named in a
    note. Rows hidden in the sheet (by hand or by a filter) are read with a warning, or
    passed over with a note when ``include_hidden`` is False. ``limits`` default to the
    application's ``SCIWEEK_ROSTER_*`` settings.
    """
    limits = limits or RosterLimits.from_config(current_app.config)
    filename = _clean_filename(filename)
    tables = read_sheets(filename, data, limits)
    parsed = ParsedRoster(filename=filename)
    headers = []
    for table in tables:
        header = find_header(header_rows(table))
        if table.hidden:
            if header is not None:
                parsed.issues.append(_hidden_sheet_note(table.name))
        elif header is not None:
            headers.append((table, header))
        elif table.rows and len(tables) > 1:
            parsed.issues.append(_no_header_note(table.name))
    if not headers:
        raise RosterFileError(
            _(
                "找不到表头：前 %(n)s 行中没有同时包含“姓名”“手机号”和“所属镇街”或“村/社区”的行。",
                n=HEADER_SEARCH_ROWS,
            )
        )
    for table, header in headers:
        _SheetReader(parsed, table, header, include_hidden=include_hidden).read()
    if len(parsed.rows) > limits.max_rows:
        raise too_many_rows(limits)
    if not parsed.rows:
        parsed.issues.append(Issue(None, "", N_("表头下面没有任何干部数据。")))
    return parsed


def _hidden_sheet_note(sheet: str) -> Issue:
    return Issue(None, "", N_("工作表“%(sheet)s”是隐藏的，未读取。", sheet=sheet), "skipped", sheet)


def _no_header_note(sheet: str) -> Issue:
    return Issue(
        None,
        "",
        N_(
            "工作表“%(sheet)s”中没有花名册表头（姓名、手机号、镇街或村/社区），未读取。",
            sheet=sheet,
        ),
        "skipped",
        sheet,
    )


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


class _SheetReader:
    """The data rows of one sheet beneath its header, into ``parsed``.

    Notes that concern many rows (examples, hidden rows, formulas, merged town cells) are
    gathered into one issue each, naming the rows.
    """

    def __init__(
        self, parsed: ParsedRoster, table: SheetTable, header: Header, *, include_hidden: bool
    ):
        self.parsed = parsed
        self.table = table
        self.header = header
        self.include_hidden = include_hidden
        self.sheet = table.name
        self.mapping = dict(header.mapping)
        self.columns = {
            name: _column_label(index, header.labels.get(index, ""))
            for name, index in self.mapping.items()
        }
        self.read_info = SheetRead(name=self.sheet, header_row=header.number, columns=self.columns)
        self.issues: list[Issue] = []
        self.examples: list[int] = []
        self.hidden: dict[str, list[int]] = {"hidden": [], "filtered": []}
        self.formulas: dict[tuple[str, bool], list[int]] = {}
        self.town_from_sheet = ""

    def read(self) -> None:
        self._missing_columns()
        found: list[RosterRow] = []
        for number, cells in self._data_rows():
            row = self._row(number, cells)
            if row is not None:
                found.append(row)
        if not found and self.sheet:
            self._nothing_read()
            return
        self._summaries()
        self.parsed.sheets.append(self.read_info)
        self.parsed.rows.extend(found)
        self.parsed.issues.extend(self.issues)

    def _missing_columns(self) -> None:
        """A required column missing stops the file; a sheet named after a town may go
        without a town column (one sheet per town)."""
        if "town" not in self.mapping and "village" in self.mapping and self.sheet:
            self.town_from_sheet = self.sheet.strip()
            self.note(
                None,
                "",
                N_(
                    "工作表“%(sheet)s”没有镇街列，按工作表名称“%(sheet)s”作为每一行的镇街。",
                    sheet=self.sheet,
                ),
                "warning",
            )
        missing = [
            f
            for f in REQUIRED_FIELDS
            if f not in self.mapping and not (f == "town" and self.town_from_sheet)
        ]
        if missing:
            names = "、".join(HEADER_ALIASES[f][0] for f in missing)
            if self.sheet:
                raise RosterFileError(
                    _(
                        "工作表“%(sheet)s”的表头缺少必需的列：%(names)s。",
                        sheet=self.sheet,
                        names=names,
                    )
                )
            raise RosterFileError(_("表头缺少必需的列：%(names)s。", names=names))

    def note(self, row: int | None, column: str, message: str, level: str) -> None:
        self.issues.append(Issue(row, column, message, level, self.sheet))

    def _data_rows(self) -> list[tuple[int, list[Cell]]]:
        rows = self.table.rows[self.header.position + 1 :]
        for name in ("town", "village"):
            if name in self.mapping:
                self._fill_down(rows, name)
        return rows

    def _fill_down(self, rows: list[tuple[int, list[Cell]]], name: str) -> None:
        """Town (or village) cells merged down the column: the value in every row of the
        range, with a warning naming the rows."""
        column = self.mapping[name] + 1
        spans = sorted(
            (r1, r2)
            for c1, r1, c2, r2 in self.table.merged
            if c1 <= column <= c2 and r2 > r1 and r1 > self.header.number
        )
        if not spans:
            return
        starts = [r1 for r1, _r2 in spans]
        by_number = {number: cells for number, cells in rows}
        filled: dict[tuple[int, int], list[int]] = {}
        for number, cells in rows:
            at = bisect_right(starts, number) - 1
            if at < 0:
                continue
            r1, r2 = spans[at]
            if not (r1 < number <= r2) or r1 not in by_number:
                continue
            top = by_number[r1][column - 1] if column - 1 < len(by_number[r1]) else EMPTY
            while len(cells) < column:
                cells.append(EMPTY)
            if top.kind != "empty" and cells[column - 1].kind == "empty":
                cells[column - 1] = top
                filled.setdefault((r1, r2), []).append(number)
        what = N_("镇街") if name == "town" else N_("村/社区")
        for (r1, r2), _numbers in sorted(filled.items()):
            value = _excerpt(_plain_text(by_number[r1][column - 1]))
            self.note(
                r1,
                self.columns[name],
                N_(
                    "第 %(first)s–%(last)s 行的%(what)s是合并单元格，已把“%(value)s”填入每一行，"
                    "请核对。",
                    first=r1,
                    last=r2,
                    what=what,
                    value=value,
                ),
                "warning",
            )

    def _row(self, number: int, cells: list[Cell]) -> RosterRow | None:
        if _looks_like_header(cells):
            return None  # the header repeated on a printed page
        reader = _RowReader(self.columns, number, cells, self.mapping, self.sheet)
        if reader.is_blank():
            return None  # a note or total line beneath the table
        self.read_info.rows_read += 1
        if _is_example(cells):
            self.examples.append(number)
            return None
        hidden = self.table.hidden_rows.get(number, "")
        if hidden:
            self.hidden[hidden].append(number)
            if not self.include_hidden:
                return None
        reader.refuse_unreadable_cells()
        row = reader.read(town=self.town_from_sheet)
        row.hidden = hidden
        self.issues.extend(reader.issues)
        for key in reader.formula_results:
            self.formulas.setdefault(key, []).append(number)
        return row

    def _nothing_read(self) -> None:
        if self.examples:
            message = N_(
                "工作表“%(sheet)s”只有示例行（第 %(rows)s 行），未读取。",
                sheet=self.sheet,
                rows=row_ranges(self.examples),
            )
        else:
            message = N_("工作表“%(sheet)s”的表头下面没有数据，未读取。", sheet=self.sheet)
        self.parsed.issues.append(Issue(None, "", message, "skipped", self.sheet))

    def _summaries(self) -> None:
        """One issue for each kind of note that concerns many rows."""
        if self.examples:
            self.note(
                self.examples[0],
                "",
                N_(
                    "第 %(rows)s 行是示例行（标有“示例”或“例”），未导入。",
                    rows=row_ranges(self.examples),
                ),
                "skipped",
            )
        for kind, numbers in self.hidden.items():
            if numbers:
                self.note(numbers[0], "", self._hidden_message(kind, numbers), self._hidden_level())
        for (name, used), numbers in sorted(self.formulas.items()):
            self.note(
                numbers[0], self.columns.get(name, ""), _formula_message(numbers, used), "warning"
            )

    def _hidden_level(self) -> str:
        return "warning" if self.include_hidden else "skipped"

    def _hidden_message(self, kind: str, numbers: list[int]) -> str:
        rows = row_ranges(numbers)
        if kind == "filtered":
            if self.include_hidden:
                return N_(
                    "第 %(rows)s 行（共 %(n)s 行）被筛选隐藏，已一并导入；"
                    "如不应导入，请删除这些行，或上传时选择不导入隐藏的行。",
                    rows=rows,
                    n=len(numbers),
                )
            return N_(
                "第 %(rows)s 行（共 %(n)s 行）被筛选隐藏，未导入。", rows=rows, n=len(numbers)
            )
        if self.include_hidden:
            return N_(
                "第 %(rows)s 行（共 %(n)s 行）在表格中是隐藏的，已一并导入；"
                "如不应导入，请删除这些行，或上传时选择不导入隐藏的行。",
                rows=rows,
                n=len(numbers),
            )
        return N_(
            "第 %(rows)s 行（共 %(n)s 行）在表格中是隐藏的，未导入。", rows=rows, n=len(numbers)
        )


def _formula_message(numbers: list[int], used: bool) -> str:
    if used:
        return N_(
            "第 %(rows)s 行的单元格是公式，已使用文件中保存的计算结果，请核对。",
            rows=row_ranges(numbers),
        )
    return N_(
        "第 %(rows)s 行的单元格是公式，文件中没有保存计算结果，已按空白处理。",
        rows=row_ranges(numbers),
    )


class _RowReader:
    """The cells of one data row, read field by field; problems collect in ``issues``."""

    def __init__(
        self,
        columns: dict[str, str],
        number: int,
        cells: list[Cell],
        mapping: dict[str, int],
        sheet: str = "",
    ):
        self.columns = columns
        self.number = number
        self.cells = cells
        self.mapping = mapping
        self.sheet = sheet
        self.unusable: set[str] = set()  # cells reported as errors and not read any further
        self.replaced: dict[str, Cell] = {}  # formula cells read as their saved result
        self.formula_results: list[tuple[str, bool]] = []  # (field, saved result used)
        self.issues: list[Issue] = []

    def cell(self, name: str) -> Cell:
        if name in self.replaced:
            return self.replaced[name]
        index = self.mapping.get(name)
        if index is None or index >= len(self.cells) or name in self.unusable:
            return EMPTY
        return self.cells[index]

    def problem(self, name: str, message: str, level: str = "error") -> None:
        self.issues.append(
            Issue(self.number, self.columns.get(name, ""), message, level, self.sheet)
        )

    def is_blank(self) -> bool:
        return all(self.cell(name).kind == "empty" for name in KEY_FIELDS)

    def refuse_unreadable_cells(self) -> None:
        """Formulas in key cells and control characters are errors; such cells are not read
        further. A formula in an optional cell (序号 =ROW()-3, 出生年月 =MID(...)) is read
        as the result saved with it, noted once per column."""
        for name in FIELDS:
            value = self.cell(name)
            if value.kind == "formula" and name not in KEY_FIELDS:
                self.replaced[name] = value.cached or EMPTY
                self.formula_results.append((name, value.cached is not None))
                value = self.replaced[name]
            if value.kind == "formula":
                self.problem(
                    name,
                    N_(
                        "单元格是公式（%(f)s），计算结果可能已过时；请改为直接填写的内容"
                        "（可复制后“选择性粘贴 → 数值”）。",
                        f=_excerpt(str(value.value)),
                    ),
                )
                self.unusable.add(name)
            elif value.kind == "text" and _CONTROL.search(value.value):
                self.problem(
                    name,
                    N_("单元格含有不可见的控制字符（如 NUL），请删除后重新填写；该单元格未读取。"),
                )
                self.unusable.add(name)

    def read(self, town: str = "") -> RosterRow:
        """The row's values; ``valid`` is False when any of its issues is an error.

        ``town`` is the town of a sheet without a town column (its name)."""
        row = RosterRow(row=self.number, sheet=self.sheet)
        row.name = self._name()
        row.gender = _plain_text(self.cell("gender"))[:4]
        row.birth_month = _plain_text(self.cell("birth_month"))[:10]
        row.post = _plain_text(self.cell("post"))[:60]
        if "town" not in self.mapping and town:
            row.town = town[:64]
        elif "town" not in self.unusable:
            row.town = self._place("town", N_("所属镇街"))
        if "village" not in self.unusable:
            row.village = self._place("village", N_("村/社区"))
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
                self.problem("name", N_("姓名为空。"))
            elif len(text) > 50:
                self.problem("name", N_("姓名过长。"))
        return text[:50]

    def _place(self, name: str, label: str) -> str:
        text = _plain_text(self.cell(name))
        if not text:
            self.problem(name, N_("%(label)s为空。", label=label))
        elif len(text) > 64:
            self.problem(name, N_("%(label)s过长。", label=label))
        return text[:64]

    def _phone(self) -> str | None:
        if self.cell("phone").kind == "empty":
            self.problem("phone", N_("请填写手机号。"))
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
