"""The coordinator's back-office home on a 390-px phone, in headless Chromium under the
strict policy: no horizontal scrolling, the town's figures readable."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal
from importlib.util import find_spec

import pytest

from sciweek import create_app
from sciweek.extensions import db
from sciweek.i18n import local_today
from sciweek.models import utcnow
from sciweek.training.services import set_target

from .browser_support import CHROMIUM, CHROMIUM_ARGS, log_in, watch_policy_violations
from .checkin_support import register_person
from .conftest import DEFAULT_PASSWORD, Factory, require_or_skip
from .live_server import LiveServer
from .training_helpers import attend, cadre

PHONE = {"width": 390, "height": 844}
LONG_TITLE = "2026年农村基层干部普及型科技培训（第三期）：设施农业、绿色种养与农村电商实用技术专题"


@pytest.fixture
def coordinator_site(tmp_path, monkeypatch):
    """A town with six cadres (two trained, target 80 %), trainings for it today and this
    week with long titles and venues, behind a live server."""
    require_or_skip(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed")
    require_or_skip(find_spec("playwright") is not None, "Playwright for Python is not installed")
    url = f"sqlite:///{tmp_path / 'dashboard.sqlite3'}"
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "setup"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        db.create_all()
        make = Factory()
        town = make.town(name="白沙镇", code="baisha", villages=["东风村", "向阳社区"])
        make.user("coordinator", username="dash-coordinator", town=town)
        people = [cadre(town) for _ in range(6)]
        set_target(town.id, local_today().year, Decimal("80"), None)
        soon = utcnow() + timedelta(minutes=10)
        for n in range(4):
            first = soon + timedelta(days=n * 2)
            activity = make.activity(
                title=f"{LONG_TITLE}{n}",
                kind="training",
                town=town,
                capacity=60,
                roster_towns=[town],
                venue="白沙镇人民政府三楼多功能会议室（东风路188号，停车场在北门）",
                sessions=[(first, first + timedelta(hours=3))],
            )
            register_person(activity, f"参训人{n}", f"1390013900{n}")
        past = utcnow() - timedelta(days=40)
        held = make.activity(
            kind="training", town=town, sessions=[(past, past + timedelta(hours=2))]
        )
        for person in people[:2]:
            attend(held, person.phone)
        db.session.remove()
    with LiveServer(url, tmp_path / "server", workers=1, SCIWEEK_RATELIMIT_ENABLED="0") as srv:
        yield srv
    with app.app_context():
        db.engine.dispose()


def test_the_coordinators_dashboard_fits_a_390_px_phone(coordinator_site):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
        violations = watch_policy_violations(context)
        page = context.new_page()
        log_in(page, coordinator_site.url, "dash-coordinator", DEFAULT_PASSWORD)
        page.goto(coordinator_site.url + "/manage/")
        expect(page.locator("#own-town")).to_contain_text("白沙镇")
        expect(page.locator("#own-town .figure-trained dd")).to_have_text("2 / 6")
        expect(page.locator("#own-town .figure-gap dd")).to_have_text("3")
        expect(page.locator(".untrained-link")).to_have_text("未训干部 4 人")
        expect(page.locator("#today .board-session")).to_have_count(1)
        expect(page.locator("#week .board-session")).to_have_count(3)
        expect(page.locator("#today .figure-registered dd")).to_have_text("1 / 60")
        width = page.evaluate("document.documentElement.scrollWidth")
        body_width = page.evaluate("document.body.scrollWidth")
        page.locator(".untrained-link").click()
        expect(page.locator("h1")).to_contain_text("白沙镇")
        context.close()
        browser.close()
    assert width <= PHONE["width"], width
    assert body_width <= PHONE["width"], body_width
    assert violations == []
