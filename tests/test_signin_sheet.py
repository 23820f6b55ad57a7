"""The printable 签到表: /manage/sessions/<id>/signin-sheet.pdf, read back with poppler.

The PDF is rendered by WeasyPrint, which needs Pango and a CJK font (Debian
``libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk``); ``pdftotext`` / ``pdftoppm`` /
``pdfinfo`` / ``pdffonts`` come from ``poppler-utils``. Outside CI the tests that draw a PDF
skip without them; in CI they must run (``.ci/run`` installs them).
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from sciweek import pdf
from sciweek.checkin.codes import make_sheet_code
from sciweek.checkin.services import scan
from sciweek.extensions import db
from sciweek.manage import routes as manage_routes
from sciweek.manage import signin_sheet
from sciweek.models import CheckIn, utcnow
from sciweek.registration.services import RegistrationRequest, register_for_activity

from .checkin_support import register_person as _register
from .conftest import require_or_skip
from .test_registration import zbar_available, zbar_decode_png
from .training_helpers import cadre


def _missing_pdf_parts() -> str | None:
    try:
        importlib.import_module("weasyprint")
    except (ImportError, OSError) as exc:
        return f"WeasyPrint cannot load (pip weasyprint, Debian libpango-1.0-0): {exc}"
    for tool in ("pdftotext", "pdftoppm", "pdfinfo", "pdffonts"):
        if shutil.which(tool) is None:
            return f"{tool} missing (Debian poppler-utils)"
    if not any(Path("/usr/share/fonts").rglob("NotoSansCJK*")):
        return "Noto Sans CJK missing (Debian fonts-noto-cjk)"
    return None


@pytest.fixture
def pdf_tools():
    missing = _missing_pdf_parts()
    require_or_skip(missing is None, missing or "")


def _text(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "sheet.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def _tool(tmp_path, pdf: bytes, *command: str) -> str:
    path = tmp_path / "sheet.pdf"
    path.write_bytes(pdf)
    return subprocess.run([*command, str(path)], capture_output=True, text=True, check=True).stdout


def _first_page_png(pdf: bytes, tmp_path) -> bytes:
    path = tmp_path / "sheet.pdf"
    path.write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "150", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")],
        check=True,
    )
    [png] = sorted(tmp_path.glob("page*.png"))
    return png.read_bytes()


@pytest.fixture
def training(make):
    """A two-session training in 城关镇 tomorrow and the day after, with registrants
    (one of them a roster cadre) and its organizer."""
    town = make.town(name="城关镇", villages=["东关村", "西关社区"])
    east, west = town.villages
    organizer = make.user("organizer")
    starts = utcnow() + timedelta(days=1)
    activity = make.activity(
        title="2026年农村基层干部科技培训班",
        kind="training",
        town=town,
        village=east,
        venue="镇政府三楼会议室",
        departments=[organizer.department],
        sessions=[
            (starts, starts + timedelta(hours=3)),
            (starts + timedelta(days=1), starts + timedelta(days=1, hours=3)),
        ],
    )
    roster = cadre(town, "西关社区", name="欧阳娜娜", phone="13900139001")
    people = [
        _register(activity, "张三", "13800138001", east),
        _register(activity, "李四", "13800138002", west),
        _register(activity, "欧阳娜娜", roster.phone),
    ]
    waitlisted = make.activity(capacity=0)  # not on this sheet: another activity
    _register(waitlisted, "局外人", "13800138009")
    return activity, organizer, people


def test_sheet_pdf_is_a4_with_the_registrants_in_readable_chinese(
    client, auth, training, pdf_tools, tmp_path
):
    activity, organizer, people = training
    session = activity.sessions[0]
    auth.login(organizer)
    response = client.get(f"/manage/sessions/{session.id}/signin-sheet.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    pdf = response.data
    assert pdf.startswith(b"%PDF-")

    assert re.search(
        r"Page size:\s+595\.\d+ x 841\.\d+ pts \(A4\)", _tool(tmp_path, pdf, "pdfinfo")
    )
    fonts = _tool(tmp_path, pdf, "pdffonts")
    assert "NotoSansCJK" in fonts.replace("-", "").replace(" ", "")
    cjk_lines = [line for line in fonts.splitlines() if "CJK" in line]
    assert cjk_lines
    assert all(" yes " in line for line in cjk_lines)  # embedded

    text = _text(pdf, tmp_path)
    for expected in (
        "签到表",
        "2026年农村基层干部科技培训班",
        "城关镇 · 东关村 · 镇政府三楼会议室",
        "第 1/2 场",
        "序号",
        "姓名",
        "村/社区",
        "签名",
        "张三",
        "李四",
        "欧阳娜娜",
        "138****8001",
        "西关社区",
    ):
        assert expected in text, expected
    assert "局外人" not in text
    assert "13800138001" not in text  # phones masked
    for person in people:
        assert person.short_code not in text  # the code is a self check-in proof
        assert "****" + person.short_code[-2:] in text
    # Village then name: 东关村 张三 (1), 西关社区 李四 (2), 西关社区 欧阳娜娜 (3), then blanks.
    named = re.findall(r"^ *(\d+) +(\S+)", text, flags=re.MULTILINE)
    assert named == [("1", "张三"), ("2", "李四"), ("3", "欧阳娜娜")]
    numbered = re.findall(r"^ *(\d+)(?= |$)", text, flags=re.MULTILINE)
    assert numbered == [str(n) for n in range(1, 14)]  # and 10 blank lines


def test_sheet_qr_opens_self_check_in_for_this_session(
    app, client, auth, training, pdf_tools, tmp_path
):
    require_or_skip(zbar_available(), "zbar library (Debian libzbar0) not installed")
    activity, organizer, _people = training
    session = activity.sessions[0]
    auth.login(organizer)
    pdf = client.get(f"/manage/sessions/{session.id}/signin-sheet.pdf").data
    url = zbar_decode_png(_first_page_png(pdf, tmp_path))
    code = make_sheet_code(app.config["SECRET_KEY"], session.id)
    assert url == f"https://sciweek.example.cn/checkin/self/{code}"
    auth.logout()
    page = client.get(urlsplit(url).path).get_data(as_text=True)
    # Genuine, for a session that starts tomorrow: not open yet (see the next test).
    assert "本场次" in page
    assert "开始" in page


def test_printed_code_checks_in_only_while_the_door_is_open(app, client, make):
    starts = utcnow() + timedelta(minutes=30)  # door open from an hour before the start
    activity = make.activity(sessions=[(starts, starts + timedelta(hours=2))])
    person = _register(activity, "张三", "13800138001")
    session = activity.sessions[0]
    url = f"/checkin/self/{make_sheet_code(app.config['SECRET_KEY'], session.id)}"
    response = client.post(url, data={"phone": "13800138001", "short_code": person.short_code})
    assert response.status_code == 200
    assert "签到成功" in response.get_data(as_text=True)
    assert db.session.scalar(select(CheckIn.method)) == "self"

    later = make.activity(
        sessions=[(starts + timedelta(days=1), starts + timedelta(days=1, hours=2))]
    )
    code = make_sheet_code(app.config["SECRET_KEY"], later.sessions[0].id)
    response = client.get(f"/checkin/self/{code}")
    assert response.status_code == 400
    assert "本场次" in response.get_data(as_text=True)
    assert "开始" in response.get_data(as_text=True)
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    assert "签到二维码无效" in client.get(f"/checkin/self/{forged}").get_data(as_text=True)


def test_checked_in_people_are_marked_and_blank_rows_follow_the_query(
    client, auth, training, pdf_tools, tmp_path
):
    activity, organizer, people = training
    session = activity.sessions[0]
    scan(
        organizer,
        activity.id,
        people[0].short_code,
        base_url="https://x",
        session_id=session.id,
        override_reason="提前到场",  # the session is tomorrow: outside its check-in window
    )
    db.session.commit()
    auth.login(organizer)
    text = _text(
        client.get(f"/manage/sessions/{session.id}/signin-sheet.pdf?blank=2").data, tmp_path
    )
    assert "已签到" in text
    numbered = re.findall(r"^ *(\d+)(?= |$)", text, flags=re.MULTILINE)
    assert numbered == ["1", "2", "3", "4", "5"]  # three people, two blank lines


def test_long_lists_run_over_pages_with_the_header_repeated(
    client, auth, make, pdf_tools, tmp_path
):
    organizer = make.user("organizer")
    activity = make.activity(departments=[organizer.department])
    for n in range(70):
        _register(activity, f"村民{n:02d}", f"1370000{n:04d}")
    auth.login(organizer)
    pdf = client.get(f"/manage/sessions/{activity.sessions[0].id}/signin-sheet.pdf").data
    pages = int(re.search(r"Pages:\s+(\d+)", _tool(tmp_path, pdf, "pdfinfo")).group(1))
    assert pages >= 3
    text = _text(pdf, tmp_path)
    assert text.count("签名") >= pages  # the table's header on every page
    assert "村民69" in text


@pytest.mark.parametrize("blank", ["abc", "-1", "201", "１"])
def test_bad_blank_row_counts_are_a_400(client, auth, training, blank):
    activity, organizer, _people = training
    auth.login(organizer)
    response = client.get(
        f"/manage/sessions/{activity.sessions[0].id}/signin-sheet.pdf?blank={blank}"
    )
    assert response.status_code == 400


def test_without_weasyprint_the_sheet_says_why(client, auth, training, monkeypatch):
    activity, organizer, _people = training

    def missing():
        raise signin_sheet.SheetUnavailable("cannot load library 'libpango-1.0-0'")

    monkeypatch.setattr(pdf, "weasyprint", missing)  # the shared PDF stack
    auth.login(organizer)
    response = client.get(f"/manage/sessions/{activity.sessions[0].id}/signin-sheet.pdf")
    assert response.status_code == 503
    assert "缺少生成 PDF 所需的组件" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("organizer", 200),
        ("admin", 200),
        ("coordinator-here", 200),
        ("coordinator-elsewhere", 403),
        ("other-organizer", 403),
        ("checker", 403),
        ("citizen", 403),
    ],
)
def test_who_may_print_the_sheet(client, auth, make, training, monkeypatch, who, status):
    activity, organizer, _people = training
    monkeypatch.setattr(manage_routes, "render_signin_sheet", lambda page: b"%PDF-1.7 stub")
    users = {
        "organizer": lambda: organizer,
        "admin": lambda: make.user("admin"),
        "coordinator-here": lambda: make.user("coordinator", town=activity.town),
        "coordinator-elsewhere": lambda: make.user("coordinator"),
        "other-organizer": lambda: make.user("organizer"),
        "checker": lambda: make.user("checker"),
        "citizen": lambda: make.user("citizen"),
    }
    user = users[who]()
    if who == "checker":
        user.assigned_activities.append(activity)
        db.session.commit()
    auth.login(user)
    url = f"/manage/sessions/{activity.sessions[0].id}/signin-sheet.pdf"
    assert client.get(url).status_code == status
    overview = client.get(f"/manage/activities/{activity.id}/sessions")
    assert overview.status_code == status
    if who == "coordinator-here":
        page = overview.get_data(as_text=True)
        assert "打印签到表" in page
        assert "补录纸质签到" not in page  # typing the sheet in is the organizer's


def test_coordinator_may_not_print_another_kind_of_activity(client, auth, make, monkeypatch):
    monkeypatch.setattr(manage_routes, "render_signin_sheet", lambda page: b"%PDF-1.7 stub")
    town = make.town()
    fair = make.activity(kind="outreach", town=town)
    auth.login(make.user("coordinator", town=town))
    assert client.get(f"/manage/sessions/{fair.sessions[0].id}/signin-sheet.pdf").status_code == 403


def test_unknown_session_is_404(client, auth, make):
    auth.login(make.user("admin"))
    assert client.get("/manage/sessions/424242/signin-sheet.pdf").status_code == 404


def test_a_walk_in_without_a_phone_is_printed_as_such(client, auth, make, pdf_tools, tmp_path):
    """An elderly villager admitted at a fair without a phone: the sheet says 无手机 in the
    phone column (it was an empty cell, like a line left for a walk-in)."""
    town = make.town(name="河西街道", villages=["南村"])
    organizer = make.user("organizer")
    starts = utcnow() + timedelta(days=1)
    fair = make.activity(
        title="科技下乡集市",
        kind="outreach",
        town=town,
        departments=[organizer.department],
        sessions=[(starts, starts + timedelta(hours=3))],
    )
    _register(fair, "赵大爷", "13800138005", town.villages[0])
    register_for_activity(
        fair.id,
        RegistrationRequest(
            name="王大爷", phone="", without_phone=True, village_id=town.villages[0].id
        ),
        walk_in=True,
    )
    db.session.commit()
    auth.login(organizer)
    response = client.get(f"/manage/sessions/{fair.sessions[0].id}/signin-sheet.pdf")
    assert response.status_code == 200
    lines = _text(response.data, tmp_path).splitlines()
    [walk_in] = [line for line in lines if "王大爷" in line]
    assert "无手机" in walk_in
    [with_phone] = [line for line in lines if "赵大爷" in line]
    assert "138****8005" in with_phone
    assert "无手机" not in with_phone
