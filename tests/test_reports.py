"""The annual assessment (年度目标考核): figures, page, XLSX, PDF and the command line."""

from __future__ import annotations

import io
import json
import re
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from sciweek.extensions import db
from sciweek.i18n import format_date, local_today
from sciweek.models import ActivitySummary, CheckIn, utcnow
from sciweek.models import types as model_types
from sciweek.reports.services import annual_assessment
from sciweek.training.services import set_target

from .conftest import Auth
from .test_signin_sheet import _text as pdf_text
from .test_signin_sheet import pdf_tools  # noqa: F401 - a fixture
from .training_helpers import attend, cadre, training

TITLE = "白沙区2025年度农村基层干部科技培训情况统计表"
CJK = re.compile(r"[\u4e00-\u9fff]")


def check_in(registration, session, method):
    db.session.add(CheckIn(registration_id=registration.id, session_id=session.id, method=method))
    db.session.commit()


def summary(activity, people, materials=0, consultations=0):
    db.session.add(
        ActivitySummary(
            activity_id=activity.id,
            people_reached=people,
            materials_distributed=materials,
            consultations=consultations,
        )
    )
    db.session.commit()


@pytest.fixture
def scenario(app, make):
    """2025 in a district of two towns, two departments and two campaigns:

    - T1, a training of 科技局 in 白沙镇 (2 sessions of 2 h): 白沙 cadre b1 at both (scan),
      b2 at the first (roster), 城关 cadre c1 at the second (paper), a walk-in (not a cadre);
    - T2, a district-wide training of 科协 (no town; 2.5 h, no credit hours): b1;
    - O1, an outreach fair of both departments in 城关镇 during S&T week: summary 300 people;
    - S1, a Science Day activity of 科协: 3 places, 1 waitlisted, 2 checked in; summary 120;
    - not counted: a draft, a training cancelled before it began, a 2024 activity.
    """
    app.config["SCIWEEK_DISTRICT_NAME"] = "白沙区"
    app.config["SCIWEEK_REPORT_UNIT"] = "白沙区科学技术局"
    baisha = make.town(name="白沙镇", code="baisha", villages=["一村", "二村"])
    chengguan = make.town(name="城关镇", code="chengguan", villages=["东村"])
    kjj = make.department(name="区科技局", code="kjj")
    kx = make.department(name="区科协", code="kx")
    week = make.campaign(
        name="2025年科技活动周",
        kind="st_week",
        starts_on=date(2025, 5, 17),
        ends_on=date(2025, 5, 24),
    )
    day = make.campaign(
        name="2025年全国科普日",
        kind="science_day",
        starts_on=date(2025, 9, 15),
        ends_on=date(2025, 9, 21),
    )
    b1, b2 = cadre(baisha, "一村"), cadre(baisha, "二村")
    cadre(baisha, "二村")
    c1 = cadre(chengguan)
    cadre(chengguan)
    set_target(baisha.id, 2025, Decimal("80"), None)
    set_target(chengguan.id, 2025, Decimal("50"), None)

    t1 = training(make, baisha, [(2025, 3, 1), (2025, 3, 8)])
    t1.departments = [kjj]
    t2 = training(make, None, [(2025, 6, 1)], hours=None)
    t2.town = None
    t2.departments = [kx]
    t2.sessions[0].ends_at = t2.sessions[0].starts_at + timedelta(hours=2, minutes=30)
    db.session.commit()
    reg = attend(t1, b1.phone, sessions=[])
    check_in(reg, t1.sessions[0], "scan")
    check_in(reg, t1.sessions[1], "scan")
    check_in(attend(t1, b2.phone, sessions=[]), t1.sessions[0], "roster")
    check_in(attend(t1, c1.phone, sessions=[]), t1.sessions[1], "paper")
    attend(t1, "13700000001", sessions=t1.sessions[:1], walk_in=True)
    attend(t2, b1.phone)

    o1 = make.activity(
        title="科技下乡集市",
        kind="outreach",
        town=chengguan,
        departments=[kjj, kx],
        campaign_id=week.id,
        sessions=[(_local(2025, 5, 18), _local(2025, 5, 18, 12))],
    )
    summary(o1, 300, materials=500, consultations=40)
    s1 = make.activity(
        title="科普日开放日",
        kind="science_day",
        departments=[kx],
        campaign_id=day.id,
        sessions=[(_local(2025, 9, 16), _local(2025, 9, 16, 11))],
    )
    attend(s1, "13700000011")
    attend(s1, "13700000012")
    attend(s1, "13700000013", sessions=[])
    waiting = attend(s1, "13700000014", sessions=[])
    waiting.status = "waitlisted"
    db.session.commit()
    summary(s1, 120)

    make.activity(
        status="draft", departments=[kjj], sessions=[(_local(2025, 4, 1), _local(2025, 4, 1, 11))]
    )
    called_off = training(make, baisha, [(2025, 7, 1)])
    called_off.departments = [kjj]
    called_off.status = "cancelled"
    called_off.cancel_reason = "天气"
    called_off.sessions[0].cancelled_at = utcnow()
    db.session.commit()
    make.activity(departments=[kjj], sessions=[(_local(2024, 5, 1), _local(2024, 5, 1, 11))])
    return {"baisha": baisha, "chengguan": chengguan, "kjj": kjj, "kx": kx, "o1": o1}


def _local(year, month, day, hour=9):
    from .conftest import local

    return local(year, month, day, hour)


def coverage_json(runner) -> dict:
    result = runner.invoke(args=["coverage", "--year", "2025", "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


# --- the figures -----------------------------------------------------------------------


def test_town_figures_are_the_coverage_report(app, scenario, runner):
    report = annual_assessment(2025)
    towns = {t.name: t for t in report.towns.towns}
    baisha, chengguan = towns["白沙镇"], towns["城关镇"]
    assert (baisha.cadres, baisha.trained, baisha.gap, baisha.trainings) == (3, 2, 1, 1)
    assert (baisha.attendances, baisha.hours) == (3 + 1, Decimal("8.5"))  # 2+2+2.5+2
    assert (chengguan.cadres, chengguan.trained, chengguan.gap, chengguan.trainings) == (2, 1, 0, 0)
    assert report.towns.trainings == 2  # T2 has no town: in the district's 期数 only
    assert report.towns.as_json() == coverage_json(runner)


def test_department_and_campaign_figures(app, scenario):
    report = annual_assessment(2025)
    rows = {d.name: d.figures for d in report.departments}
    kjj, kx = rows["区科技局"], rows["区科协"]
    assert kjj.kind_counts() == [1, 0, 0, 1]  # 科技下乡, 科普日, 科技活动周, 培训
    assert (kjj.sessions, kjj.registered, kjj.checked_in, kjj.people_reached) == (3, 4, 5, 300)
    assert kx.kind_counts() == [1, 1, 0, 1]
    assert (kx.sessions, kx.registered, kx.checked_in, kx.people_reached) == (3, 4, 3, 420)
    assert kx.trainings == 1

    total = report.activities  # each activity once: the joint fair is in both rows
    assert total.kind_counts() == [1, 1, 0, 2]
    assert (total.activities, total.sessions, total.registered, total.checked_in) == (4, 5, 8, 8)
    assert total.people_reached == 420 == 300 + 120  # the summaries
    assert (total.materials, total.consultations) == (500, 40)
    assert kjj.activities + kx.activities - 1 == total.activities

    campaigns = {c.name: c.figures for c in report.campaigns}
    assert campaigns["2025年科技活动周"].kind_counts() == [1, 0, 0, 0]
    assert campaigns["2025年科技活动周"].people_reached == 300
    science_day = campaigns["2025年全国科普日"]
    assert (science_day.activities, science_day.registered, science_day.checked_in) == (1, 3, 2)
    assert report.campaign_totals.people_reached == 420
    assert report.months == [0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 0, 0]


def test_an_empty_year_is_a_report_of_zeros(app, scenario):
    report = annual_assessment(2030)
    assert report.activities.activities == 0
    assert report.months == [0] * 12
    assert all(d.figures.activities == 0 for d in report.departments)
    assert report.towns.trained == 0


def test_a_session_beginning_while_the_report_is_made_is_counted_once_or_not_at_all(
    app, make, monkeypatch
):
    """The assessment reads the clock once: a session that begins between two of its
    queries neither breaks the report nor shows in one table and not in the other."""
    town = make.town(name="白沙镇", code="baisha", villages=["一村"])
    kjj = make.department(name="区科技局", code="kjj")
    earlier = training(make, town, [(2025, 3, 1)])
    beginning = training(make, town, [(2025, 6, 1)])  # 09:00 local
    earlier.departments = [kjj]
    beginning.departments = [kjj]
    db.session.commit()
    attend(earlier, "13700000021")
    attend(beginning, "13700000022", sessions=[])

    # The clock reads 08:59 the first time it is read and 09:01 from then on.
    readings = [_local(2025, 6, 1, 8).replace(minute=59), _local(2025, 6, 1).replace(minute=1)]

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            reading = readings.pop(0) if len(readings) > 1 else readings[0]
            return reading.astimezone(tz)

    monkeypatch.setattr(model_types, "datetime", Clock)
    report = annual_assessment(2025)
    monkeypatch.undo()

    department = next(d.figures for d in report.departments if d.name == "区科技局")
    total = report.activities
    assert (department.activities, department.registered, department.checked_in) == (
        total.activities,
        total.registered,
        total.checked_in,
    )
    assert total.registered == total.activities  # one registration each
    assert report.towns.trainings == total.trainings == sum(report.months)


# --- the XLSX --------------------------------------------------------------------------


def _xlsx(client, auth, make, year="2025"):
    auth.login(make.user("admin"))
    response = client.get(f"/manage/reports/annual.xlsx?year={year}")
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    return load_workbook(io.BytesIO(response.data))


def _body(sheet):
    """The data rows (numbered), and the totals row."""
    rows = [r for r in sheet.iter_rows(min_row=4, values_only=True) if isinstance(r[0], int)]
    totals = next(r for r in sheet.iter_rows(min_row=4, values_only=True) if r[0] == "合计")
    return rows, totals


def test_xlsx_is_in_the_office_form(client, auth, make, scenario):
    book = _xlsx(client, auth, make)
    assert book.sheetnames == ["镇街培训", "部门活动", "专题活动"]
    for sheet in book.worksheets:
        assert sheet["A2"].value == "填报单位：白沙区科学技术局"
        dates = [
            c.value
            for c in sheet[2]
            if isinstance(c.value, str) and c.value.startswith("填报日期：")
        ]
        assert dates == [
            "填报日期：" + f"{local_today().year}年{local_today().month}月{local_today().day}日"
        ]
        header = [c.value for c in sheet[3]]
        assert all(isinstance(h, str) and CJK.search(h) for h in header), header
        assert not any(re.search(r"[A-Za-z]", h) for h in header), header
        texts = [v for row in sheet.iter_rows(values_only=True) for v in row if isinstance(v, str)]
        assert any(t.startswith("单位负责人：") and "填报人：" in t for t in texts)
        # No internal codes anywhere.
        assert not any(code in t for t in texts for code in ("baisha", "chengguan", "kjj", "kx"))
    towns = book["镇街培训"]
    assert towns["A1"].value == TITLE
    assert book["部门活动"]["A1"].value == "白沙区2025年度各部门科技活动情况统计表"
    assert book["专题活动"]["A1"].value == "白沙区2025年度科技活动周、科普日活动情况统计表"


def test_xlsx_town_totals_are_the_sum_of_rows_and_the_coverage_json(
    client, auth, make, scenario, runner
):
    book = _xlsx(client, auth, make)
    rows, totals = _body(book["镇街培训"])
    assert [r[1] for r in rows] == ["白沙镇", "城关镇"]
    for row in rows:  # numbers are numbers
        assert all(isinstance(v, int | float) for v in row[2:]), row
    coverage = coverage_json(runner)
    district = coverage["district"]
    # cadres, trained, 人次, hours: the sum of the rows and the coverage JSON.
    for column, key in ((2, "cadres"), (3, "trained")):
        assert totals[column] == sum(r[column] for r in rows) == district[key]
    assert totals[8] == sum(r[8] for r in rows) == sum(t["attendances"] for t in coverage["towns"])
    assert totals[9] == sum(r[9] for r in rows) == sum(t["hours"] for t in coverage["towns"])
    assert totals[4] == pytest.approx(district["coverage"])
    assert totals[6] == district["gap"]
    assert totals[7] == 2  # 期数 of the district (T2 has no town) ...
    notes = [
        v for row in book["镇街培训"].iter_rows(values_only=True) for v in row if isinstance(v, str)
    ]
    assert any("未指定镇街的全区性培训 1 期" in n for n in notes)  # ... and said so
    by_name = {t["name"]: t for t in coverage["towns"]}
    for row in rows:
        town = by_name[row[1]]
        assert (row[2], row[3], row[6], row[7], row[8], row[9]) == (
            town["cadres"],
            town["trained"],
            town["gap"],
            town["trainings"],
            town["attendances"],
            town["hours"],
        )
        assert row[4] == pytest.approx(town["coverage"])
        assert row[5] == pytest.approx(town["target"])
    assert book["镇街培训"].cell(row=4, column=5).number_format == "0.0%"


def test_xlsx_activity_totals_are_the_summaries(client, auth, make, scenario):
    book = _xlsx(client, auth, make)
    header = [c.value for c in book["部门活动"][3]]
    reached = header.index("受益群众人次")
    rows, totals = _body(book["部门活动"])
    assert [r[1] for r in rows][:2] == ["区科技局", "区科协"]
    assert all(r[reached] == 0 for r in rows[2:])  # the factory's other departments
    people = sum(s.people_reached for s in db.session.scalars(db.select(ActivitySummary)))
    assert totals[reached] == people == 420
    # The joint fair counts in both departments' rows, once in the total.
    assert sum(r[reached] for r in rows) == totals[reached] + 300
    assert totals[header.index("活动合计（项）")] == 4
    rows, totals = _body(book["专题活动"])
    assert [r[1] for r in rows] == ["2025年科技活动周", "2025年全国科普日"]
    assert (
        totals[header.index("受益群众人次") + 2]
        == sum(r[header.index("受益群众人次") + 2] for r in rows)
        == 420
    )


def test_xlsx_neutralises_formulas_in_names(client, auth, make, scenario):
    make.town(name='=HYPERLINK("x")', villages=["一村"])
    make.department(name="+区农业局")
    book = _xlsx(client, auth, make)
    towns = [r[1] for r in _body(book["镇街培训"])[0]]
    departments = [r[1] for r in _body(book["部门活动"])[0]]
    assert '\'=HYPERLINK("x")' in towns
    assert "'+区农业局" in departments
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)


def test_an_empty_year_has_the_title_and_zeros(client, auth, make, scenario):
    book = _xlsx(client, auth, make, year="2099")
    sheet = book["镇街培训"]
    assert sheet["A1"].value == "白沙区2099年度农村基层干部科技培训情况统计表"
    rows, totals = _body(sheet)
    assert totals[2:4] == (5, 0)  # the roster is there; nobody trained that year
    _rows, totals = _body(book["部门活动"])
    assert all(v == 0 for v in totals[2:])


# --- the page --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "organizer"])
def test_page_shows_tables_charts_and_definitions(client, auth, make, scenario, role):
    auth.login(make.user(role))
    response = client.get("/manage/reports/annual?year=2025")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert TITLE in html
    assert html.count("<svg") == 2  # coverage against targets, activities per month
    assert "66.7% / 目标 80.0%" in html  # the value beside 白沙镇's bar
    assert "420" in html
    assert "区科协" in html
    assert "2025年全国科普日" in html
    assert "人次" in html  # the definitions
    assert "按时长" in html
    assert "/manage/reports/annual.xlsx?year=2025" in html
    assert "/manage/reports/annual.pdf?year=2025" in html


def test_page_without_a_year_is_this_year(client, auth, make, scenario):
    auth.login(make.user("admin"))
    html = client.get("/manage/reports/annual").get_data(as_text=True)
    assert f"白沙区{local_today().year}年度农村基层干部科技培训情况统计表" in html


@pytest.mark.parametrize("year", ["abc", "١٢٣٤", "２０２５", "1999", "2101", "2025.0", "-2025"])
@pytest.mark.parametrize("suffix", ["", ".xlsx", ".pdf"])
def test_a_bad_year_gets_a_clear_message(client, auth, make, year, suffix):
    auth.login(make.user("admin"))
    response = client.get(f"/manage/reports/annual{suffix}", query_string={"year": year})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "年份应为 2000 到 2100 之间的四位数字。" in html
    assert 'id="year-error"' in html


@pytest.mark.parametrize("role", ["coordinator", "checker", "citizen"])
def test_others_are_refused(client, auth, make, role):
    auth.login(make.user(role))
    for suffix in ("", ".xlsx", ".pdf"):
        assert client.get(f"/manage/reports/annual{suffix}").status_code == 403


def test_english_page(app, make, runner):
    client = app.test_client()
    client.get("/?lang=en")  # before anything reads the locale of the test's app context
    Auth(client).login(make.user("admin"))
    html = client.get("/manage/reports/annual?year=2025").get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Annual assessment" in html
    assert "S&amp;T training of rural grassroots cadres" in html
    assert "Check-ins" in html
    assert "People reached" in html


# --- the PDF and the command line ------------------------------------------------------


def test_pdf_has_the_town_names_and_figures(client, auth, make, scenario, tmp_path, pdf_tools):  # noqa: F811
    auth.login(make.user("organizer"))
    response = client.get("/manage/reports/annual.pdf?year=2025")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    text = re.sub(r"[ \t]+", " ", pdf_text(response.data, tmp_path))
    assert TITLE in text
    assert "填报单位：白沙区科学技术局" in text
    assert "白沙镇 3 2 66.7% 80.0% 1 1 4 8.5" in text
    assert "城关镇 2 1 50.0% 50.0% 0 0 1 2" in text
    assert "合计 5 3 60.0%" in text
    assert "区科协" in text
    assert "420" in text
    assert "2025年全国科普日" in text
    assert "单位负责人" in text


def test_cli_writes_the_xlsx_and_the_pdf(app, scenario, runner, tmp_path, pdf_tools):  # noqa: F811
    xlsx = tmp_path / "考核.xlsx"
    result = runner.invoke(args=["report", "annual", "--year", "2025", "--output", str(xlsx)])
    assert result.exit_code == 0, result.output
    book = load_workbook(xlsx)
    assert book["镇街培训"]["A1"].value == TITLE
    rows, totals = _body(book["镇街培训"])
    assert totals[2] == coverage_json(runner)["district"]["cadres"] == 5

    pdf = tmp_path / "考核.pdf"
    result = runner.invoke(args=["report", "annual", "--year", "2025", "--output", str(pdf)])
    assert result.exit_code == 0, result.output
    assert "白沙镇" in pdf_text(pdf.read_bytes(), tmp_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--year", "١٢٣٤", "--output", "x.xlsx"], "年份应为"),
        (["--year", "3000", "--output", "x.xlsx"], "年份应为"),
        (["--year", "2025", "--output", "x.csv"], ".xlsx or .pdf"),
    ],
)
def test_cli_refuses_bad_input(app, runner, tmp_path, args, message):
    out = tmp_path / "out"
    out.mkdir()
    args = [str(out / a) if a in ("x.xlsx", "x.csv") else a for a in args]
    result = runner.invoke(args=["report", "annual", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not list(out.iterdir())


def test_date_in_heading_is_local(app):
    with app.test_request_context():
        from sciweek.spreadsheets import office_heading

        assert office_heading(date(2026, 5, 17)).filled_on == format_date(date(2026, 5, 17))
