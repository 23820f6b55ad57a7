"""A folder of roster files made the way township offices make them (issue 13, points 1–9),
each with what importing it must give.

    python -m tests.roster_workbooks OUT_DIR              # build the files into OUT_DIR
    python -m tests.roster_workbooks --refresh-libreoffice  # re-save the committed copies

``build_folder`` writes every file; ``libreoffice_copies`` re-saves the .xlsx files with
LibreOffice (``soffice``), which writes its own XML (shared strings, styles, saved formula
results, filters). Where ``soffice`` is missing, the copies committed in
``tests/data/roster_workbooks/libreoffice/`` stand in (made by ``--refresh-libreoffice``).
``tests/test_roster_workbooks.py`` imports each file and compares with ``CASES``.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from openpyxl import Workbook, load_workbook
from openpyxl.utils import get_column_letter

from .roster_files import workbook as handmade_workbook

HERE = Path(__file__).resolve().parent
COMMITTED_LIBREOFFICE = HERE / "data" / "roster_workbooks" / "libreoffice"
HEADER = ["序号", "姓名", "性别", "出生年月", "职务", "所属镇街", "村/社区", "手机号码", "身份证号"]
# The district every file is checked against (see tests/test_roster_workbooks.py).
DISTRICT = {
    "城关镇": ("chengguan", ["城关一村", "城关二村", "城关三村"], ["城关"]),
    "河西街道": ("hexi", ["河西一村", "河西社区"], []),
    "柳林街道": ("liulin", ["柳林村"], []),
}


@dataclass
class Expect:
    """What importing a file gives: valid people by town (names, in file order), the sheets
    read, and fragments of the messages, errors as (sheet, row, column letter, fragment)."""

    people: dict[str, list[str]] = field(default_factory=dict)
    sheets: list[str] = field(default_factory=list)
    errors: list[tuple[str, int | None, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    new_villages: list[tuple[str, str]] = field(default_factory=list)
    rows_read: int | None = None
    file_error: str = ""  # the file is refused with this message fragment
    coordinator_of: str = ""  # imported by this town's coordinator
    include_hidden: bool = True
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> field -> value


def person(seq, name, town, village, phone, post="村委会委员", id_number=""):
    return [seq, name, "男", "1970.01", post, town, village, phone, id_number]


def _save(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- point 1: which sheets ----------------------------------------------------------------


def instructions_first() -> bytes:
    book = Workbook()
    notes = book.active
    notes.title = "填表说明"
    notes.append(["填表说明：每行填一名干部，手机号码必填。"])
    notes.append(HEADER)
    notes.append(["例", "张三", "男", "1970.01", "村委会主任", "城关镇", "城关一村", "13800138000"])
    roster = book.create_sheet("花名册")
    roster.append(HEADER)
    roster.append(person(1, "李一", "城关镇", "城关一村", "13900000101"))
    roster.append(person(2, "李二", "城关镇", "城关二村", "13900000102"))
    return _save(book)


def sheet_per_town() -> bytes:
    book = Workbook()
    first = book.active
    first.title = "城关镇"
    first.append(["城关镇农村基层干部花名册"])
    first.append(HEADER)
    first.append(person(1, "城甲", "城关镇", "城关一村", "13900000111"))
    first.append(person(2, "城乙", "城关镇", "城关三村", "13900000112"))
    second = book.create_sheet("河西街道")
    second.append(HEADER)
    second.append(person(1, "河甲", "河西街道", "河西一村", "13900000121"))
    second.append(person(2, "河乙", "河西街道", "河西社区", "13900000122"))
    book.create_sheet("Sheet3")
    book.create_sheet("汇总").append(["合计", "4 人"])
    return _save(book)


# --- point 2: hidden and filtered rows ------------------------------------------------------


def hidden_and_filtered() -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "花名册"
    sheet.append(HEADER)
    for n in range(1, 7):
        sheet.append(person(n, f"隐{n}", "城关镇", "城关一村", f"139000002{n:02d}"))
    sheet.auto_filter.ref = "A1:I5"  # rows 2-5 under a filter; row 4 filtered out
    sheet.row_dimensions[4].hidden = True
    sheet.row_dimensions[7].hidden = True  # hidden by hand, beyond the filter
    return _save(book)


# --- point 3: a stale <dimension> -----------------------------------------------------------


def stale_dimension() -> bytes:
    rows = [(1, HEADER)] + [
        (n, [str(n - 1), f"维{n - 1}", "女", "", "", "柳林街道", "柳林村", f"139000003{n:02d}", ""])
        for n in range(2, 14)
    ]
    return handmade_workbook(_sheet(rows, dimension="A1:I3"))


# --- point 4: formulas ----------------------------------------------------------------------


def _cell_xml(ref: str, value) -> str:
    """A cell: text (inline), or ("f", formula, saved result) with the result as Excel saves
    it (t="str" for text, a number otherwise)."""
    if isinstance(value, tuple):
        _f, formula, saved = value
        kind = ' t="str"' if isinstance(saved, str) else ""
        return f'<c r="{ref}"{kind}><f>{escape(formula)}</f><v>{escape(str(saved))}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(value))}</t></is></c>'


def _sheet(rows, *, dimension: str | None = None) -> bytes:
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    body = "".join(
        f'<row r="{n}">'
        + "".join(
            _cell_xml(f"{get_column_letter(i)}{n}", v)
            for i, v in enumerate(values, start=1)
            if v != ""
        )
        + "</row>"
        for n, values in rows
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"{dim}<sheetData>{body}</sheetData></worksheet>"
    ).encode()


def formulas_in_optional_columns() -> bytes:
    ids = ["11010519491231002X", "440524188001010014"]
    rows = [(1, ["XX镇干部花名册"]), (2, HEADER)]
    for n, (name, id_number) in enumerate(zip(["式甲", "式乙"], ids, strict=True), start=3):
        birth = f"{id_number[6:10]}.{id_number[10:12]}"
        rows.append(
            (
                n,
                [
                    ("f", "ROW()-2", n - 2),
                    name,
                    "男",
                    ("f", f'MID(I{n},7,4)&"."&MID(I{n},11,2)', birth),
                    "村委会委员",
                    "城关镇",
                    "城关二村",
                    f"139000004{n:02d}",
                    id_number,
                ],
            )
        )
    return handmade_workbook(_sheet(rows))


def formula_in_phone() -> bytes:
    rows = [
        (1, HEADER),
        (2, person("1", "式丙", "城关镇", "城关一村", "13900000501")),
        (
            3,
            [
                *person("2", "式丁", "城关镇", "城关一村", "")[:7],
                ("f", '"139"&"00000502"', "13900000502"),
            ],
        ),
    ]
    return handmade_workbook(_sheet(rows))


# --- point 5: merged and two-row headers ----------------------------------------------------


def merged_two_row_header() -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "花名册"
    sheet["A1"] = "XX区2026年度农村基层干部花名册"
    sheet.merge_cells("A1:I1")
    top = ["序号", "姓名", "性别", "职务", "所在地", None, "联系方式", None, "身份证号码"]
    below = [None, None, None, None, "乡镇（街道）", "村（社区）", "办公电话", "手机号码", None]
    for column, (upper, lower) in enumerate(zip(top, below, strict=True), start=1):
        letter = get_column_letter(column)
        if upper:
            sheet[f"{letter}2"] = upper
        if lower:
            sheet[f"{letter}3"] = lower
    for letter in "ABCDI":
        sheet.merge_cells(f"{letter}2:{letter}3")
    sheet.merge_cells("E2:F2")
    sheet.merge_cells("G2:H2")
    people = [
        ("并甲", "城关镇", "城关一村", "0571-88886601", "13900000601"),
        ("并乙", None, "城关一村", "0571-88886602", "13900000602"),
        ("并丙", None, "城关二村", "", "13900000603"),
        ("并丁", "河西街道", "河西一村", "0571-88886604", "13900000604"),
        ("并戊", None, "河西社区", "0571-88886605", "13900000605"),
    ]
    for n, (name, town, village, landline, mobile) in enumerate(people, start=4):
        values = [n - 3, name, "女", "村委会委员", town, village, landline, mobile, None]
        for column, value in enumerate(values, start=1):
            if value is not None:
                sheet.cell(row=n, column=column, value=value)
    sheet.merge_cells("E4:E6")
    sheet.merge_cells("E7:E8")
    return _save(book)


def header_variants() -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "干部名单"
    sheet.append(
        ["序 号", "姓  名", "所在乡镇", "村（居）", "固定电话", "联系电话（手机）", "备注"]
    )
    sheet.append([1, "变甲", "城关镇", "城关三村", "0571-88886701", "13900000701", ""])
    sheet.append([2, "变乙", "柳林街道", "柳林村", "", "139 0000 0702", "新任"])
    return _save(book)


# --- point 6: town and village names as people write them -----------------------------------


def town_names() -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "花名册"
    sheet.append(HEADER)
    sheet.append(person(1, "名甲", "城关", "城关一村", "13900000801"))
    sheet.append(person(2, "名乙", "城关镇人民政府", "城关二村", "13900000802"))
    sheet.append(person(3, "名丙", "柳林街道办事处", "柳林村", "13900000803"))
    sheet.append(person(4, "名丁", "河西", "河西一村", "13900000804"))
    sheet.append(person(5, "名戊", "城关镇", "城关1村", "13900000805"))
    sheet.append(person(6, "名己", "城关镇", "河西一村", "13900000806"))
    return _save(book)


# --- point 7: CSV and text ------------------------------------------------------------------


def semicolon_csv() -> bytes:
    lines = [
        ";".join(HEADER),
        '="001";分甲;男;1970.01;主任;城关镇;城关二村;="13900000901";',
        '="002";分乙;女;1971.02;委员;河西街道;河西社区;13900000902;',
    ]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def unicode_text() -> bytes:
    """Excel's 另存为 “Unicode 文本”: UTF-16 LE with BOM, tab-separated."""
    lines = [
        "\t".join(HEADER),
        "1\t统甲\t男\t1970.01\t主任\t柳林街道\t柳林村\t13900001001\t",
        "2\t统乙\t女\t1980.03\t委员\t城关镇\t城关三村\t13900001002\t440524188001010014",
    ]
    return "\ufeff".encode("utf-16-le") + "\r\n".join(lines).encode("utf-16-le")


def open_document() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
    return out.getvalue()


# --- point 8: the district's file, imported by a town --------------------------------------


def district_file() -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "全区"
    sheet.append(HEADER)
    rows = [
        ("区甲", "城关镇", "城关一村"),
        ("区乙", "河西街道", "河西一村"),
        ("区丙", "城关镇", "城关三村"),
        ("区丁", "河西街道", "河西社区"),
        ("区戊", "柳林街道", "柳林村"),
        ("区己", "河西街道", "河西一村"),
    ]
    for n, (name, town, village) in enumerate(rows, start=1):
        sheet.append(person(n, name, town, village, f"139000011{n:02d}"))
    return _save(book)


# --- point 9: the blank template, filled in -------------------------------------------------


def filled_template(template: bytes) -> bytes:
    book = load_workbook(io.BytesIO(template))
    sheet = book["花名册"]
    for n, values in enumerate(
        [
            person("1", "模甲", "城关镇", "城关一村", "13900001201"),
            person(
                "2", "模乙", "河西街道", "河西社区", "13900001202", id_number="11010519491231002X"
            ),
        ],
        start=2,
    ):
        for column, value in enumerate(values, start=1):
            if value:
                sheet.cell(row=n, column=column).value = value
    return _save(book)


@dataclass
class Case:
    filename: str
    build: Callable[..., bytes]
    expect: Expect
    needs_template: bool = False


CASES: dict[str, Case] = {
    "instructions-first": Case(
        "1-填表说明在前.xlsx",
        instructions_first,
        Expect(
            people={"城关镇": ["李一", "李二"]},
            sheets=["花名册"],
            skipped=["工作表“填表说明”只有示例行"],
        ),
    ),
    "sheet-per-town": Case(
        "1-每镇一个工作表.xlsx",
        sheet_per_town,
        Expect(
            people={"城关镇": ["城甲", "城乙"], "河西街道": ["河甲", "河乙"]},
            sheets=["城关镇", "河西街道"],
            skipped=["工作表“汇总”中没有花名册表头"],
        ),
    ),
    "hidden-rows": Case(
        "2-隐藏和筛选.xlsx",
        hidden_and_filtered,
        Expect(
            people={"城关镇": [f"隐{n}" for n in range(1, 7)]},
            sheets=["花名册"],
            warnings=[
                "第 4 行（共 1 行）被筛选隐藏，已一并导入",
                "第 7 行（共 1 行）在表格中是隐藏的",
            ],
        ),
    ),
    "hidden-rows-left-out": Case(
        "2-隐藏和筛选.xlsx",
        hidden_and_filtered,
        Expect(
            people={"城关镇": ["隐1", "隐2", "隐4", "隐5"]},
            sheets=["花名册"],
            skipped=[
                "第 4 行（共 1 行）被筛选隐藏，未导入",
                "第 7 行（共 1 行）在表格中是隐藏的，未导入",
            ],
            include_hidden=False,
        ),
    ),
    "stale-dimension": Case(
        "3-过时的表格范围.xlsx",
        stale_dimension,
        Expect(people={"柳林街道": [f"维{n}" for n in range(1, 13)]}, rows_read=12),
    ),
    "formulas": Case(
        "4-可选列中的公式.xlsx",
        formulas_in_optional_columns,
        Expect(
            people={"城关镇": ["式甲", "式乙"]},
            warnings=["第 3–4 行的单元格是公式，已使用文件中保存的计算结果"],
            values={"式甲": {"birth_month": "1949.12"}, "式乙": {"birth_month": "1880.01"}},
        ),
    ),
    "formula-in-phone": Case(
        "4-手机号是公式.xlsx",
        formula_in_phone,
        Expect(people={"城关镇": ["式丙"]}, errors=[("花名册", 3, "H", "公式")]),
    ),
    "merged-header": Case(
        "5-合并的两行表头.xlsx",
        merged_two_row_header,
        Expect(
            people={"城关镇": ["并甲", "并乙", "并丙"], "河西街道": ["并丁", "并戊"]},
            warnings=["第 4–6 行的镇街是合并单元格", "第 7–8 行的镇街是合并单元格"],
            values={"并甲": {"phone": "13900000601"}, "并丁": {"phone": "13900000604"}},
        ),
    ),
    "header-variants": Case(
        "5-表头的其他写法.xlsx",
        header_variants,
        Expect(
            people={"城关镇": ["变甲"], "柳林街道": ["变乙"]},
            values={"变甲": {"phone": "13900000701"}, "变乙": {"phone": "13900000702"}},
        ),
    ),
    "town-names": Case(
        "6-镇街和村的写法.xlsx",
        town_names,
        Expect(
            people={"城关镇": ["名甲", "名乙", "名戊", "名己"], "柳林街道": ["名丙"]},
            errors=[("花名册", 5, "F", "是否为“河西街道”")],
            warnings=["是否为“城关一村”", "“河西一村”是河西街道的村/社区"],
            new_villages=[("城关镇", "城关1村"), ("城关镇", "河西一村")],
        ),
    ),
    "semicolon-csv": Case(
        "7-分号分隔.csv",
        semicolon_csv,
        Expect(
            people={"城关镇": ["分甲"], "河西街道": ["分乙"]},
            values={"分甲": {"phone": "13900000901"}},
        ),
    ),
    "unicode-text": Case(
        "7-Unicode文本.txt",
        unicode_text,
        Expect(people={"柳林街道": ["统甲"], "城关镇": ["统乙"]}),
    ),
    "open-document": Case(
        "7-另存为ods.ods", open_document, Expect(file_error="不支持OpenDocument 表格")
    ),
    "district-file": Case(
        "8-全区花名册.xlsx",
        district_file,
        Expect(
            people={"城关镇": ["区甲", "区丙"]},
            skipped=["非本镇，已跳过 4 行（河西街道 3 行、柳林街道 1 行）"],
            coordinator_of="城关镇",
        ),
    ),
    "template": Case(
        "9-模板填写.xlsx",
        filled_template,
        Expect(people={"城关镇": ["模甲"], "河西街道": ["模乙"]}, sheets=["花名册"]),
        needs_template=True,
    ),
}


def build_folder(folder: Path, template: bytes) -> dict[str, Path]:
    """Write every case's file into ``folder``; return the path of each case."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, case in CASES.items():
        path = folder / case.filename
        if not path.exists():
            path.write_bytes(case.build(template) if case.needs_template else case.build())
        paths[key] = path
    return paths


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def libreoffice_copies(sources: list[Path], folder: Path) -> list[Path]:
    """The .xlsx ``sources`` opened and saved again by LibreOffice, into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                soffice() or "soffice",
                f"-env:UserInstallation={Path(profile).as_uri()}",
                "--headless",
                "--norestore",
                "--convert-to",
                "xlsx:Calc MS Excel 2007 XML",
                "--outdir",
                str(folder),
                *[str(s) for s in sources],
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return [folder / s.name for s in sources]


def _template_bytes() -> bytes:
    from sciweek import create_app  # noqa: PLC0415 - a script's own start-up
    from sciweek.training.export import roster_template_workbook  # noqa: PLC0415

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with app.test_request_context():
        return roster_template_workbook(list(DISTRICT))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path)
    parser.add_argument("--refresh-libreoffice", action="store_true")
    args = parser.parse_args(argv)
    if args.folder is None and not args.refresh_libreoffice:
        parser.error("give a folder or --refresh-libreoffice")
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch)
        paths = build_folder(folder, _template_bytes())
        print(f"{len(paths)} files in {folder}")
        if args.refresh_libreoffice:
            if soffice() is None:
                print("soffice not found (Debian: libreoffice-calc-nogui)", file=sys.stderr)
                return 1
            xlsx = sorted({p for p in paths.values() if p.suffix == ".xlsx"})
            for old in COMMITTED_LIBREOFFICE.glob("*.xlsx"):
                old.unlink()
            made = libreoffice_copies(xlsx, COMMITTED_LIBREOFFICE)
            print(f"{len(made)} LibreOffice copies in {COMMITTED_LIBREOFFICE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
