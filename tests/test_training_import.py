"""Roster import: the sample files, hand-built problem files, idempotency, CLI exit codes."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from sciweek.extensions import db
from sciweek.models import Cadre, Town, TownAlias, Village
from sciweek.training.roster import RosterFileError, RosterLimits, parse_roster
from sciweek.training.services import (
    RosterImportError,
    check_roster,
    import_roster,
    roster_report,
)

from . import roster_files

# Copies of ../shared/data (rosters as offices send them), kept in the repository so
# that every clone, CI included, tests against them.
DATA = Path(__file__).resolve().parents[1] / "sciweek" / "demo_data"
SAMPLE_TOWNS = ["城关镇", "河西街道", "东湖镇", "青山镇", "白沙乡", "南岭镇", "石桥镇", "柳林街道"]
HEADER = ["序号", "姓名", "性别", "出生年月", "职务", "所属镇街", "村/社区", "手机号码", "身份证号"]


def sample(name: str) -> Path:
    path = DATA / name
    assert path.exists(), f"sample roster {path} missing from the repository"
    return path


@pytest.fixture
def sample_towns(make):
    return [make.town(name=name, code=f"t{i}") for i, name in enumerate(SAMPLE_TOWNS)]


def xlsx_bytes(rows, title_rows=()) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in title_rows:
        sheet.append(row)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def csv_bytes(rows, encoding="utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


def errors_by_row(check):
    found = {}
    for issue in check.errors:
        found.setdefault(issue.row, []).append(issue)
    return found


def line(name, phone, id_number="", post="", village="城关一村", town="城关镇", seq="1"):
    """One roster row in the sample's column order."""
    return [seq, name, "男", "1970.01", post, town, village, phone, id_number]


def cadre_count() -> int:
    return db.session.scalar(select(func.count(Cadre.id)))


@pytest.mark.parametrize(
    ("filename", "bad_phone_row", "bad_id_row"),
    [("cadres_sample.xlsx", 300, 301), ("cadres_sample.csv", 298, 299)],
)
def test_sample_rosters(sample_towns, filename, bad_phone_row, bad_id_row):
    path = sample(filename)
    parsed = parse_roster(path.name, path.read_bytes())
    check = check_roster(parsed)

    assert check.row_count == 298
    assert check.valid_row_count == 296
    errors = errors_by_row(check)
    assert sorted(errors) == [bad_phone_row, bad_id_row]
    (phone_error,) = errors[bad_phone_row]
    assert phone_error.column.startswith("H")
    assert "手机号" in phone_error.column
    assert "11 位" in phone_error.message
    assert "1381234567" in phone_error.message
    (id_error,) = errors[bad_id_row]
    assert id_error.column.startswith("I")
    assert "校验位" in id_error.message
    assert check.town_counts["城关镇"].rows == 31
    assert check.town_counts["城关镇"].error_rows == 1
    assert sum(c.people for c in check.town_counts.values()) == 296

    # Nothing is written while errors remain ...
    with pytest.raises(RosterImportError):
        import_roster(check, active_from=date(2026, 1, 1))
    db.session.rollback()
    assert cadre_count() == 0
    # ... unless only the valid rows are asked for.
    result = import_roster(
        check, active_from=date(2026, 1, 1), only_valid=True, new_villages=check.new_village_keys
    )
    db.session.commit()
    assert (result.created, result.skipped_rows) == (296, 2)
    assert cadre_count() == 296


def test_xlsx_numeric_phone_cells_are_read_and_flagged(sample_towns):
    path = sample("cadres_sample.xlsx")
    check = check_roster(parse_roster(path.name, path.read_bytes()))
    warnings = {i.row: i for i in check.warnings}
    assert 40 in warnings
    assert "数字格式" in warnings[40].message
    assert "16613963410" in warnings[40].message
    row40 = next(r for r in check.parsed.rows if r.row == 40)
    assert row40.phone == "16613963410"
    assert row40.id_number == "33010619840618365X"  # lower-case x upper-cased


def test_same_file_twice_and_csv_after_xlsx_change_nothing(sample_towns):
    xlsx = sample("cadres_sample.xlsx")
    csv_path = sample("cadres_sample.csv")
    check = check_roster(parse_roster(xlsx.name, xlsx.read_bytes()))
    import_roster(
        check, active_from=date(2026, 1, 1), only_valid=True, new_villages=check.new_village_keys
    )
    db.session.commit()
    villages = db.session.scalar(select(func.count(Village.id)))
    for path in (xlsx, csv_path):
        again = check_roster(parse_roster(path.name, path.read_bytes()))
        result = import_roster(again, active_from=date(2026, 5, 1), only_valid=True)
        db.session.commit()
        assert (result.created, result.updated, result.unchanged) == (0, 0, 296)
    assert cadre_count() == 296
    assert db.session.scalar(select(func.count(Village.id))) == villages
    assert db.session.scalar(select(func.min(Cadre.active_from))) == date(2026, 1, 1)


def test_header_beneath_title_rows_and_header_variants(make):
    make.town(name="城关镇", villages=["城关一村"])
    data = xlsx_bytes(
        [
            ["姓名", "镇（街道）", "村（社区）", "联系电话", "职务"],
            ["张三", "城关镇", "城关一村", "138 0013 8000", "村委会主任"],
        ],
        title_rows=[["城关镇干部名单"], [], ["填报日期：2026年3月1日"]],
    )
    parsed = parse_roster("r.xlsx", data)
    assert parsed.header_row == 4
    check = check_roster(parsed)
    assert not check.has_errors
    assert check.people[0].phone == "13800138000"


def test_excel_mangled_numbers_are_named(make):
    make.town(name="城关镇", villages=["城关一村"])
    data = csv_bytes(
        [
            HEADER,
            ["1", "甲", "男", "", "", "城关镇", "城关一村", "1.38001E+10", ""],
            ["2", "乙", "男", "", "", "城关镇", "城关一村", "13800138001", "3.30106E+17"],
            ["3", "丙", "男", "", "", "城关镇", "城关一村", "13800138002.0", ""],
            ["4", "丁", "男", "", "", "城关镇", "城关一村", "13800138003", "110105491231002"],
            ["5", "戊", "男", "", "", "城关镇", "城关一村", "13800138004", "110105194902310026"],
        ]
    )
    check = check_roster(parse_roster("r.csv", data))
    errors = errors_by_row(check)
    assert "科学计数法" in errors[2][0].message
    assert "身份证号" in errors[3][0].message
    assert "数字" in errors[3][0].message
    assert 4 not in errors  # "13800138002.0": digits intact, read with a warning
    assert any(i.row == 4 for i in check.warnings)
    assert "15 位" in errors[5][0].message
    assert "出生日期" in errors[6][0].message


def test_xlsx_id_number_stored_as_number_is_an_error(make):
    make.town(name="城关镇", villages=["城关一村"])
    data = xlsx_bytes(
        [HEADER, [1, "甲", "男", "", "", "城关镇", "城关一村", "13800138000", 330106199404044000]]
    )
    (issue,) = check_roster(parse_roster("r.xlsx", data)).errors
    assert issue.row == 2
    assert issue.column.startswith("I")
    assert "15 位有效数字" in issue.message


def test_unknown_town_is_error_new_village_is_created(make):
    make.town(name="城关镇", villages=["城关一村"])
    data = csv_bytes(
        [
            HEADER,
            ["1", "甲", "男", "", "", "城关镇", "城关新村", "13800138000", ""],
            ["2", "乙", "男", "", "", "不存在镇", "某村", "13800138001", ""],
        ]
    )
    check = check_roster(parse_roster("r.csv", data))
    (error,) = check.errors
    assert error.row == 3
    assert "未知的镇街" in error.message
    assert error.column.startswith("F")
    assert check.new_village_keys == [("城关镇", "城关新村")]
    assert check.new_villages[0].rows == [("", 2)]
    import_roster(
        check, active_from=date(2026, 1, 1), only_valid=True, new_villages=[("城关镇", "城关新村")]
    )
    db.session.commit()
    assert db.session.scalar(select(Village).where(Village.name == "城关新村")) is not None


def test_one_person_two_posts_is_one_cadre(make):
    make.town(name="城关镇", villages=["城关一村"])
    data = csv_bytes(
        [
            HEADER,
            line("王书记", "13800138000", "11010519491231002X", "村党组织书记"),
            line("王书记", "138-0013-8000", "", "村委会主任"),
            line("李四", "13800138009", "11010519491231002X", "村委会委员"),
        ]
    )
    check = check_roster(parse_roster("r.csv", data))
    # Row 4 shares the ID number with rows 2-3 but has another name: all three are doubtful.
    assert sorted(errors_by_row(check)) == [2, 3, 4]

    fixed = csv_bytes(
        [
            HEADER,
            line("王书记", "13800138000", "11010519491231002X", "村党组织书记"),
            line("王书记", "138-0013-8000", "", "村委会主任"),
        ]
    )
    check = check_roster(parse_roster("r.csv", fixed))
    assert not check.has_errors
    assert any("合并" in n.message and n.row == 2 for n in check.notes)
    assert check.town_counts["城关镇"].merged == 1
    import_roster(check, active_from=date(2026, 1, 1))
    db.session.commit()
    (cadre,) = db.session.scalars(select(Cadre))
    assert cadre.posts == "村党组织书记、村委会主任"
    assert cadre.id_number == "11010519491231002X"


def test_matching_by_phone_then_name_and_village(make):
    make.town(name="城关镇", villages=["城关一村"])
    first = csv_bytes([HEADER, line("甲", "13800138000", post="主任")])
    import_roster(check_roster(parse_roster("r.csv", first)), active_from=date(2026, 1, 1))
    db.session.commit()
    # Same phone, a post added: an update, not a new cadre.
    second = csv_bytes([HEADER, line("甲", "13800138000", post="书记")])
    check = check_roster(parse_roster("r.csv", second))
    assert check.people[0].action == "update"
    import_roster(check, active_from=date(2026, 1, 1))
    db.session.commit()
    # New phone, same name and village: the same cadre, phone changed.
    third = csv_bytes([HEADER, line("甲", "13900139000", post="书记")])
    import_roster(check_roster(parse_roster("r.csv", third)), active_from=date(2026, 1, 1))
    db.session.commit()
    (cadre,) = db.session.scalars(select(Cadre))
    assert (cadre.posts, cadre.phone) == ("书记", "13900139000")


def test_coordinator_imports_only_own_town(make):
    """Point 8 of issue 13: another town's rows are one note, not an error per row."""
    own = make.town(name="城关镇", villages=["城关一村"])
    make.town(name="河西街道", villages=["河西一村"])
    data = csv_bytes(
        [
            HEADER,
            ["1", "甲", "男", "", "", "城关镇", "城关一村", "13800138000", ""],
            ["2", "乙", "男", "", "", "河西街道", "河西一村", "13800138001", ""],
            ["3", "丙", "男", "", "", "河西街道", "河西一村", "13800138002", ""],
        ]
    )
    check = check_roster(parse_roster("r.csv", data), only_town_id=own.id)
    assert check.errors == []
    (skipped,) = check.skipped
    assert "非本镇，已跳过 2 行" in skipped.message
    assert "河西街道 2 行" in skipped.message
    assert [p.name for p in check.importable] == ["甲"]
    assert list(check.town_counts) == ["城关镇"]
    assert check.row_count == 1
    import_roster(check, active_from=date(2026, 1, 1))
    db.session.commit()
    assert [c.name for c in db.session.scalars(select(Cadre))] == ["甲"]


def test_coordinator_file_without_own_rows_says_so(make):
    own = make.town(name="城关镇", villages=["城关一村"])
    make.town(name="河西街道", villages=["河西一村"])
    data = csv_bytes([HEADER, ["1", "乙", "男", "", "", "河西街道", "河西一村", "13800138001", ""]])
    check = check_roster(parse_roster("r.csv", data), only_town_id=own.id)
    (error,) = check.errors
    assert "没有本镇街（城关镇）的行" in error.message


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("empty.xlsx", b"", "空"),
        ("empty.csv", b"", "空"),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "只支持"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, ".xls"),
        ("fake.xlsx", b"this is not a spreadsheet", "不是有效的"),
        ("broken.xlsx", b"PK\x03\x04" + b"\x00" * 100, "无法读取"),
        ("binary.csv", b"\x00\x01\x02" * 10, "不是文本"),
        ("noheader.csv", "甲,乙,丙\n1,2,3\n".encode(), "找不到表头"),
        ("huge.csv", b"x" * (10 * 1024 * 1024 + 1), "太大"),
    ],
)
def test_unreadable_files_get_a_clear_message(app, filename, data, message):
    with pytest.raises(RosterFileError) as exc:
        parse_roster(filename, data)
    assert message in str(exc.value)


def test_header_missing_a_required_column(app):
    data = csv_bytes([["姓名", "手机号", "所属镇街"], ["甲", "13800138000", "城关镇"]])
    with pytest.raises(RosterFileError, match="村/社区"):
        parse_roster("r.csv", data)


def test_formulas_are_rejected_per_cell(make):
    make.town(name="城关镇", villages=["城关一村"])
    data = xlsx_bytes([HEADER, line('=HYPERLINK("http://x","甲")', "13800138000")])
    check = check_roster(parse_roster("r.xlsx", data))
    (error,) = check.errors
    assert error.row == 2
    assert error.column.startswith("B")
    assert "公式" in error.message


def test_gbk_and_utf8_csv_read_the_same(make):
    make.town(name="城关镇", villages=["城关一村"])
    rows = [HEADER, ["1", "张三", "男", "", "", "城关镇", "城关一村", "13800138000", ""]]
    for encoding in ("gbk", "utf-8", "utf-8-sig"):
        parsed = parse_roster("r.csv", csv_bytes(rows, encoding))
        assert [r.name for r in parsed.rows] == ["张三"]


def test_sheet_with_too_many_rows_is_refused(app):
    rows = [HEADER] + [
        [i, "甲", "男", "", "", "城关镇", "城关一村", "13800138000", ""]
        for i in range(RosterLimits().max_rows + 100)
    ]
    with pytest.raises(RosterFileError, match="超过"):
        parse_roster("big.csv", csv_bytes(rows))


def test_header_only_file_reports_no_data(make):
    check = check_roster(parse_roster("r.csv", csv_bytes([HEADER])))
    assert check.has_errors
    assert "没有任何干部数据" in check.errors[0].message
    with pytest.raises(RosterImportError):
        import_roster(check, active_from=date(2026, 1, 1), only_valid=True)


# --- command line --------------------------------------------------------------------------


def test_cli_exit_codes(runner, sample_towns, tmp_path):
    path = str(sample("cadres_sample.csv"))
    result = runner.invoke(args=["import-cadres", path, "--dry-run"])
    assert result.exit_code == 1
    assert "第 298 行" in result.output
    assert "第 299 行" in result.output
    result = runner.invoke(args=["import-cadres", path])
    assert result.exit_code == 1
    assert cadre_count() == 0

    result = runner.invoke(args=["import-cadres", path, "--only-valid", "--create-villages"])
    assert result.exit_code == 0, result.output
    assert cadre_count() == 296
    result = runner.invoke(args=["import-cadres", path, "--only-valid"])
    assert result.exit_code == 0
    assert "新增 0 人" in result.output
    assert cadre_count() == 296

    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"garbage")
    assert runner.invoke(args=["import-cadres", str(bad)]).exit_code == 2
    assert runner.invoke(args=["import-cadres", str(tmp_path / "missing.csv")]).exit_code == 2

    clean = tmp_path / "clean.csv"
    clean.write_bytes(
        csv_bytes([HEADER, ["1", "新人", "女", "", "", "城关镇", "城关一村", "13600136000", ""]])
    )
    assert runner.invoke(args=["import-cadres", str(clean), "--dry-run"]).exit_code == 0
    assert cadre_count() == 296
    assert runner.invoke(args=["import-cadres", str(clean)]).exit_code == 0
    assert cadre_count() == 297
    assert db.session.scalar(select(Town).where(Town.name == "城关镇")) is not None


# --- issue 13: rosters as townships make them ------------------------------------------------


def workbook_bytes(sheets: dict[str, list[list]], hidden_rows=(), auto_filter="") -> bytes:
    """An .xlsx with one sheet per entry; ``hidden_rows`` hidden in the first sheet."""
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    first = book.worksheets[0]
    for number in hidden_rows:
        first.row_dimensions[number].hidden = True
    if auto_filter:
        first.auto_filter.ref = auto_filter
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_instructions_sheet_with_an_example_row_is_not_what_is_imported(make):
    """Defect 1 (issue 13): a first sheet 填表说明 with an example row (张三) was imported
    instead of the roster sheet after it."""
    make.town(name="城关镇", villages=["城关一村"])
    data = workbook_bytes(
        {
            "填表说明": [
                ["请按下表填写，每行一人"],
                HEADER,
                ["例", "张三", "男", "1970.01", "主任", "城关镇", "城关一村", "13800138000", ""],
            ],
            "花名册": [HEADER, line("李四", "13900139001"), line("王五", "13900139002")],
        }
    )
    parsed = parse_roster("r.xlsx", data)
    check = check_roster(parsed)
    assert [p.name for p in check.importable] == ["李四", "王五"]
    assert parsed.sheet_names == ["花名册"]
    assert any("填表说明" in i.message and "示例" in i.message for i in check.skipped)


def test_one_sheet_per_town_reads_every_sheet(runner, make, tmp_path):
    """Defect 1 (issue 13): a workbook with one sheet per town imported only the first."""
    make.town(name="城关镇", villages=["城关一村"])
    make.town(name="河西街道", villages=["河西一村"])
    data = workbook_bytes(
        {
            "城关镇": [HEADER, line("甲", "13900139011")],
            "河西街道": [HEADER, line("乙", "13900139012", town="河西街道", village="河西一村")],
            "说明": [["本表由各镇街汇总"]],
        }
    )
    check = check_roster(parse_roster("r.xlsx", data))
    assert {p.name: p.town_name for p in check.importable} == {"甲": "城关镇", "乙": "河西街道"}
    path = tmp_path / "district.xlsx"
    path.write_bytes(data)
    result = runner.invoke(args=["import-cadres", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "读取工作表：城关镇、河西街道" in result.output
    assert "说明" in result.output  # named as passed over


def test_example_rows_beneath_the_header_are_notes(make):
    make.town(name="城关镇", villages=["城关一村"])
    rows = [
        HEADER,
        ["示例", "张三", "男", "1970.01", "主任", "城关镇", "城关一村", "13800138000", ""],
        line("李四", "13900139021"),
        ["2", "王五（样例）", "男", "", "", "城关镇", "城关一村", "13900139022", ""],
    ]
    check = check_roster(parse_roster("r.csv", csv_bytes(rows)))
    assert [p.name for p in check.importable] == ["李四"]
    (note,) = check.skipped
    assert note.row == 2
    assert "第 2、4 行是示例行" in note.message


def test_hidden_and_filtered_rows_are_named_and_optional(make):
    """Defect 2 (issue 13): hidden and filtered rows were imported without notice."""
    make.town(name="城关镇", villages=["城关一村"])
    rows = [HEADER] + [line(f"人{n}", f"139001390{n:02d}") for n in range(1, 7)]
    data = workbook_bytes({"花名册": rows}, hidden_rows=(3, 4, 7), auto_filter="A1:I5")
    check = check_roster(parse_roster("r.xlsx", data))
    assert len(check.importable) == 6  # by default included ...
    messages = {i.row: i.message for i in check.warnings}
    assert "第 3–4 行（共 2 行）被筛选隐藏，已一并导入" in messages[3]  # ... with a warning
    assert "第 7 行（共 1 行）在表格中是隐藏的" in messages[7]
    assert all(i.sheet == "花名册" for i in check.warnings)

    check = check_roster(parse_roster("r.xlsx", data, include_hidden=False))
    assert [p.name for p in check.importable] == ["人1", "人4", "人5"]
    assert {i.row for i in check.skipped} == {3, 7}
    assert not check.warnings


def test_a_stale_dimension_does_not_cut_the_read_short(make):
    """Defect 3 (issue 13): <dimension ref="A1:I3"> over 40 rows read 2 of them in
    openpyxl's read-only mode; the report says how many rows were read."""
    make.town(name="城关镇", villages=["城关一村"])
    rows = [(1, HEADER)] + [(n, line(f"人{n}", f"1390013{n:04d}")) for n in range(2, 42)]
    data = roster_files.workbook(roster_files.sheet_xml(rows, dimension="A1:I3"))
    parsed = parse_roster("r.xlsx", data)
    assert len(parsed.rows) == 40
    assert parsed.rows_read == 40
    check = check_roster(parsed)
    assert len(check.importable) == 40
    assert roster_report(check)["rows_read"] == 40


def test_formulas_in_optional_columns_use_the_saved_result(make):
    make.town(name="城关镇", villages=["城关一村"])
    row = (
        '<row r="2"><c r="A2"><f>ROW()-1</f><v>1</v></c>{cells}'
        '<c r="D2" t="str"><f>MID(I2,7,4)</f><v>1949</v></c></row>'
    )
    cells = "".join(
        f'<c r="{c}2" t="inlineStr"><is><t>{v}</t></is></c>'
        for c, v in zip(
            "BFGHI", ["甲", "城关镇", "城关一村", "13900139031", "11010519491231002X"], strict=True
        )
    )
    data = roster_files.workbook(
        roster_files.sheet_xml([(1, HEADER)], tail=row.format(cells=cells))
    )
    check = check_roster(parse_roster("r.xlsx", data))
    assert not check.errors
    assert check.importable[0].birth_month == "1949"
    assert sorted(w.column[:1] for w in check.warnings) == ["A", "D"]
    assert all(
        "第 2 行的单元格是公式，已使用文件中保存的计算结果" in w.message for w in check.warnings
    )

    # In a key column a formula stays an error: its saved result may be stale.
    phone = '<c r="H2" t="inlineStr"><is><t>13900139031</t></is></c>'
    formula = '<c r="H2" t="str"><f>"139"&amp;"00139031"</f><v>13900139031</v></c>'
    key_row = row.format(cells=cells.replace(phone, formula))
    data = roster_files.workbook(roster_files.sheet_xml([(1, HEADER)], tail=key_row))
    (error,) = check_roster(parse_roster("r.xlsx", data)).errors
    assert (error.row, error.column[:1]) == (2, "H")
    assert "公式" in error.message


def test_semicolon_csv_and_excel_text_cells(make):
    make.town(name="城关镇", villages=["城关一村"])
    text = ";".join(HEADER) + '\n="01";甲;男;;;城关镇;城关一村;="13900139041";\n'
    check = check_roster(parse_roster("r.csv", text.encode("utf-8")))
    assert not check.errors
    assert check.importable[0].phone == "13900139041"
    # Excel's "sep=;" first line names the separator; the line after it is row 1.
    with_directive = "sep=;\r\n" + text.replace("城关镇", "城关镇", 1)
    check = check_roster(parse_roster("r.csv", with_directive.encode("utf-8")))
    assert check.importable[0].rows == [("", 2)]


def test_utf16_unicode_text_from_excel(make):
    make.town(name="城关镇", villages=["城关一村"])
    text = "\t".join(HEADER) + "\r\n1\t甲\t男\t\t\t城关镇\t城关一村\t13900139051\t\r\n"
    data = b"\xff\xfe" + text.encode("utf-16-le")
    check = check_roster(parse_roster("r.txt", data))
    assert [p.name for p in check.importable] == ["甲"]


def test_a_new_village_is_created_only_when_confirmed(make):
    make.town(name="城关镇", villages=["城关一村"])
    check = check_roster(
        parse_roster("r.csv", csv_bytes([HEADER, line("甲", "13900139061", village="城关1村")]))
    )
    (village,) = check.new_villages
    assert (village.town, village.village, village.rows) == ("城关镇", "城关1村", [("", 2)])
    assert any("是否为“城关一村”" in w.message for w in check.warnings)
    with pytest.raises(RosterImportError, match="没有确认新建"):
        import_roster(check, active_from=date(2026, 1, 1))
    db.session.rollback()
    with pytest.raises(RosterImportError, match="没有可以导入的行"):
        import_roster(check, active_from=date(2026, 1, 1), only_valid=True)
    db.session.rollback()
    assert db.session.scalar(select(func.count(Village.id))) == 1
    import_roster(check, active_from=date(2026, 1, 1), new_villages=[("城关镇", "城关1村")])
    db.session.commit()
    assert db.session.scalar(select(func.count(Village.id))) == 2


def test_town_written_otherwise_is_found_or_suggested(make):
    town = make.town(name="城关镇", villages=["城关一村"])
    db.session.add(TownAlias(town_id=town.id, alias="城关"))
    db.session.commit()
    rows = [
        HEADER,
        line("甲", "13900139071", town="城关"),
        line("乙", "13900139072", town="城关镇人民政府"),
        line("丙", "13900139073", town="城关街"),
    ]
    check = check_roster(parse_roster("r.csv", csv_bytes(rows)))
    assert [p.name for p in check.importable] == ["甲", "乙"]
    (error,) = check.errors
    assert (error.row, error.column[:1]) == (4, "F")
    assert "是否为“城关镇”" in error.message


def test_cli_json_report(runner, make, tmp_path):
    import json

    make.town(name="城关镇", villages=["城关一村"])
    make.town(name="河西街道", villages=["河西一村"])
    data = workbook_bytes(
        {
            "城关镇": [HEADER, line("甲", "13900139081"), line("乙", "1390013908")],
            "河西街道": [HEADER, line("丙", "13900139083", town="河西街道", village="河西新村")],
        }
    )
    path = tmp_path / "r.xlsx"
    path.write_bytes(data)
    result = runner.invoke(args=["import-cadres", str(path), "--dry-run", "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert list(report) == [
        "sheets", "rows_read", "valid_people", "by_town", "errors", "warnings", "skipped",
        "new_villages",
    ]  # fmt: skip
    assert report["sheets"] == ["城关镇", "河西街道"]
    assert (report["rows_read"], report["valid_people"]) == (3, 2)
    assert report["by_town"] == {"城关镇": 1, "河西街道": 1}
    (error,) = report["errors"]
    assert (error["sheet"], error["row"], error["column"]) == ("城关镇", 3, "H（手机号码）")
    assert report["new_villages"] == [{"town": "河西街道", "village": "河西新村", "rows": [2]}]
    assert report["skipped"] == []

    result = runner.invoke(args=["import-cadres", str(path), "--only-valid", "--format", "json"])
    assert result.exit_code == 0  # the unconfirmed village's row is skipped
    assert json.loads(result.stdout)["valid_people"] == 2
    assert [c.name for c in db.session.scalars(select(Cadre))] == ["甲"]

    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"garbage")
    result = runner.invoke(args=["import-cadres", str(bad), "--format", "json"])
    assert result.exit_code == 2
    (error,) = json.loads(result.stdout)["errors"]
    assert "不是有效的 .xlsx" in error["message"]


def test_villages_sort_in_natural_order(make):
    from sciweek.choices import village_choices
    from sciweek.placenames import natural_sorted

    assert natural_sorted(["十村", "二村", "一村", "十一村", "三村", "二十村"]) == [
        "一村", "二村", "三村", "十村", "十一村", "二十村",
    ]  # fmt: skip
    assert natural_sorted(["10组", "2组", "1组"]) == ["1组", "2组", "10组"]
    make.town(name="城关镇", villages=["城关十村", "城关二村", "城关一村", "城关三村"])
    assert [label.split(" · ")[1] for _id, label in village_choices()] == [
        "城关一村", "城关二村", "城关三村", "城关十村",
    ]  # fmt: skip
