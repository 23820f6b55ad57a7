"""A training's door for its roster cadres in headless Chromium at phone width, end to end.

A checker's phone searches the roster (a cadre's phone tail, an ID number's tail), checks in
cadres who never registered, one of them while the hall's network is down; a cadre checks
themself in on their own phone with the ID number's last 6, and one the roster has no ID
number for with an SMS code (through a fake SMS gateway); a ticket for the training's next
session is refused as too early (not_now, with the session's time) and the organizer checks
its holder in anyway with a reason, on the same door phone; the town's coordinator sees
them attended. A live gunicorn server runs against a temporary SQLite database.
(Walk-ins without a phone, refused at a training, and over-capacity admissions walk a fair's
door in ``test_door_browser.py``.)
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from sciweek import create_app
from sciweek.checkin.codes import make_self_code
from sciweek.extensions import db
from sciweek.i18n import to_local
from sciweek.models import ActivitySession, CheckIn, Registration, utcnow

from .browser_support import type_code, watch_policy_violations
from .checkin_support import LiveServer, issue_ticket
from .conftest import Factory
from .fake_sms import FakeGateway
from .roster_door_support import _cadre, build_door
from .test_checkin_browser import chromium_available, launch, login  # noqa: F401 - fixture
from .test_verification_browser import code_texts
from .waiting import wait_until

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def site(tmp_path, monkeypatch):
    database_url = f"sqlite:///{tmp_path / 'browser.sqlite3'}"
    secret_key = secrets.token_urlsafe(32)
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    gateway = FakeGateway().start()
    env = {
        "SCIWEEK_SECRET_KEY": secret_key,
        "SCIWEEK_SMS_BACKEND": "http",
        "SCIWEEK_SMS_HTTP_URL": gateway.url + "/send",
        "SCIWEEK_SMS_HTTP_KEY": gateway.key,
    }
    server = LiveServer(database_url, tmp_path / "server", workers=2, env=env)
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True})
    with app.app_context():
        db.create_all()
        door = build_door(Factory())
        # The training's next session, tomorrow: its door is not open yet.
        tomorrow = utcnow().replace(microsecond=0) + timedelta(days=1)
        next_session = ActivitySession(starts_at=tomorrow, ends_at=tomorrow + timedelta(hours=2))
        door.training.sessions.append(next_session)
        early = issue_ticket(door.training, name="刘明", phone="13600002468")
        # A 东山 cadre the roster has no ID number for.
        zhou = _cadre(door.dongshan, "东山村", "周红梅", "13752913579")
        db.session.commit()
        facts = {
            "organizer": door.organizer.username,
            "next_session": (next_session.id, to_local(tomorrow)),
            "early_code": early.registration.short_code,
            "activity_id": door.training.id,
            "session_id": door.training.sessions[0].id,
            "checker": door.checker.username,
            "coordinator": door.coordinator.username,
            "zhang": door.zhang.id,
            "wang": door.wang.id,
            "zhao": (door.zhao.id, door.zhao.phone, door.zhao.id_number),
            "zhou": (zhou.id, zhou.phone),
        }
        db.session.remove()
    server.start()
    yield app, server, secret_key, facts, gateway
    server.stop()
    gateway.stop()
    with app.app_context():
        db.engine.dispose()


def _registrations_of(app, cadre_id) -> list[tuple[int, int]]:
    """(registration id, live check-ins) of the cadre's registrations."""
    with app.app_context():
        rows = db.session.execute(
            select(Registration.id, func.count(CheckIn.id))
            .outerjoin(CheckIn, (CheckIn.registration_id == Registration.id))
            .where(Registration.cadre_id == cadre_id)
            .group_by(Registration.id)
        ).all()
        db.session.remove()
        return [tuple(row) for row in rows]


def test_training_door_with_roster_cadres_at_phone_width(chromium_available, site):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    app, server, secret_key, facts, gateway = site
    activity_id, session_id = facts["activity_id"], facts["session_id"]
    with sync_playwright() as p:
        browser = launch(p)
        door_phone = browser.new_context(viewport=PHONE)
        violations = watch_policy_violations(door_phone)
        page = door_phone.new_page()
        login(page, server.url, facts["checker"])
        page.goto(f"{server.url}/manage/activities/{activity_id}/scan?session={session_id}")
        page.wait_for_function(
            "() => document.getElementById('roster-status').textContent.length > 0"
        )

        def search(text):
            page.fill("#search-input", text)
            return page.locator("#search-results li")

        def answer():
            page.wait_for_selector("#result[data-result]", state="attached")
            return page.get_attribute("#result", "data-result")

        # A cadre who never registered, found by their phone's last four.
        rows = search("1234")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("张建国")
        expect(rows.first).to_contain_text("花名册")
        expect(rows.first).to_contain_text("138****1234")
        page.eval_on_selector("#result", "box => box.removeAttribute('data-result')")
        rows.first.locator("button").click()
        assert answer() == "ok"
        expect(page.locator("#result-title")).to_have_text("签到成功")
        assert [n for _id, n in _registrations_of(app, facts["zhang"])] == [1]
        expect(search("1234").first).to_contain_text("已于")  # no second button

        # One without a phone, by the last four of the ID number.
        rows = search("0014")
        expect(rows.first).to_contain_text("王老汉")
        expect(rows.first).to_contain_text("无手机")
        page.eval_on_selector("#result", "box => box.removeAttribute('data-result')")
        rows.first.locator("button").click()
        assert answer() == "ok"

        # The hall's network fails: the cadre is let in from the downloaded roster ...
        door_phone.set_offline(True)
        rows = search("赵东山")
        page.eval_on_selector("#result", "box => box.removeAttribute('data-result')")
        rows.first.locator("button").click()
        assert answer() == "ok"
        expect(page.locator("#result-detail")).to_contain_text("离线判断")
        assert _registrations_of(app, facts["zhao"][0]) == []
        # ... and registered and checked in on the server when it is back.
        door_phone.set_offline(False)
        page.evaluate("window.sciweekScanner.sync()")
        page.wait_for_function(
            "() => document.getElementById('net-status').textContent === '在线'", timeout=20000
        )
        assert [n for _id, n in _registrations_of(app, facts["zhao"][0])] == [1]

        # 赵东山 then checks himself in on his own phone: one check-in still.
        code = make_self_code(secret_key, session_id, utcnow().timestamp())
        own_phone = browser.new_context(viewport=PHONE)
        violations += watch_policy_violations(own_phone)
        mine = own_phone.new_page()
        mine.goto(f"{server.url}/checkin/self/{code}")
        _cadre_id, phone, id_no = facts["zhao"]
        mine.fill("#cadre-self-form input[type=tel]", phone)
        mine.fill("#cadre-self-form input[name=cadre-id_tail]", "000000")
        with mine.expect_navigation():
            mine.click("#cadre-self-form button[type=submit]")
        assert "不符" in mine.inner_text("#cadre-self-form")
        mine.fill("#cadre-self-form input[name=cadre-id_tail]", id_no[-6:].lower())
        mine.click("#cadre-self-form button[type=submit]")
        mine.wait_for_selector("#self-result")
        result = mine.inner_text("#self-result")
        assert "已签到" in result
        assert "赵**" in result
        assert "赵东山" not in result
        assert [n for _id, n in _registrations_of(app, facts["zhao"][0])] == [1]

        # 周红梅, without an ID number on the roster, asks for an SMS code and types it.
        zhou_id, zhou_phone = facts["zhou"]
        hers = own_phone.new_page()
        code = make_self_code(secret_key, session_id, utcnow().timestamp())
        hers.goto(f"{server.url}/checkin/self/{code}")
        hers.click("details.cadre-sms summary")
        hers.fill("#cadre-sms-form input[type=tel]", zhou_phone)
        with hers.expect_navigation():
            hers.click("#sms-send")
        expect(hers.locator("#sms-sent")).to_be_visible()
        wait_until(lambda: code_texts(gateway), timeout=15, what="the code's SMS at the gateway")
        [text] = code_texts(gateway)
        hers.fill("#cadre-sms-form input[name=sms-code]", re.search(r"验证码([0-9]{6})，", text)[1])
        hers.click("#cadre-sms-form button.primary")
        hers.wait_for_selector("#self-result")
        assert "签到成功" in hers.inner_text("#self-result")
        assert "周**" in hers.inner_text("#self-result")
        assert [n for _id, n in _registrations_of(app, zhou_id)] == [1]

        # A ticket for tomorrow's session: too early. The organizer, on the same door phone,
        # checks its holder in anyway and says why; a checker could not (403, API tests).
        page.click("form[action='/logout'] button")
        login(page, server.url, facts["organizer"])
        next_id, starts = facts["next_session"]
        page.goto(f"{server.url}/manage/activities/{activity_id}/scan?session={next_id}")
        page.wait_for_function(
            "() => document.getElementById('roster-status').textContent.length > 0"
        )
        assert type_code(page, facts["early_code"]) == "not_now"
        expect(page.locator("#result-title")).to_have_text(
            f"本场次 {starts.month}月{starts.day}日 {starts:%H:%M} 开始"
        )
        page.fill("#override-reason", "明天要下乡，今天先来听课")
        page.click("#override-button")
        page.wait_for_selector("#result[data-result=ok]")
        assert "刘明" in page.inner_text("#result")
        with app.app_context():
            reasons = db.session.scalars(
                select(CheckIn.window_override_reason).where(CheckIn.session_id == next_id)
            ).all()
            db.session.remove()
        assert reasons == ["明天要下乡，今天先来听课"]

        # The town's coordinator sees who came, their own town's cadres only.
        office = browser.new_context()
        violations += watch_policy_violations(office)
        desk = office.new_page()
        login(desk, server.url, facts["coordinator"])
        desk.goto(f"{server.url}/manage/activities/{activity_id}/cadres")
        table = desk.inner_text("table.cadre-list")
        assert "张建国" in table
        assert "王老汉" in table
        assert "李秀英" in table
        assert "赵东山" not in table
        zhang_row = desk.locator("tr", has_text="张建国")
        expect(zhang_row).to_contain_text("已签到")
        li_row = desk.locator("tr", has_text="李秀英")
        li_row.locator("button").click()
        desk.wait_for_load_state()
        expect(desk.locator(".flash-success")).to_contain_text("李秀英：签到成功")
        browser.close()
    assert violations == []
