"""One journey in Chromium at phone width, the SMS travelling through the fake HTTP gateway:
register → confirmation SMS → the organizer moves the session → change SMS → the organizer
cancels the activity with a reason → cancellation SMS with the reason.

The live server has no broker: each transaction's messages are delivered right after its
commit on a background thread of the gunicorn worker (``jobs._InProcess``), through the
``http`` backend to ``tests/fake_sms.py``.
"""

from __future__ import annotations

import os
from importlib.util import find_spec

import pytest

from sciweek import create_app
from sciweek.extensions import db

from .browser_support import CHROMIUM, CHROMIUM_ARGS, watch_policy_violations
from .conftest import TEST_PASSWORD_HASH_METHOD, Factory, local, require_or_skip
from .fake_sms import FakeGateway
from .live_server import LiveServer
from .waiting import wait_until

PHONE = "13912345678"
PASSWORD = "correct-horse-9"


@pytest.fixture
def site(empty_database_url, tmp_path, monkeypatch):
    """An activity and its organizer behind a live server whose SMS go to a fake gateway
    (SQLite, then PostgreSQL)."""
    require_or_skip(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed")
    require_or_skip(find_spec("playwright") is not None, "Playwright for Python is not installed")
    url = empty_database_url
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "setup"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        db.create_all()
        make = Factory()
        department = make.department(name="区科协")
        activity = make.activity(
            title="果树修剪",
            departments=[department],
            capacity=10,
            sessions=[(local(2027, 3, 10, 9), local(2027, 3, 10, 11))],
        )
        organizer = make.user("organizer", username="organizer", department=department)
        organizer.set_password(PASSWORD, method=TEST_PASSWORD_HASH_METHOD)
        db.session.commit()
        activity_id = activity.id
        db.session.remove()
        db.engine.dispose()
    gateway = FakeGateway().start()
    server = LiveServer(
        url,
        tmp_path / "server",
        workers=1,
        SCIWEEK_SMS_BACKEND="http",
        SCIWEEK_SMS_HTTP_URL=gateway.url + "/send",
        SCIWEEK_SMS_HTTP_KEY=gateway.key,
        SCIWEEK_SMS_QUIET_HOURS="off",
        SCIWEEK_SMS_DAILY_CAP="0",
    )
    with server:
        yield server, gateway, activity_id
    gateway.stop()


def texts_to(gateway: FakeGateway, phone: str) -> list[str]:
    with gateway.lock:
        return [m["text"] for m in gateway.delivered.values() if m["phone"] == phone]


def wait_for_text(gateway: FakeGateway, phone: str, start: str) -> str:
    def found():
        return next((t for t in texts_to(gateway, phone) if t.startswith(start)), None)

    return wait_until(found, timeout=15, what=f"an SMS starting {start}")


def test_registrant_hears_of_the_confirmation_the_move_and_the_cancellation(site):
    from playwright.sync_api import sync_playwright

    server, gateway, activity_id = site
    base = server.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        violations = watch_policy_violations(context)
        page = context.new_page()

        # A citizen registers on the activity's page.
        page.goto(f"{base}/activities/{activity_id}")
        page.fill("input[name=name]", "王小明")
        page.fill("input[name=phone]", PHONE)
        page.click("button:has-text('提交报名')")
        page.wait_for_url(f"{base}/t/*")
        ticket_url = page.url
        confirmation = wait_for_text(gateway, PHONE, "【科普报名】报名成功：“果树修剪”")
        assert "3月10日09:00" in confirmation
        assert confirmation.endswith(ticket_url)  # the ticket link, from the sealed outbox

        # The organizer moves the session to the next day, afternoon.
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "organizer")
        page.fill("input[name=password]", PASSWORD)
        page.click("form button[type=submit]")
        page.goto(f"{base}/manage/activities/{activity_id}/edit")
        page.fill("input[name='sessions-0-starts_at']", "2027-03-11T14:00")
        page.fill("input[name='sessions-0-ends_at']", "2027-03-11T16:00")
        page.click("button:has-text('保存')")
        page.wait_for_load_state()
        change = wait_for_text(gateway, PHONE, "【科普报名】活动变更：“果树修剪”改为3月11日14:00")
        assert "文化礼堂" in change

        # And then cancels the activity with a reason.
        page.goto(f"{base}/manage/activities/{activity_id}/cancel")
        page.fill("textarea[name=reason]", "暴雨红色预警")
        page.click("button:has-text('确认取消')")
        page.wait_for_load_state()
        cancellation = wait_for_text(gateway, PHONE, "【科普报名】活动取消：“果树修剪”")
        assert "原因：暴雨红色预警" in cancellation
        assert "3月11日14:00" in cancellation

        # The organizer's page counts the one person told, three times.
        page.goto(f"{base}/manage/activities/{activity_id}/notifications")
        assert page.inner_text("#notified") == "已通知 1 人"
        assert page.inner_text("td[data-status=sent]") == "3"
        assert len(texts_to(gateway, PHONE)) == 3
        context.close()
        browser.close()
    assert violations == []
