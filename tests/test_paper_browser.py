"""Typing a paper 签到表 in with the keyboard, in headless Chromium under the strict policy."""

from __future__ import annotations

import os
from datetime import timedelta
from importlib.util import find_spec

import pytest
from sqlalchemy import select

from sciweek import create_app
from sciweek.extensions import db
from sciweek.models import CheckIn, utcnow

from .browser_support import CHROMIUM, CHROMIUM_ARGS, watch_policy_violations
from .checkin_support import register_person
from .conftest import DEFAULT_PASSWORD, Factory, require_or_skip
from .live_server import LiveServer


@pytest.fixture
def held_training(tmp_path, monkeypatch):
    """A training held yesterday with five registrants, behind a live server."""
    require_or_skip(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed")
    require_or_skip(find_spec("playwright") is not None, "Playwright for Python is not installed")
    url = f"sqlite:///{tmp_path / 'paper.sqlite3'}"
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "setup"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        db.create_all()
        make = Factory()
        town = make.town(villages=["东村", "西村"])
        organizer = make.user("organizer", username="paper-organizer")
        starts = utcnow() - timedelta(days=1)
        activity = make.activity(
            kind="training",
            town=town,
            departments=[organizer.department],
            sessions=[(starts, starts + timedelta(hours=2))],
        )
        for n, name in enumerate(["张三", "李四", "王五", "赵六", "钱七"]):
            register_person(activity, name, f"1380013800{n}", town.villages[n % 2])
        session_id = activity.sessions[0].id
        db.session.remove()
    with LiveServer(url, tmp_path / "server", workers=1, SCIWEEK_RATELIMIT_ENABLED="0") as srv:
        yield app, srv, session_id
    with app.app_context():
        db.engine.dispose()


def test_search_enter_ticks_and_one_save_checks_in(held_training):
    from playwright.sync_api import expect, sync_playwright

    app, server, session_id = held_training
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        violations = watch_policy_violations(context)
        page = context.new_page()
        page.goto(server.url + "/login")
        page.fill("input[name=username]", "paper-organizer")
        page.fill("input[name=password]", DEFAULT_PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{server.url}/manage/sessions/{session_id}/paper")

        search = page.locator("#paper-search")
        expect(search).to_be_visible()
        expect(search).to_be_focused()
        search.type("李四")
        expect(page.locator("tr.paper-row:visible")).to_have_count(1)
        search.press("Enter")
        expect(page.locator("#paper-count")).to_have_text("已勾选 1 人")
        # The number on the sheet: 东村 张三 (1), 王五 (2), 钱七 (3), 西村 李四 (4), 赵六 (5).
        search.type("3")  # replaces the selected text
        expect(page.locator("tr.paper-row:visible")).to_have_count(1)
        search.press("Enter")
        expect(page.locator("#paper-count")).to_have_text("已勾选 2 人")
        search.type("8003")  # the phone's last 4 digits: 赵六
        expect(page.locator("tr.paper-row:visible")).to_have_count(1)
        search.press("Enter")
        search.press("Enter")  # and again: unticked
        expect(page.locator("#paper-count")).to_have_text("已勾选 2 人")
        search.fill("")
        expect(page.locator("tr.paper-row:visible")).to_have_count(5)
        page.click("#paper-form button[type=submit]")
        expect(page.locator(".flash-success")).to_contain_text("补录签到 2 人")
        context.close()
        browser.close()
    assert violations == []

    with app.app_context():
        names = db.session.scalars(
            select(CheckIn)
            .where(CheckIn.session_id == session_id, CheckIn.undone_at.is_(None))
            .order_by(CheckIn.registration_id)
        ).all()
        assert sorted(c.registration.name for c in names) == sorted(["李四", "钱七"])
        assert {c.method for c in names} == {"paper"}
        db.session.remove()
