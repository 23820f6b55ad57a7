"""Accounts in headless Chromium against a live server: an admin creates a coordinator and
gets a one-time set-password link; the coordinator opens it in a browser of their own,
sets a password, logs in, changes it, imports the town's roster and reads the town's
coverage on the back-office home (issue 14's "done when")."""

from __future__ import annotations

import os
from importlib.util import find_spec

import pytest

from sciweek import create_app
from sciweek.extensions import db

from .browser_support import CHROMIUM, CHROMIUM_ARGS, log_in, watch_policy_violations
from .conftest import DEFAULT_PASSWORD, Factory, require_or_skip
from .live_server import LiveServer

FIRST_PASSWORD = "tea-garden-417"
SECOND_PASSWORD = "river-bridge-852"


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
    """A live server whose database holds an admin and the town 白沙镇."""
    url = f"sqlite:///{tmp_path / 'browser.sqlite3'}"
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "setup"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        db.create_all()
        make = Factory()
        make.town(name="白沙镇", code="baisha", villages=["白沙一村"])
        admin = make.user("admin", username="chief")
        assert admin.id
        db.session.remove()
        db.engine.dispose()
    with LiveServer(url, tmp_path / "server", workers=1) as server:
        yield server


def test_a_coordinator_sets_a_password_from_the_link_and_changes_it(browser, site):
    phone_screen = {"viewport": {"width": 390, "height": 844}}
    admin_context = browser.new_context(**phone_screen)
    violations = watch_policy_violations(admin_context)
    page = admin_context.new_page()
    log_in(page, site.url, "chief", DEFAULT_PASSWORD)
    page.get_by_role("link", name="账号管理").first.click()
    page.get_by_role("link", name="新建账号").click()
    page.fill("#username", "baisha-li")
    page.fill("#display_name", "李联络")
    page.select_option("#role", "coordinator")
    page.select_option("#town", label="白沙镇")
    page.fill("#phone", "139 0000 7777")
    page.get_by_role("button", name="创建账号").click()
    link = page.input_value("#set-password-link")
    assert link.startswith(site.url + "/password/set/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.get_by_role("link", name="完成").click()
    page.get_by_role("link", name="返回账号列表").click()
    row = page.locator("tr[data-user='baisha-li']")
    assert "139****7777" in row.inner_text()
    assert "镇街联络员" in row.inner_text()

    # The coordinator, in a browser of their own, never logged in.
    own_context = browser.new_context(**phone_screen)
    violations += watch_policy_violations(own_context)
    own = own_context.new_page()
    own.goto(link)
    assert "baisha-li" in own.content()
    own.fill("#password", FIRST_PASSWORD)
    own.fill("#confirm", FIRST_PASSWORD)
    own.get_by_role("button", name="设置密码").click()
    own.get_by_text("密码已设置，请用新密码登录。").wait_for()
    log_in(own, site.url, "baisha-li", FIRST_PASSWORD)
    assert own.url.endswith("/manage/")  # chosen by themself: no forced change

    own.get_by_role("link", name="修改密码").click()
    own.fill("#current", FIRST_PASSWORD)
    own.fill("#password", "password123")
    own.fill("#confirm", "password123")
    own.get_by_role("button", name="修改密码").click()
    own.get_by_text("这是最常见密码之一").wait_for()
    own.fill("#current", FIRST_PASSWORD)
    own.fill("#password", SECOND_PASSWORD)
    own.fill("#confirm", SECOND_PASSWORD)
    own.get_by_role("button", name="修改密码").click()
    own.get_by_text("密码已修改。").wait_for()
    own.get_by_role("button", name="退出（李联络）").click()
    log_in(own, site.url, "baisha-li", SECOND_PASSWORD)
    assert own.url.endswith("/manage/")

    # The town's roster, uploaded and confirmed; the home page then counts its cadres.
    roster = "\n".join(
        [
            "序号,姓名,性别,出生年月,职务,所属镇街,村/社区,手机号码,身份证号",
            "1,王一,男,1980.01,书记,白沙镇,白沙一村,13800138001,",
            "2,王二,女,1982.02,主任,白沙镇,白沙一村,13800138002,",
            "3,王三,男,1985.03,委员,白沙镇,白沙一村,13800138003,",
        ]
    )
    own.goto(site.url + "/manage/training/import")
    own.set_input_files(
        "#file",
        files=[{"name": "白沙镇.csv", "mimeType": "text/csv", "buffer": roster.encode()}],
    )
    own.get_by_role("button", name="上传并预览").click()
    own.get_by_role("button", name="确认导入").click()
    own.get_by_text("已导入：新增 3 人").wait_for()
    own.goto(site.url + "/manage/")
    assert own.inner_text(".figure-trained dd") == "0 / 3"
    assert own.get_by_role("link", name="未训干部 3 人").is_visible()
    assert own.evaluate("document.documentElement.scrollWidth") <= 390

    # The link was used: it works no more.
    own.goto(link)
    assert own.get_by_text("链接无效、已使用或已过期").is_visible()

    # The admin reads it all in the audit log.
    page.goto(site.url + "/manage/users/audit")
    text = page.inner_text("table")
    for action in ("创建账号", "发出设置密码链接", "通过链接设置密码", "修改自己的密码"):
        assert action in text
    assert violations == []
    own_context.close()
    admin_context.close()
