"""An organizer records an activity summary on a phone-sized screen, in headless Chromium
under the strict policy: two experts and a JPEG carrying its GPS location."""

from __future__ import annotations

import os
from datetime import timedelta
from importlib.util import find_spec

import pytest
from sqlalchemy import select

from sciweek import create_app
from sciweek.extensions import db
from sciweek.models import ActivitySummary, utcnow
from sciweek.summaries.photos import MAX_EDGE

from .browser_support import CHROMIUM, CHROMIUM_ARGS, log_in, watch_policy_violations
from .conftest import DEFAULT_PASSWORD, Factory, require_or_skip
from .live_server import LiveServer
from .photo_files import GPS_IFD, photo, read_image


@pytest.fixture
def held_outreach(tmp_path, monkeypatch):
    """An outreach fair held yesterday by an organizer's department, behind a live server
    whose files go to ``tmp_path / "files"``."""
    require_or_skip(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed")
    require_or_skip(find_spec("playwright") is not None, "Playwright for Python is not installed")
    url = f"sqlite:///{tmp_path / 'summary.sqlite3'}"
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "setup"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        db.create_all()
        make = Factory()
        organizer = make.user("organizer", username="summary-organizer")
        starts = utcnow() - timedelta(days=1)
        activity = make.activity(
            title="科技下乡集市",
            departments=[organizer.department],
            sessions=[(starts, starts + timedelta(hours=3))],
        )
        activity_id = activity.id
        db.session.remove()
    files = tmp_path / "files"
    with LiveServer(
        url,
        tmp_path / "server",
        workers=1,
        SCIWEEK_RATELIMIT_ENABLED="0",
        SCIWEEK_STORAGE_PATH=str(files),
    ) as server:
        yield app, server, activity_id, files
    with app.app_context():
        db.engine.dispose()


def test_organizer_fills_a_summary_on_a_phone(held_outreach, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    app, server, activity_id, files = held_outreach
    picture = tmp_path / "IMG_0420.JPG"
    picture.write_bytes(photo((4000, 3000)))
    assert read_image(picture.read_bytes()).getexif().get_ifd(GPS_IFD)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        violations = watch_policy_violations(context)
        page = context.new_page()
        log_in(page, server.url, "summary-organizer", DEFAULT_PASSWORD)
        page.goto(f"{server.url}/manage/activities/{activity_id}/edit")
        page.click(f"a[href='/manage/activities/{activity_id}/summary']")
        page.click(f"a[href='/manage/activities/{activity_id}/summary/edit']")

        page.fill("input[name=people_reached]", "320")
        page.fill("input[name=materials_distributed]", "1500")
        page.fill("input[name=consultations]", "86")
        page.fill("input[name=experts-0-name]", "王建国")
        page.fill("input[name=experts-0-unit]", "区农业农村局")
        page.fill("input[name=experts-0-specialty]", "果树栽培")
        page.fill("input[name=experts-1-name]", "李秀英")
        page.fill("input[name=experts-1-unit]", "区人民医院")
        page.fill("input[name=experts-1-specialty]", "慢病防治")
        page.fill("textarea[name=text]", "在村文化礼堂开展科技下乡。")
        photos = page.locator("input[name=photos]")
        assert photos.get_attribute("accept") == "image/*"
        assert photos.get_attribute("multiple") is not None
        photos.set_input_files(str(picture))
        # Nothing wider than the phone's screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.click("form.summary-form button[type=submit]")

        expect(page.locator(".flash-success")).to_contain_text("活动总结已保存")
        expect(page.locator("#people-reached")).to_have_text("320")
        expect(page.locator(".summary-experts tbody tr")).to_have_count(2)
        thumbnail = page.locator(".summary-photos img")
        expect(thumbnail).to_have_count(1)
        page.wait_for_function(
            "() => { const i = document.querySelector('.summary-photos img');"
            " return i && i.complete && i.naturalWidth > 0; }"
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        # The full view opens the kept JPEG.
        page.click(".summary-photos a")
        page.wait_for_load_state()
        assert (
            page.evaluate("document.images.length && document.images[0].naturalWidth") == MAX_EDGE
        )
        context.close()
        browser.close()
    assert violations == []

    with app.app_context():
        summary = db.session.scalar(select(ActivitySummary))
        assert [e.name for e in summary.experts] == ["王建国", "李秀英"]
        (kept,) = summary.photos
        db.session.remove()
    stored = read_image((files / kept.storage_key).read_bytes())
    assert stored.format == "JPEG"
    assert max(stored.size) <= MAX_EDGE
    assert stored.getexif().get_ifd(GPS_IFD) == {}
    assert dict(stored.getexif()) == {}
