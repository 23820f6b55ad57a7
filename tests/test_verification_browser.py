"""找回我的票 on a phone-sized screen in headless Chromium: the ticket link is lost, the
person types the phone, reads the code from the SMS and gets the ticket back.

The SMS travels the real path: the outbox, delivered by the gunicorn process right after
commit (no broker, as ``make run``), through the HTTP JSON backend to the fake gateway on
127.0.0.1, where the test reads it as the phone would.
"""

from __future__ import annotations

import os
import re
from importlib.util import find_spec

import pytest

from sciweek import create_app
from sciweek.extensions import db
from sciweek.registration.services import RegistrationRequest, register_for_activity

from .browser_support import CHROMIUM, CHROMIUM_ARGS, watch_policy_violations
from .conftest import Factory, local, require_or_skip
from .fake_sms import FakeGateway
from .live_server import LiveServer
from .waiting import wait_until

PHONE = "13800138000"


@pytest.fixture
def browser():
    require_or_skip(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed")
    require_or_skip(find_spec("playwright") is not None, "Playwright for Python is not installed")
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A live server with one registration of PHONE (its first ticket link lost), whose
    SMS go to a fake gateway."""
    url = f"sqlite:///{tmp_path / 'browser.sqlite3'}"
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "setup"))
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "TESTING": True,
            "NOTIFICATIONS_DELIVER_AFTER_COMMIT": False,
        }
    )
    with app.app_context():
        db.create_all()
        activity = Factory().activity(
            title="果树修剪现场课", sessions=[(local(2099, 6, 1, 9), local(2099, 6, 1, 11))]
        )
        lost = register_for_activity(activity.id, RegistrationRequest(name="张三", phone=PHONE))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    gateway = FakeGateway().start()
    env = {
        "SCIWEEK_SMS_BACKEND": "http",
        "SCIWEEK_SMS_HTTP_URL": gateway.url + "/send",
        "SCIWEEK_SMS_HTTP_KEY": gateway.key,
        "SCIWEEK_SMS_QUIET_HOURS": "off",  # (codes ignore them anyway; the confirmation not)
    }
    try:
        with LiveServer(url, tmp_path / "server", workers=1, env=env) as server:
            yield server, gateway, lost.secret
    finally:
        gateway.stop()


def code_texts(gateway) -> list[str]:
    return [t for t in gateway.sent_texts() if "验证码" in t]


def test_a_lost_ticket_is_recovered_with_the_sms_code(browser, site):
    server, gateway, lost_secret = site
    context = browser.new_context(viewport={"width": 390, "height": 844})
    violations = watch_policy_violations(context)
    page = context.new_page()
    page.goto(f"{server.url}/activities/1")
    page.get_by_role("link", name="已报名？找回我的票").click()
    page.fill("#phone", "138 0013 8000")
    page.get_by_role("button", name="发送验证码").click()
    page.get_by_text("验证码短信已发送到该号码").wait_for()
    assert "138****8000" in page.content()

    wait_until(lambda: code_texts(gateway), timeout=15, what="the code's SMS at the gateway")
    [text] = code_texts(gateway)
    assert text.startswith("【科普报名】验证码")
    code = re.search(r"验证码([0-9]{6})，", text).group(1)

    page.fill("#code", code)
    page.get_by_role("button", name="验证并显示我的票").click()
    page.get_by_role("link", name="果树修剪现场课").click()
    page.locator("figure.qr figcaption").wait_for()
    page.wait_for_load_state("load")  # the QR image too (the caption comes first)
    assert "/t/" in page.url
    assert lost_secret not in page.url
    assert page.locator("figure.qr img").evaluate("img => img.complete && img.naturalWidth > 0")
    # Laid out for the phone: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # The link that was lost now says it was replaced.
    page.goto(f"{server.url}/t/{lost_secret}")
    assert page.get_by_role("heading", name="此电子票已更换").is_visible()
    assert violations == []
    context.close()
