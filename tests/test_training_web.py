"""Training back office over HTTP: who sees what, import flow, exports, targets, links."""

from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from sciweek import create_app
from sciweek.extensions import db
from sciweek.models import (
    Cadre,
    CoverageTarget,
    DistrictTarget,
    Registration,
    Town,
    TownAlias,
    Village,
)
from sciweek.storage import get_storage
from sciweek.training.roster import RosterFileError, parse_roster
from sciweek.training.services import set_target
from sciweek.training.uploads import upload_key

from .training_helpers import attend, cadre, training

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HEADER = ["序号", "姓名", "性别", "出生年月", "职务", "所属镇街", "村/社区", "手机号码", "身份证号"]


def csv_upload(rows, name="roster.csv"):
    text = "\n".join(",".join(r) for r in rows) + "\n"
    return {"file": (io.BytesIO(text.encode("gbk")), name)}


@pytest.fixture
def district(make):
    north = make.town(name="城关镇", code="chengguan", villages=["城关一村", "城关二村"])
    south = make.town(name="河西街道", code="hexi", villages=["河西一村"])
    people = [cadre(north, "城关一村", name="甲"), cadre(north, "城关二村", name="乙")]
    people.append(cadre(south, name="丙"))
    course = training(make, north, [(2026, 3, 1)])
    attend(course, people[0].phone)
    return north, south, people


def test_coverage_page_for_admin_shows_district_and_bars(client, auth, make, district):
    north, south, _people = district
    auth.login(make.user("admin"))
    response = client.get("/manage/training/?year=2026")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "全区" in html
    assert "城关镇" in html
    assert "河西街道" in html
    assert 'class="bar-fill" data-coverage="50.0"' in html  # its width: static/js/coverage.js
    # The counting rules, in words (each is tested in test_training_coverage.py and beside it).
    assert "计算规则" in html
    assert "不是培训举办地的" in html
    assert "任职前当年参加的培训同样算数" in html
    assert "截至今天已经举办" in html
    with client.get("/static/css/training.css") as stylesheet:  # closes the file it sends
        assert "@media print" in stylesheet.get_data(as_text=True)


def test_coordinator_sees_only_own_town(client, auth, make, district):
    north, south, _people = district
    auth.login(make.user("coordinator", town=north))
    html = client.get("/manage/training/?year=2026").get_data(as_text=True)
    assert "城关镇" in html
    assert "河西街道" not in html
    assert "全区" not in html
    assert client.get(f"/manage/training/towns/{north.id}?year=2026").status_code == 200
    assert client.get(f"/manage/training/towns/{south.id}?year=2026").status_code == 403
    assert client.get(f"/manage/training/towns/{south.id}/untrained.xlsx").status_code == 403
    assert client.get(f"/manage/training/roster?town_id={south.id}").status_code == 200  # own town
    assert "丙" not in client.get(f"/manage/training/roster?town_id={south.id}").get_data(
        as_text=True
    )
    assert client.get("/manage/training/targets").status_code == 403


def test_organizer_views_district_but_not_cadre_lists(client, auth, make, district):
    north, _south, _people = district
    auth.login(make.user("organizer"))
    assert "全区" in client.get("/manage/training/?year=2026").get_data(as_text=True)
    assert client.get(f"/manage/training/towns/{north.id}").status_code == 403
    assert client.get("/manage/training/import").status_code == 403


def test_anonymous_is_sent_to_login(client):
    response = client.get("/manage/training/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_drill_down_lists_untrained_by_village_with_masked_phones(client, auth, make, district):
    north, _south, people = district
    auth.login(make.user("admin"))
    html = client.get(f"/manage/training/towns/{north.id}?year=2026").get_data(as_text=True)
    assert "乙" in html
    assert "城关二村" in html
    assert people[1].phone not in html
    assert f"{people[1].phone[:3]}****{people[1].phone[-4:]}" in html
    assert ">甲<" not in html  # trained


def test_coverage_export_is_xlsx_with_formulas_neutralised(client, auth, make):
    town = make.town(name="=cmd|' /C calc'!A0", code="+evil", villages=["@村"])
    cadre(town, name="-甲")
    auth.login(make.user("admin"))
    response = client.get("/manage/training/coverage.xlsx?year=2026")
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(response.data)).active
    values = [c.value for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
    assert "'=cmd|' /C calc'!A0" in values
    assert "'+evil" in values
    assert not any(v.startswith(("=", "+", "-", "@")) for v in values)

    response = client.get(f"/manage/training/towns/{town.id}/untrained.xlsx?year=2026")
    sheet = load_workbook(io.BytesIO(response.data)).active
    values = [c.value for row in sheet.iter_rows() for c in row]
    assert "'-甲" in values
    assert "'@村" in values
    assert any(isinstance(v, str) and "****" in v for v in values)


def test_import_flow_preview_then_confirm(client, auth, make, app):
    town = make.town(name="城关镇", villages=["城关一村"])
    auth.login(make.user("coordinator", town=town))
    rows = [
        HEADER,
        ["1", "张三", "男", "1980.01", "书记", "城关镇", "城关一村", "13800138000", ""],
        ["2", "李四", "女", "1982.02", "主任", "城关镇", "城关一村", "1381234567", ""],
    ]
    response = client.post("/manage/training/import", data=csv_upload(rows))
    assert response.status_code == 302
    preview_url = response.headers["Location"]
    token = preview_url.rsplit("/", 1)[1]
    # The rows wait on the server, not in the cookie.
    assert get_storage().exists(upload_key(token))
    html = client.get(preview_url).get_data(as_text=True)
    assert "手机号格式不正确" in html
    assert "H（手机号码）" in html
    assert re.search(r"<td>3</td>", html)

    response = client.post(preview_url, data={"active_from": "2026-01-01"})
    assert response.status_code == 200
    assert "未导入任何数据" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Cadre.id))) == 0

    response = client.post(preview_url, data={"active_from": "2026-01-01", "only_valid": "y"})
    assert response.status_code == 302
    assert db.session.scalar(select(func.count(Cadre.id))) == 1
    # The stored upload is gone once imported.
    assert client.get(preview_url).status_code == 302


def test_preview_token_belongs_to_its_uploader(client, auth, make):
    town = make.town(name="城关镇", villages=["城关一村"])
    auth.login(make.user("admin"))
    rows = [HEADER, ["1", "张三", "男", "", "", "城关镇", "城关一村", "13800138000", ""]]
    preview_url = client.post("/manage/training/import", data=csv_upload(rows)).headers["Location"]
    auth.logout()
    auth.login(make.user("coordinator", town=town))
    response = client.get(preview_url)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/import")


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("empty.csv", b"", "文件是空的"),
        ("roster.pdf", b"%PDF-1.4", "只支持"),
        ("roster.xlsx", b"PK\x03\x04broken", "无法读取"),
        ("roster.csv", "甲,乙\n".encode(), "找不到表头"),
        ("big.xlsx", b"\x00" * (20 * 1024 * 1024), "文件太大"),
        (None, None, "请选择文件"),
    ],
)
def test_bad_uploads_get_a_message_not_a_500(client, auth, make, filename, content, message):
    auth.login(make.user("admin"))
    data = {} if filename is None else {"file": (io.BytesIO(content), filename)}
    response = client.post("/manage/training/import", data=data)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Cadre.id))) == 0


def test_leave_keeps_the_cadre(client, auth, make, district):
    north, south, people = district
    auth.login(make.user("coordinator", town=north))
    assert client.post(f"/manage/training/cadres/{people[2].id}/leave").status_code == 403
    response = client.post(
        f"/manage/training/cadres/{people[1].id}/leave", data={"left_on": "2026-06-15"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Cadre, people[1].id).left_on == date(2026, 6, 15)
    response = client.post(
        f"/manage/training/cadres/{people[0].id}/leave", data={"left_on": "1999-01-01"}
    )
    assert response.status_code == 200
    assert "不能早于" in response.get_data(as_text=True)


def test_admin_sets_targets(client, auth, make, district):
    north, south, _people = district
    auth.login(make.user("admin"))
    page = client.get("/manage/training/targets?year=2026").get_data(as_text=True)
    assert "城关镇" in page
    data = {
        "rows-0-town_id": str(north.id),
        "rows-0-target_percent": "80",
        "rows-0-threshold_hours": "2",
        "rows-1-town_id": str(south.id),
        "rows-1-target_percent": "150",
    }
    response = client.post("/manage/training/targets?year=2026", data=data)
    assert response.status_code == 200
    assert "0 到 100" in response.get_data(as_text=True)
    data["rows-1-target_percent"] = "60"
    assert client.post("/manage/training/targets?year=2026", data=data).status_code == 302
    targets = {t.town_id: t for t in db.session.scalars(select(CoverageTarget))}
    assert float(targets[north.id].target_percent) == 80.0
    assert targets[south.id].threshold_hours is None
    # Emptying a town's field removes its target.
    data["rows-1-target_percent"] = ""
    assert client.post("/manage/training/targets?year=2026", data=data).status_code == 302
    db.session.expire_all()
    remaining = set(db.session.scalars(select(CoverageTarget.town_id)))
    assert remaining == {north.id}


def test_unmatched_attendee_linked_by_coordinator(client, auth, make, district):
    north, south, people = district
    course = training(make, north, [(2026, 4, 1)])
    stranger = attend(course, "13700000001", name="新号码", town_id=north.id)
    auth.login(make.user("coordinator", town=north))
    html = client.get("/manage/training/unmatched?year=2026").get_data(as_text=True)
    assert "<td>新号码</td>" in html
    assert "137****0001" in html
    # Not a cadre of this town: refused.
    response = client.post(
        "/manage/training/unmatched?year=2026",
        data={"registration_id": stranger.id, "cadre_id": people[2].id},
    )
    assert response.status_code == 200  # not among this coordinator's choices
    assert db.session.get(Registration, stranger.id).cadre_id is None
    # A tampered hidden field is a form error, not a server error.
    response = client.post(
        "/manage/training/unmatched?year=2026",
        data={"registration_id": "abc", "cadre_id": people[1].id},
    )
    assert response.status_code == 200
    response = client.post(
        "/manage/training/unmatched?year=2026",
        data={"registration_id": stranger.id, "cadre_id": people[1].id},
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Registration, stranger.id).cadre_id == people[1].id
    html = client.get("/manage/training/unmatched?year=2026").get_data(as_text=True)
    assert "<td>新号码</td>" not in html
    assert "没有未匹配的参训人员" in html


def test_coverage_cli_json_and_csv(runner, make, district):
    import json

    north, _south, _people = district
    result = runner.invoke(args=["coverage", "--year", "2026", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["year"] == 2026
    assert data["district"] == {
        "cadres": 3, "trained": 1, "coverage": 1 / 3, "target": None,
        "target_source": None, "gap": None, "town_gaps": None,
    }  # fmt: skip
    town = next(t for t in data["towns"] if t["code"] == "chengguan")
    assert set(town) == {
        "code", "name", "cadres", "trained", "coverage", "target", "gap",
        "attendances", "trainings", "hours",
    }  # fmt: skip
    assert (town["cadres"], town["trained"], town["coverage"]) == (2, 1, 0.5)
    assert (town["attendances"], town["trainings"], town["hours"]) == (1, 1, 2.0)
    result = runner.invoke(args=["coverage", "--year", "2026", "--format", "csv"])
    assert result.output.splitlines()[0].startswith("code,name,cadres")
    result = runner.invoke(args=["coverage", "--year", "2026"])
    assert "城关镇" in result.output
    assert "50.0%" in result.output
    # With a town target and no district target, the table says where the district's is from.
    set_target(north.id, 2026, Decimal("100"), None)
    db.session.commit()
    result = runner.invoke(args=["coverage", "--year", "2026", "--format", "json"])
    district = json.loads(result.output)["district"]
    assert (district["target_source"], district["gap"], district["town_gaps"]) == ("towns", 1, 1)
    result = runner.invoke(args=["coverage", "--year", "2026"])
    assert "各镇街差额之和：1" in result.output
    assert "全区目标按各镇街目标折算" in result.output


def test_xlsx_with_100000_rows_is_refused_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(HEADER)
    for i in range(100_000):
        sheet.append([i, "甲", "男", "", "", "城关镇", "城关一村", "13800138000", ""])
    out = io.BytesIO()
    workbook.save(out)
    # (How long it takes is for benchmarks, not for a test.)
    with app.app_context(), pytest.raises(RosterFileError, match="超过"):
        parse_roster("big.xlsx", out.getvalue())


# --- issue 13: the preview shows the report; villages confirmed; template; aliases -----------


def xlsx_upload(sheets: dict[str, list[list]], name="roster.xlsx", hidden_rows=()):
    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    for number in hidden_rows:
        book.worksheets[0].row_dimensions[number].hidden = True
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_preview_shows_the_report_and_creates_only_confirmed_villages(
    client, auth, make, runner, tmp_path
):
    import json

    make.town(name="城关镇", code="chengguan", villages=["城关一村"])
    make.town(name="河西街道", code="hexi", villages=["河西一村"])
    data = xlsx_upload(
        {
            "城关镇": [
                HEADER,
                ["1", "甲", "男", "", "", "城关镇", "城关一村", "13900139101", ""],
                ["2", "乙", "男", "", "", "城关镇", "城关1村", "13900139102", ""],
                ["3", "丙", "男", "", "", "城关镇", "城关新村", "13900139103", ""],
            ],
            "河西街道": [HEADER, ["1", "丁", "男", "", "", "河西", "河西一村", "13900139104", ""]],
        },
        hidden_rows=(4,),
    )
    path = tmp_path / "roster.xlsx"
    path.write_bytes(data)
    cli = runner.invoke(args=["import-cadres", str(path), "--dry-run", "--format", "json"])
    report = json.loads(cli.stdout)

    auth.login(make.user("admin"))
    preview_url = client.post(
        "/manage/training/import", data={"file": (io.BytesIO(data), "roster.xlsx")}
    ).headers["Location"]
    html = client.get(preview_url).get_data(as_text=True)
    # The same content as the JSON report.
    assert "读取工作表：城关镇、河西街道" in html
    assert f"读取数据行 {report['rows_read']} 行；可导入 {report['valid_people']} 人" in html
    for kind in ("errors", "warnings", "skipped"):
        for issue in report[kind]:
            assert _escaped(issue["message"]) in html, issue
    for village in report["new_villages"]:
        assert f"<td>{village['town']}</td>" in html
        assert village["village"] in html
    assert "第 4 行（共 1 行）在表格中是隐藏的" in html
    assert "是否为“河西街道”" in html
    assert "是否为“城关一村”" in html

    # Without confirmation no village is made and nothing is imported ...
    response = client.post(preview_url, data={"active_from": "2026-01-01"})
    assert response.status_code == 200
    assert "未导入任何数据" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Cadre.id))) == 0
    # ... with one village ticked and only the valid rows, that village and its row only.
    town_id = db.session.scalar(select(Town.id).where(Town.name == "城关镇"))
    response = client.post(
        preview_url,
        data={"active_from": "2026-01-01", "only_valid": "y", "villages": [f"{town_id}:城关新村"]},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    names = set(db.session.scalars(select(Cadre.name)))
    assert names == {"甲", "丙"}
    villages = set(db.session.scalars(select(Village.name)))
    assert "城关新村" in villages
    assert "城关1村" not in villages


def _escaped(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


def test_upload_can_leave_hidden_rows_out(client, auth, make):
    make.town(name="城关镇", code="chengguan", villages=["城关一村"])
    rows = [HEADER] + [
        [str(n), f"人{n}", "男", "", "", "城关镇", "城关一村", f"1390013920{n}", ""]
        for n in range(1, 4)
    ]
    data = xlsx_upload({"花名册": rows}, hidden_rows=(3,))
    auth.login(make.user("admin"))
    response = client.post(
        "/manage/training/import",
        data={"file": (io.BytesIO(data), "r.xlsx"), "skip_hidden": "y"},
    )
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "可导入 2 人" in html
    assert "未导入" in html


def test_blank_template_download(client, auth, make):
    north = make.town(name="城关镇", code="chengguan")
    make.town(name="河西街道", code="hexi")
    auth.login(make.user("coordinator", town=north))
    response = client.get("/manage/training/roster-template.xlsx")
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames[:2] == ["花名册", "说明"]
    sheet = book["花名册"]
    assert [c.value for c in sheet[1]] == HEADER
    assert sheet["H2"].number_format == "@"
    assert sheet["I2"].number_format == "@"
    (validation,) = sheet.data_validations.dataValidation
    assert validation.type == "list"
    assert "F2:F1001" in str(validation.sqref)
    lists = book[book.sheetnames[2]]
    assert lists.sheet_state == "hidden"
    assert [c.value for c in lists["A"]] == ["城关镇"]  # a coordinator's own town only
    # Filled in and uploaded, it imports (the 说明 sheet's example row is not a cadre).
    sheet["B2"], sheet["F2"], sheet["G2"], sheet["H2"] = "新人", "城关镇", "城关一村", "13900139301"
    out = io.BytesIO()
    book.save(out)
    parsed = parse_roster("t.xlsx", out.getvalue())
    assert [r.name for r in parsed.rows] == ["新人"]
    assert parsed.rows[0].phone == "13900139301"
    assert parsed.sheet_names == ["花名册"]


def test_admin_edits_town_aliases(client, auth, make, runner):
    north = make.town(name="城关镇", code="chengguan")
    make.town(name="河西街道", code="hexi")
    auth.login(make.user("admin"))
    # The old page's address leads to the towns, where each town keeps its aliases.
    page = client.get("/manage/training/town-aliases")
    assert page.status_code == 302
    assert page.headers["Location"].endswith("/manage/places/towns")
    response = client.post(f"/manage/places/towns/{north.id}/aliases", data={"alias": " 城 关 "})
    assert response.status_code == 302
    (alias,) = db.session.scalars(select(TownAlias))
    assert (alias.town_id, alias.alias) == (north.id, "城关")
    # Another town's name, or an alias taken, is refused beside the field.
    for taken in ("河西街道", "城关"):
        response = client.post(f"/manage/places/towns/{north.id}/aliases", data={"alias": taken})
        assert response.status_code == 200
        assert "has-error" in response.get_data(as_text=True)
    assert "城关" in client.get("/manage/places/towns").get_data(as_text=True)
    assert client.post(f"/manage/places/aliases/{alias.id}/remove").status_code == 302
    assert db.session.scalar(select(func.count(TownAlias.id))) == 0

    result = runner.invoke(args=["town", "alias", "add", "hexi", "河西"])
    assert result.exit_code == 0, result.output
    assert "河西" in runner.invoke(args=["town", "alias", "list"]).output
    assert runner.invoke(args=["town", "alias", "add", "hexi", "河西"]).exit_code != 0
    assert runner.invoke(args=["town", "alias", "remove", "河西"]).exit_code == 0
    assert db.session.scalar(select(func.count(TownAlias.id))) == 0


@pytest.mark.parametrize("role", ["organizer", "coordinator", "checker", "citizen"])
def test_only_admins_edit_town_aliases(client, auth, make, role):
    town = make.town(name="城关镇", code="chengguan")
    auth.login(make.user(role, town=town) if role == "coordinator" else make.user(role))
    assert client.get("/manage/training/town-aliases").status_code == 403
    assert client.post("/manage/places/aliases/1/remove").status_code == 403
    expected = 200 if role == "coordinator" else 403
    assert client.get("/manage/training/roster-template.xlsx").status_code == expected


def _district_row(sheet) -> dict[str, object]:
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    return {"row": dict(zip(header, next(r for r in rows if r[1] == "全区"), strict=True))} | {
        "notes": [r[1] for r in rows if r[1] not in (None, "全区") and r[0] in (None, "")]
    }


def test_admin_sets_a_district_target_beside_the_town_targets(client, auth, make, district):
    north, south, _people = district
    auth.login(make.user("admin"))
    data = {
        "rows-0-town_id": str(north.id),
        "rows-0-target_percent": "100",
        "rows-1-town_id": str(south.id),
        "rows-1-target_percent": "",
        "district_percent": "150",
    }
    response = client.post("/manage/training/targets?year=2026", data=data)
    assert response.status_code == 200
    assert "0 到 100" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(DistrictTarget.id))) == 0

    # Without a district target: 城关镇 asks for its 2 cadres, 河西街道 (no target) for none.
    data["district_percent"] = ""
    assert client.post("/manage/training/targets?year=2026", data=data).status_code == 302
    html = client.get("/manage/training/?year=2026").get_data(as_text=True)
    assert "本年未设全区目标" in html
    assert "66.7%" in html  # 2 of 3 cadres
    assert '<dd class="district-gap">1</dd>' in html  # ceil(2/3 × 3) − 1 trained
    assert '<dd class="town-gaps">1</dd>' in html
    export = load_workbook(io.BytesIO(client.get("/manage/training/coverage.xlsx?year=2026").data))
    found = _district_row(export.active)
    assert (found["row"]["目标(%)"], found["row"]["差额（人）"]) == (66.7, 1)
    assert found["notes"] == [
        "各镇街差额之和（人）",
        "注：本年未设全区目标，全区目标按各镇街目标折算。",
    ]

    data["district_percent"] = "100"
    assert client.post("/manage/training/targets?year=2026", data=data).status_code == 302
    assert "100.00" in client.get("/manage/training/targets?year=2026").get_data(as_text=True)
    html = client.get("/manage/training/?year=2026").get_data(as_text=True)
    assert "本年未设全区目标" not in html
    assert '<dd class="district-gap">2</dd>' in html  # ceil(100 % × 3) − 1
    assert '<dd class="town-gaps">1</dd>' in html
    export = load_workbook(io.BytesIO(client.get("/manage/training/coverage.xlsx?year=2026").data))
    found = _district_row(export.active)
    assert (found["row"]["目标(%)"], found["row"]["差额（人）"]) == (100.0, 2)
    assert found["notes"] == ["各镇街差额之和（人）"]
    # A coordinator may not set targets.
    auth.logout()
    auth.login(make.user("coordinator", town=north))
    assert client.post("/manage/training/targets?year=2026", data=data).status_code == 403
