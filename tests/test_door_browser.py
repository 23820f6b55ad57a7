"""The door in headless Chromium as a new checker or organizer meets it (issue 11), on both
databases: the undo button, the projector on a 1920×1080 screen, over-capacity admission and
walk-ins without a phone.

A live gunicorn server runs on a fresh database (SQLite, then PostgreSQL when configured).
Every test fails on any security-policy complaint Chromium reports.
"""

from __future__ import annotations

import os
from datetime import timedelta
from importlib.util import find_spec

import pytest
import requests
from sqlalchemy import func, select

from sciweek.extensions import db
from sciweek.models import CheckIn, Registration, utcnow

from . import browser_support
from .browser_support import CHROMIUM, CHROMIUM_ARGS, type_code, watch_policy_violations
from .checkin_support import LiveServer, bearer, issue_ticket, token_for
from .conftest import DEFAULT_PASSWORD, Factory, require_or_skip


class Door:
    """What the tests need to know of the seeded door."""


@pytest.fixture
def door(live_database, tmp_path):
    require_or_skip(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed")
    require_or_skip(find_spec("playwright") is not None, "Playwright for Python is not installed")
    app, url = live_database
    make = Factory()
    department = make.department()
    now = utcnow()
    village_town = make.town(name="清河镇", villages=["李家村", "张庄"])
    fair = make.activity(
        title="科技下乡集市",
        departments=[department],
        town=village_town,
        capacity=1,
        waitlist_enabled=True,
        sessions=[(now - timedelta(minutes=10), now + timedelta(hours=2))],
    )
    organizer = make.user("organizer", username="door-organizer", department=department)
    checker = make.user("checker", username="door-checker")
    checker.assigned_activities.append(fair)
    db.session.commit()
    d = Door()
    d.app = app
    d.activity_id, d.session_id = fair.id, fair.sessions[0].id
    d.confirmed = issue_ticket(fair, name="张三", phone="13800000001")
    d.waitlisted = issue_ticket(fair, name="李四", phone="13800000002")
    d.confirmed_code = d.confirmed.registration.short_code
    d.waitlisted_code = d.waitlisted.registration.short_code
    d.checker_token = token_for(checker)
    d.organizer_token = token_for(organizer)
    d.village_id = village_town.villages[0].id
    db.session.remove()
    with LiveServer(url, tmp_path / "server", workers=2) as server:
        d.base = server.url
        yield d


@pytest.fixture
def browser(door):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def new_context(browser, **options):
    context = browser.new_context(**options)
    context.violations = watch_policy_violations(context)
    return context


def log_in(page, base: str, username: str) -> None:
    browser_support.log_in(page, base, username, DEFAULT_PASSWORD)


PHONE = {"viewport": {"width": 390, "height": 844}}


def test_undo_is_hidden_before_a_scan_and_for_checkers(browser, door):
    checker = new_context(browser, **PHONE)
    page = checker.new_page()
    log_in(page, door.base, "door-checker")
    assert page.url.endswith("/manage/checkin")  # a checker lands on the door list
    page.goto(f"{door.base}/manage/activities/{door.activity_id}/scan")
    page.wait_for_function("() => document.getElementById('roster-status').textContent")
    assert not page.is_visible("#undo-button")
    assert type_code(page, door.confirmed_code) == "ok"
    assert not page.is_visible("#undo-button")  # checkers may not undo
    checker.close()

    organizer = new_context(browser, **PHONE)
    page = organizer.new_page()
    log_in(page, door.base, "door-organizer")
    page.goto(f"{door.base}/manage/activities/{door.activity_id}/scan")
    assert not page.is_visible("#undo-button")
    assert type_code(page, door.confirmed_code) == "already_checked_in"
    assert not page.is_visible("#undo-button")
    organizer.close()
    assert checker.violations == []
    assert organizer.violations == []


def test_projector_shows_the_counter_above_the_fold_and_refreshes_it(browser, door):
    context = new_context(browser, viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    log_in(page, door.base, "door-organizer")
    page.goto(
        f"{door.base}/manage/activities/{door.activity_id}/sessions/{door.session_id}/projector"
    )
    page.wait_for_function("() => document.getElementById('projector-qr').src.length > 100")
    assert page.locator(".topbar").count() == 0
    assert page.locator("footer").count() == 0
    for element in ("#projector-in", "#projector-qr", ".projector h1"):
        box = page.locator(element).bounding_box()
        assert box is not None, element
        assert box["y"] >= 0, (element, box)
        assert box["y"] + box["height"] <= 1080, (element, box)
    assert page.inner_text("#projector-in") == "0"
    # Someone is checked in at the door: the counter follows within about 5 seconds.
    answer = requests.post(
        door.base + "/api/v1/checkins",
        json={"code": door.confirmed_code, "activity_id": door.activity_id},
        headers=bearer(door.checker_token),
        timeout=10,
    )
    assert answer.json()["result"] == "ok"
    page.wait_for_function(
        "() => document.getElementById('projector-in').textContent === '1'", timeout=7500
    )
    # The organizer admits the waitlisted person beyond capacity: the projector says so.
    admitted = requests.post(
        f"{door.base}/api/v1/activities/{door.activity_id}/over-capacity",
        json={"registration_id": door.waitlisted.registration_id},
        headers=bearer(door.organizer_token),
        timeout=10,
    )
    assert admitted.json()["result"] == "ok"
    page.wait_for_function(
        "() => document.getElementById('projector-over').textContent === '+超额 1'",
        timeout=7500,
    )
    assert page.inner_text("#projector-in") == "2"
    context.close()
    assert context.violations == []


def _count(app, *where) -> int:
    with app.app_context():
        value = db.session.scalar(select(func.count()).select_from(CheckIn).where(*where))
        db.session.remove()
        return value


def _registration(app, *where) -> Registration | None:
    with app.app_context():
        row = db.session.scalar(select(Registration).where(*where))
        db.session.expunge_all()
        db.session.remove()
        return row


def test_organizer_admits_over_capacity_and_registers_a_villager_without_a_phone(browser, door):
    # A checker sees the waitlisted person refused, with nothing to override it.
    checker = new_context(browser, **PHONE)
    page = checker.new_page()
    log_in(page, door.base, "door-checker")
    page.goto(f"{door.base}/manage/activities/{door.activity_id}/scan")
    page.wait_for_function("() => document.getElementById('roster-status').textContent")
    assert type_code(page, door.waitlisted_code) == "waitlisted"
    assert not page.is_visible("#admit-button")
    page.click(".walk-in summary")
    assert page.locator("#walk-in-over-capacity").count() == 0
    checker.close()

    organizer = new_context(browser, **PHONE)
    page = organizer.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # "现场确有空座，超额签到此人？"
    log_in(page, door.base, "door-organizer")
    page.goto(f"{door.base}/manage/activities/{door.activity_id}/scan")
    page.wait_for_function("() => document.getElementById('roster-status').textContent")
    assert type_code(page, door.waitlisted_code) == "waitlisted"
    assert page.is_visible("#admit-button")
    page.eval_on_selector("#result", "box => box.removeAttribute('data-result')")
    page.click("#admit-button")
    page.wait_for_selector("#result[data-result=ok]")
    assert "李四" in page.inner_text("#result")
    assert page.inner_text("#count-over") == "+超额 1"
    registration = _registration(door.app, Registration.id == door.waitlisted.registration_id)
    assert registration.over_capacity

    # An elderly villager without a phone: name and village.
    page.click(".walk-in summary")
    page.fill("#walk-in-name", "王大爷")
    page.check("#walk-in-no-phone")
    assert not page.is_visible("#walk-in-phone")
    page.select_option("#walk-in-village", str(door.village_id))
    page.check("#walk-in-over-capacity")  # the fair is full
    page.eval_on_selector("#result", "box => box.removeAttribute('data-result')")
    page.click("#walk-in-form button[type=submit]")
    page.wait_for_selector("#result[data-result=ok]")
    assert "王大爷 · 无手机" in page.inner_text("#result")
    assert page.inner_text("#count-over") == "+超额 2"
    organizer.close()
    assert checker.violations == []
    assert organizer.violations == []
    villager = _registration(door.app, Registration.name == "王大爷")
    assert villager.phone is None
    assert villager.village_id == door.village_id
    assert _count(door.app) == 2
