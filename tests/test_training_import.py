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
from sciweek.models import Cadre, Town, Village
from sciweek.training.roster import RosterFileError, RosterLimits, parse_roster
from sciweek.training.services import RosterImportError, check_roster, import_roster

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
