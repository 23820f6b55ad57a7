"""Registering on a phone-sized screen in headless Chromium, as a citizen would."""

from __future__ import annotations

import os
import time
from importlib.util import find_spec

import pytest
from sqlalchemy import func, select

from sciweek.extensions import db
from sciweek.models import Registration

from .browser_support import watch_policy_violations
from .conftest import Factory, local, require_or_skip
from .live_server import LiveServer

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser():
    require_or_skip(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed")
    require_or_skip(find_spec("playwright") is not None, "Playwright for Python is not installed")
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield chromium
        chromium.close()


@pytest.fixture
def site(tmp_path, monkeypatch):
    from sciweek import create_app

    url = f"sqlite:///{tmp_path / 'browser.sqlite3'}"
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "setup"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        db.create_all()
        activity_id = (
            Factory()
            .activity(title="果树修剪现场课", capacity=1,
                      sessions=[(local(2099, 6, 1, 9), local(2099, 6, 1, 11))])
            .id
        )  # fmt: skip
        db.session.remove()
        db.engine.dispose()
        with LiveServer(url, tmp_path / "server", workers=2) as server:
            yield server, app, activity_id


def count_registrations(app) -> int:
    with app.app_context():
        n = db.session.scalar(select(func.count()).select_from(Registration))
        db.session.remove()
        return n


def test_register_on_a_phone_with_a_double_tap_gives_one_ticket(browser, site):
    server, app, activity_id = site
    contexts = [browser.new_context(viewport={"width": 390, "height": 844}) for _ in range(3)]
    violations = [watch_policy_violations(c) for c in contexts]
    page = contexts[0].new_page()
    page.goto(f"{server.url}/activities/{activity_id}")
    page.fill("#name", "张三")
    page.fill("#phone", "138 0013 8000")
    # A slow network: the answer takes a while, and the person taps again meanwhile.
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.route("**/register", lambda route: (time.sleep(0.5), route.continue_()))
    button = page.locator("button.primary.wide")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.click(x, y)  # raw taps: Playwright's click would wait for the navigation
    page.wait_for_timeout(200)
    page.mouse.click(x, y)
    page.wait_for_url("**/t/*")
    # The form went once (static/js/forms.js); without the guard the second tap sends it again.
    assert posts == [f"{server.url}/activities/{activity_id}/register"]
    assert "报名成功" in page.content()
    qr = page.locator("figure.qr img")
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    assert count_registrations(app) == 1
    # The activity is now full: the next person joins the waitlist and sees their place.
    other = contexts[1].new_page()
    other.goto(f"{server.url}/activities/{activity_id}")
    assert "名额已满，现在报名将进入候补" in other.content()
    other.fill("#name", "李四")
    other.fill("#phone", "13900139000")
    other.click("button.primary.wide")
    other.wait_for_url("**/t/*")
    assert "候补中：第 1 位" in other.content()
    # A bad phone number is explained next to the field, nothing is written.
    third = contexts[2].new_page()
    third.goto(f"{server.url}/activities/{activity_id}")
    third.fill("#name", "王五")
    third.fill("#phone", "12345")
    third.click("button.primary.wide")
    assert "手机号格式不正确" in third.locator(".field.has-error").inner_text()
    assert count_registrations(app) == 2
    # The one-submit script and the QR image ran under the site's security headers.
    assert violations == [[], [], []]


def test_policy_violations_are_seen(browser, site):
    """The watch above can fail: a refused connection is reported."""
    server, _app, activity_id = site
    context = browser.new_context()
    violations = watch_policy_violations(context)
    page = context.new_page()
    page.goto(f"{server.url}/activities/{activity_id}")
    with page.expect_console_message(lambda m: "connect-src" in m.text, timeout=5000):
        page.evaluate("fetch('https://example.invalid/x').catch(function () {})")
    assert any("connect-src" in v for v in violations), violations
