"""The training record (培训台账): a cadre's page, and a town's XLSX for audits."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook

from sciweek.extensions import db
from sciweek.method_labels import method_label
from sciweek.models import CheckIn
from sciweek.training.coverage import coverage_by_town
from sciweek.training.ledger import cadre_ledger, town_ledger
from sciweek.training.periods import move_cadre

from .training_helpers import attend, cadre, training


def check_in(registration, session, method):
    db.session.add(CheckIn(registration_id=registration.id, session_id=session.id, method=method))
    db.session.commit()


@pytest.fixture
def record(make):
    """A town with two cadres; 王芳 attended three sessions in 2025 (scan, roster, paper;
    one without credit hours, 2.5 h long) and one in 2024; an undone check-in and
    another cadre's session are not hers."""
    town = make.town(name="白沙镇", villages=["一村", "二村"])
    other = make.town(name="城关镇", villages=["东村"])
    wang = cadre(town, "一村", name="王芳", posts="村党组织书记")
    li = cadre(town, "二村", name="李强")
    course = training(make, town, [(2025, 3, 1), (2025, 3, 8)], hours="2")
    course.title = "蔬菜种植技术培训"
    late = training(make, other, [(2025, 6, 1)], hours=None)  # held in another town
    late.title = "电商培训"
    late.sessions[0].ends_at = late.sessions[0].starts_at + timedelta(hours=2, minutes=30)
    old = training(make, town, [(2024, 10, 1)], hours="3")
    db.session.commit()
    reg = attend(course, wang.phone, sessions=[])
    check_in(reg, course.sessions[0], "scan")
    check_in(reg, course.sessions[1], "paper")
    check_in(attend(late, wang.phone, sessions=[]), late.sessions[0], "roster")
    check_in(attend(old, wang.phone, sessions=[]), old.sessions[0], "scan")
    undone = attend(training(make, town, [(2025, 9, 9)]), wang.phone)
    undone.checkins[0].undone_at = undone.checkins[0].checked_in_at
    check_in(attend(course, li.phone, sessions=[]), course.sessions[1], "self")
    db.session.commit()
    return town, other, wang, li


def test_a_cadres_record_lists_each_session_with_hours_and_source_by_year(record):
    town, _other, wang, _li = record
    ledger = cadre_ledger(wang)
    assert [y.year for y in ledger.years] == [2025, 2024]
    this = ledger.years[0]
    assert [(e.title, str(e.hours), e.method) for e in this.entries] == [
        ("蔬菜种植技术培训", "2.0", "scan"),
        ("蔬菜种植技术培训", "2.0", "paper"),
        ("电商培训", "2.5", "roster"),  # no credit hours: its length
    ]
    assert (this.attendances, this.trainings, str(this.hours)) == (3, 2, "6.5")
    assert this.entries[2].host_town == "城关镇"
    assert (ledger.years[1].attendances, str(ledger.years[1].hours)) == (1, "3.0")
    # The same figures as coverage, for her town and year (she is its only attendee of 2025's
    # sessions but one).
    t = next(t for t in coverage_by_town(2025).towns if t.town_id == town.id)
    assert t.attendances == 4
    assert t.hours == this.hours + 2


def test_method_names_include_roster_and_over_capacity():
    assert method_label("roster") != "roster"
    assert method_label("over_capacity") != "over_capacity"
    assert method_label("something-else") == "something-else"


def test_the_page_shows_rows_sources_and_year_totals(client, auth, make, record):
    town, _other, wang, _li = record
    auth.login(make.user("coordinator", town=town))
    page = client.get(f"/manage/training/cadres/{wang.id}/ledger")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", page.get_data(as_text=True))
    assert "王芳" in text
    assert "蔬菜种植技术培训" in text
    assert "电商培训" in text
    for source in ("扫码", "纸质签到表", "花名册签到"):
        assert source in text
    assert "2025年合计：3 人次，2 期" in text
    assert "2024年合计：1 人次，1 期" in text
    assert "<td>2025年3月1日</td><td>09:00–11:00</td>" in text
    assert "<td>2025年6月1日</td><td>09:00–11:30</td>" in text  # no credit hours: 2.5 h
    assert "data-print" in text  # printable


def test_the_roster_links_to_each_cadres_record(client, auth, make, record):
    town, _other, wang, _li = record
    auth.login(make.user("admin"))
    page = client.get(f"/manage/training/roster?town_id={town.id}").get_data(as_text=True)
    assert f"/manage/training/cadres/{wang.id}/ledger" in page
    assert f"/manage/training/towns/{town.id}/ledger.xlsx" in page


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("admin", 200),
        ("coordinator-here", 200),
        ("coordinator-elsewhere", 403),
        ("organizer", 403),
        ("checker", 403),
        ("citizen", 403),
    ],
)
def test_who_sees_a_cadres_record_and_the_towns_ledger(client, auth, make, record, who, status):
    town, other, wang, _li = record
    if who == "coordinator-here":
        user = make.user("coordinator", town=town)
    elif who == "coordinator-elsewhere":
        user = make.user("coordinator", town=other)
    else:
        user = make.user(who)
    auth.login(user)
    assert client.get(f"/manage/training/cadres/{wang.id}/ledger").status_code == status
    xlsx = client.get(f"/manage/training/towns/{town.id}/ledger.xlsx?year=2025")
    assert xlsx.status_code == status


def test_a_coordinator_keeps_seeing_a_cadre_who_moved_away(client, auth, make, record):
    town, other, wang, _li = record
    move_cadre(
        wang, town_id=other.id, village_id=other.villages[0].id, posts="", on=date(2026, 1, 1)
    )
    db.session.commit()
    auth.login(make.user("coordinator", town=town))
    assert client.get(f"/manage/training/cadres/{wang.id}/ledger").status_code == 200


def test_a_missing_cadre_is_404(client, auth, make):
    auth.login(make.user("admin"))
    assert client.get("/manage/training/cadres/999999/ledger").status_code == 404


def test_the_towns_ledger_xlsx_has_one_row_per_cadre_per_session(client, auth, make, record, app):
    town, _other, wang, li = record
    app.config["SCIWEEK_DISTRICT_NAME"] = "白沙区"
    auth.login(make.user("admin"))
    response = client.get(f"/manage/training/towns/{town.id}/ledger.xlsx?year=2025")
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.data))
    sheet = book.worksheets[0]
    assert sheet["A1"].value == "白沙区白沙镇2025年度农村基层干部培训台账"
    assert sheet["A2"].value.startswith("填报单位：")
    header = [c.value for c in sheet[3]]
    assert header[:4] == ["序号", "姓名", "村/社区", "职务"]
    assert all(re.search(r"[\u4e00-\u9fff]", h) for h in header)
    rows = [[c.value for c in r] for r in sheet.iter_rows(min_row=4) if isinstance(r[0].value, int)]
    assert [(r[1], r[4], r[5], r[6], r[8], r[9]) for r in rows] == [
        ("王芳", "2025年3月1日", "09:00–11:00", "蔬菜种植技术培训", 2.0, "扫码"),
        ("王芳", "2025年3月8日", "09:00–11:00", "蔬菜种植技术培训", 2.0, "纸质签到表"),
        ("王芳", "2025年6月1日", "09:00–11:30", "电商培训", 2.5, "花名册签到"),
        ("李强", "2025年3月8日", "09:00–11:00", "蔬菜种植技术培训", 2.0, "自助签到"),
    ]
    totals = next(r for r in sheet.iter_rows(min_row=4, values_only=True) if r[0] == "合计")
    t = next(t for t in coverage_by_town(2025).towns if t.town_id == town.id)
    assert totals[8] == sum(r[8] for r in rows) == float(t.hours)
    assert len(rows) == t.attendances

    people = book.worksheets[1]
    per_cadre = {
        r[1]: r for r in people.iter_rows(min_row=4, values_only=True) if isinstance(r[0], int)
    }
    assert set(per_cadre) == {wang.name, li.name}  # every cadre of the roster
    assert per_cadre["王芳"][4:8] == (3, 2, 6.5, "是")


def test_the_towns_ledger_takes_the_cadres_of_that_year(make, record):
    town, other, wang, li = record
    move_cadre(
        wang, town_id=other.id, village_id=other.villages[0].id, posts="", on=date(2026, 1, 1)
    )
    db.session.commit()
    assert {c.name for c in town_ledger(town.id, 2025)} == {"王芳", "李强"}
    assert {c.name for c in town_ledger(town.id, 2026)} == {"李强"}
    assert {c.name for c in town_ledger(other.id, 2026)} == {"王芳"}


def test_a_name_that_looks_like_a_formula_is_text_in_the_ledger(client, auth, make):
    town = make.town(villages=["一村"])
    person = cadre(town, name="=HYPERLINK(1)")
    attend(training(make, town, [(2025, 4, 1)]), person.phone)
    auth.login(make.user("admin"))
    data = client.get(f"/manage/training/towns/{town.id}/ledger.xlsx?year=2025").data
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    names = [r[1] for r in sheet.iter_rows(min_row=4, values_only=True) if isinstance(r[0], int)]
    assert names == ["'=HYPERLINK(1)"]


@pytest.mark.parametrize("year", ["abc", "١٢٣٤", "1999", "2101"])
def test_a_bad_year_for_the_towns_ledger_is_a_clear_400(client, auth, make, year):
    town = make.town(villages=["一村"])
    auth.login(make.user("admin"))
    response = client.get(
        f"/manage/training/towns/{town.id}/ledger.xlsx", query_string={"year": year}
    )
    assert response.status_code == 400
    assert "year" in response.get_data(as_text=True)
