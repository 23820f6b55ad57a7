"""An admin adds a town and two villages and merges them, in headless Chromium under the
strict policy."""

from __future__ import annotations

import os
from importlib.util import find_spec

import pytest
from sqlalchemy import select

from sciweek import create_app
from sciweek.extensions import db
from sciweek.models import Town

from .browser_support import CHROMIUM, CHROMIUM_ARGS, log_in, watch_policy_violations
from .conftest import DEFAULT_PASSWORD, Factory, require_or_skip
from .live_server import LiveServer


@pytest.fixture
def places_site(tmp_path, monkeypatch):
    require_or_skip(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed")
    require_or_skip(find_spec("playwright") is not None, "Playwright for Python is not installed")
    url = f"sqlite:///{tmp_path / 'places.sqlite3'}"
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "setup"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        db.create_all()
        Factory().user("admin", username="places-admin")
        db.session.remove()
    with LiveServer(url, tmp_path / "server", workers=1, SCIWEEK_RATELIMIT_ENABLED="0") as srv:
        yield app, srv
    with app.app_context():
        db.engine.dispose()


def test_admin_adds_a_town_and_villages_and_merges_two(places_site):
    from playwright.sync_api import expect, sync_playwright

    app, server = places_site
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        violations = watch_policy_violations(context)
        page = context.new_page()
        log_in(page, server.url, "places-admin", DEFAULT_PASSWORD)
        page.goto(server.url + "/manage/")
        page.click("text=镇街与村/社区")
        page.fill("input[name=name]", "城关镇")
        page.fill("input[name=code]", "chengguan")
        page.click("form button:has-text('添加')")
        expect(page.locator("h1")).to_have_text("城关镇")

        for name in ("城关一村", "城关1村", "城关二村"):
            page.fill("form.add-village input[name=name]", name)
            page.click("form.add-village button[type=submit]")
            expect(page.locator("td.village-name", has_text=name)).to_have_count(1)
        # A name already there is refused beside the field.
        page.fill("form.add-village input[name=name]", "城关二村")
        page.click("form.add-village button[type=submit]")
        expect(page.locator("form.add-village .error")).to_contain_text("已有村/社区“城关二村”")
        page.goto(page.url.rsplit("/villages", 1)[0])
        names = page.locator("td.village-name").all_inner_texts()
        assert names[2] == "城关二村"  # natural order: 一 = 1 < 二
        assert sorted(names[:2]) == ["城关1村", "城关一村"]

        page.locator("tr", has_text="城关1村").get_by_role("link", name="合并").click()
        page.select_option("select[name=target_id]", label="城关一村")
        page.click("button:has-text('查看合并结果')")
        page.click("button:has-text('确认合并')")
        expect(page.locator(".flash")).to_contain_text("已把“城关1村”并入“城关一村”")
        expect(page.locator("td.village-name")).to_have_count(2)
        expect(page.locator("tr", has_text="城关一村")).to_contain_text("城关1村")  # former
        browser.close()
    assert violations == []
    with app.app_context():
        town = db.session.scalar(select(Town).where(Town.code == "chengguan"))
        kept = {v.name: v.former_names for v in town.villages}
        assert kept == {"城关一村": "城关1村", "城关二村": ""}
        db.session.remove()
