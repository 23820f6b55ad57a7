"""The scanner page in headless Chromium: camera scan, offline queue and sync, self check-in.

A live gunicorn server runs against a temporary SQLite database. The camera is Chromium's
fake capture device playing a Y4M file made here from a real ticket's QR code.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from importlib.util import find_spec
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from sciweek import create_app
from sciweek.checkin.codes import make_self_code
from sciweek.extensions import db
from sciweek.i18n import to_local
from sciweek.models import CheckIn, Registration, ScanLog, User, utcnow
from sciweek.registration.qr import qr_png
from sciweek.registration.tickets import ticket_url

from .browser_support import log_in, type_code, watch_policy_violations
from .checkin_support import LiveServer, issue_ticket, sessions_now
from .conftest import DEFAULT_PASSWORD, Factory, require_or_skip
from .waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
BASE_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


@pytest.fixture
def chromium_available():
    require_or_skip(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed")
    require_or_skip(find_spec("playwright") is not None, "Playwright for Python is not installed")


def write_y4m(path: Path, png: bytes, width: int = 640, height: int = 480, frames: int = 10):
    """A YUV4MPEG2 (C420) video showing the image centred on white, for Chromium's fake camera."""
    from io import BytesIO

    qr = Image.open(BytesIO(png)).convert("L")
    side = min(width, height) - 40
    qr = qr.resize((side, side), Image.NEAREST)
    frame = Image.new("RGB", (width, height), "white")
    frame.paste(qr.convert("RGB"), ((width - side) // 2, (height - side) // 2))
    y, cb, cr = frame.convert("YCbCr").split()
    half = (width // 2, height // 2)
    planes = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + planes)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A seeded SQLite database and a gunicorn server on it."""
    database_url = f"sqlite:///{tmp_path / 'browser.sqlite3'}"
    secret_key = secrets.token_urlsafe(32)
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    server = LiveServer(
        database_url, tmp_path / "server", workers=2, env={"SCIWEEK_SECRET_KEY": secret_key}
    )
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "TESTING": True,
            "SCIWEEK_BASE_URL": server.url,
            "SECRET_KEY": secret_key,
        }
    )

    class Site:
        pass

    s = Site()
    with app.app_context():
        db.create_all()
        make = Factory()
        activity = make.activity(title="科普讲座", kind="training", sessions=sessions_now())
        checker = make.user("checker", username="doorphone")
        checker.assigned_activities.append(activity)
        db.session.commit()
        s.tickets = [
            issue_ticket(activity, name=name, phone=phone)
            for name, phone in [("张三", "13800000001"), ("李四", "13800000002")]
        ]
        s.ticket_urls = [ticket_url(server.url, t.secret) for t in s.tickets]
        s.short_codes = [t.registration.short_code for t in s.tickets]
        s.activity_id, s.session_id = activity.id, activity.sessions[0].id
        db.session.remove()
    s.app, s.server, s.secret_key = app, server, secret_key
    server.start()
    yield s
    server.stop()
    with app.app_context():
        db.engine.dispose()


def count(app, model, *where):
    with app.app_context():
        value = db.session.scalar(select(func.count(model.id)).where(*where))
        db.session.remove()
        return value


def login(page, base, username="doorphone"):
    log_in(page, base, username, DEFAULT_PASSWORD)


def launch(playwright, video: Path | None = None):
    args = list(BASE_ARGS)
    if video is not None:
        args.append(f"--use-file-for-fake-video-capture={video}")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=args)


def test_camera_scan_of_a_real_ticket_checks_the_person_in(chromium_available, site, tmp_path):
    from playwright.sync_api import sync_playwright

    video = tmp_path / "ticket.y4m"
    write_y4m(video, qr_png(site.ticket_urls[0]))
    with sync_playwright() as p:
        browser = launch(p, video)
        context = browser.new_context(viewport={"width": 390, "height": 844})
        context.grant_permissions(["camera"], origin=site.server.url)
        violations = watch_policy_violations(context)
        page = context.new_page()
        login(page, site.server.url)
        page.goto(f"{site.server.url}/manage/activities/{site.activity_id}/scan")
        page.wait_for_selector("#result[data-result=ok]", timeout=20000)
        assert "张三" in page.inner_text("#result")
        assert page.inner_text("#count-in") == "1"
        # The camera keeps seeing the same ticket: no second check-in, no error. (Nothing
        # to wait for: the test is that nothing happens during this time.)
        page.wait_for_timeout(1500)
        browser.close()
    # The camera (Permissions-Policy), jsQR and the scanner ran under the site's headers.
    assert violations == []
    assert count(site.app, CheckIn) == 1
    assert count(site.app, ScanLog) == 1


def test_offline_scans_are_queued_and_synced(chromium_available, site):
    from playwright.sync_api import expect, sync_playwright

    url = f"{site.server.url}/manage/activities/{site.activity_id}/scan"
    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context()
        violations = watch_policy_violations(context)
        page = context.new_page()
        login(page, site.server.url)
        page.goto(url)
        page.wait_for_function(
            "() => document.getElementById('roster-status').textContent.length > 0"
        )

        # Door search: a name, a phone's last four digits, or a whole phone compared on the
        # digits its mask shows (138****0001): never another part of a number.
        def search(text):
            page.fill("#search-input", text)
            return page.inner_text("#search-results")

        assert "张三" in search("0001")
        assert "李四" not in search("0001")
        assert "李四" in search("李")
        assert "张三" in search("０００１")  # full-width digits from a Chinese keyboard
        assert "张三" in search("13800000001")
        assert "李四" not in search("13800000001")
        for longer in ("00001", "138", "1380000"):
            assert "张三" not in search(longer)
            assert "后 4 位" in search(longer)
        page.fill("#search-input", "")

        # Let the service worker take control and keep the page for offline use.
        page.wait_for_function(
            "() => navigator.serviceWorker && navigator.serviceWorker.controller"
        )
        # (page.evaluate awaits the promise; wait_for_function would not.)
        wait_until(
            lambda: page.evaluate(
                "async () => !!(await caches.match(location.pathname + location.search))"
                " && !!(await caches.match('/static/js/scanner.js'))"
            ),
            what="the service worker to keep the scanner page",
        )

        context.set_offline(True)
        page.reload()  # served by the service worker
        page.wait_for_function(
            "() => document.getElementById('roster-status').textContent.length > 0"
        )

        def scan(text):
            return type_code(page, text)

        assert scan(site.short_codes[0].lower()) == "ok"
        assert scan(site.ticket_urls[0]) == "already_checked_in"
        assert scan(site.ticket_urls[1]) == "ok"  # hashed in the browser, found in the roster
        assert scan("https://evil.example.com/t/" + "A" * 32) == "invalid"
        # The queue is written to IndexedDB after the answer is shown.
        expect(page.locator("#net-status")).to_have_text("离线 — 4 条待同步")
        expect(page.locator("#count-in")).to_have_text("2")
        assert count(site.app, CheckIn) == 0

        context.set_offline(False)
        page.wait_for_function(
            "() => document.getElementById('net-status').textContent === '在线'", timeout=20000
        )
        browser.close()
    # The service worker, IndexedDB queue and sync ran under the site's headers.
    assert violations == []

    assert count(site.app, CheckIn) == 2
    with site.app.app_context():
        logs = db.session.scalars(select(ScanLog).order_by(ScanLog.id)).all()
        assert [log.result for log in logs] == ["ok", "already_checked_in", "ok", "invalid"]
        # Late scans keep the device's scan time.
        assert all(log.scanned_at is not None and log.scanned_at < log.recorded_at for log in logs)
        db.session.remove()


def test_self_checkin_from_the_projector_and_an_expired_code(chromium_available, site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        staff = browser.new_context()
        violations = watch_policy_violations(staff)
        projector = staff.new_page()
        login(projector, site.server.url)
        projector.goto(
            f"{site.server.url}/manage/activities/{site.activity_id}"
            f"/sessions/{site.session_id}/projector"
        )
        projector.wait_for_function(
            "() => document.getElementById('projector-qr').src.length > 100"
        )
        code_url = projector.get_attribute("#projector-qr", "data-url")

        # 李四 registered on this phone: its ticket page left the ticket on the device.
        phone = browser.new_context(viewport={"width": 390, "height": 844})
        violations += watch_policy_violations(phone)
        cadre = phone.new_page()
        cadre.goto(site.ticket_urls[1])
        cadre.goto(code_url)
        cadre.click(".held-ticket button[type=submit]")
        cadre.wait_for_selector("#self-result")
        result = cadre.inner_text("#self-result")
        assert "签到成功" in result
        assert "李*" in result
        assert "李四" not in result

        # 张三 borrows a phone: the number alone is not enough, number and short code are.
        other_phone = browser.new_context(viewport={"width": 390, "height": 844})
        violations += watch_policy_violations(other_phone)
        borrowed = other_phone.new_page()
        borrowed.goto(code_url)
        borrowed.fill("input[name=phone]", "13800000001")
        borrowed.click("#self-form button[type=submit]")  # the browser asks for the code
        assert borrowed.evaluate(
            "document.querySelector('input[name=short_code]').validity.valueMissing"
        )
        borrowed.fill(
            "input[name=short_code]", "ZZZZZZ" if site.short_codes[0] != "ZZZZZZ" else "YYYYYY"
        )
        with borrowed.expect_navigation():
            borrowed.click("#self-form button[type=submit]")
        assert "手机号与票码不符" in borrowed.inner_text("#self-form")
        borrowed.fill("input[name=short_code]", site.short_codes[0].lower())
        borrowed.click("#self-form button[type=submit]")
        borrowed.wait_for_selector("#self-result")
        assert "签到成功" in borrowed.inner_text("#self-result")
        assert "张*" in borrowed.inner_text("#self-result")

        # The device remembers the number for the next session's code.
        borrowed.goto(code_url)
        assert borrowed.input_value("input[name=phone]") == "13800000001"

        expired = make_self_code(site.secret_key, site.session_id, utcnow().timestamp() - 150)
        response = cadre.goto(f"{site.server.url}/checkin/self/{expired}")
        assert response.status == 400
        assert "已过期" in cadre.inner_text("main")
        browser.close()

    assert count(site.app, CheckIn, CheckIn.method == "self") == 2
    # The projector's data: QR code and the self check-in page ran under the site's headers.
    assert violations == []


def test_a_too_early_ticket_is_refused_then_checked_in_anyway_by_an_organizer(
    chromium_available, site
):
    """Session windows at the door: a ticket three hours early answers 本场次 … 开始; the
    organizer checks one person in anyway with a reason (online), and another offline,
    decided from the roster and synced later; a checker is offered no override."""
    from playwright.sync_api import expect, sync_playwright

    with site.app.app_context():
        make = Factory()
        department = make.department()
        make.user("organizer", username="organizer-door", department=department)
        starts = utcnow().replace(microsecond=0) + timedelta(hours=3)
        activity = make.activity(
            title="果树修剪培训",
            kind="training",
            departments=[department],
            sessions=[(starts, starts + timedelta(hours=2))],
        )
        checker = db.session.scalar(select(User).where(User.username == "doorphone"))
        checker.assigned_activities.append(activity)
        db.session.commit()
        codes = [
            issue_ticket(activity, name=name, phone=phone).registration.short_code
            for name, phone in [("王五", "13800000011"), ("赵六", "13800000012")]
        ]
        activity_id = activity.id
        local_start = to_local(starts)
        db.session.remove()
    says = f"本场次 {local_start.month}月{local_start.day}日 {local_start:%H:%M} 开始"
    url = f"{site.server.url}/manage/activities/{activity_id}/scan"

    with sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 390, "height": 844})
        violations = watch_policy_violations(context)
        page = context.new_page()

        def scan(text):
            return type_code(page, text)

        def roster_loaded():
            page.wait_for_function(
                "() => document.getElementById('roster-status').textContent.length > 0"
            )

        login(page, site.server.url, "organizer-door")
        page.goto(url)
        roster_loaded()
        assert scan(codes[0]) == "not_now"
        expect(page.locator("#result-title")).to_have_text(says)
        expect(page.locator("#override-form")).to_be_visible()
        page.fill("#override-reason", "提前到场帮忙布置会场")
        page.click("#override-button")
        page.wait_for_selector("#result[data-result=ok]")
        expect(page.locator("#override-form")).to_be_hidden()
        assert "王五" in page.inner_text("#result")

        # Offline: the roster's session and window settings decide, with the same words.
        context.set_offline(True)
        assert scan(codes[1]) == "not_now"
        expect(page.locator("#result-title")).to_have_text(says)
        page.fill("#override-reason", "离线补录")
        page.click("#override-button")
        page.wait_for_selector("#result[data-result=ok]")
        expect(page.locator("#net-status")).to_have_text("离线 — 2 条待同步")
        context.set_offline(False)
        page.wait_for_function(
            "() => document.getElementById('net-status').textContent === '在线'", timeout=20000
        )

        # A checker is told the time and offered nothing more.
        page.click("form[action='/logout'] button")
        login(page, site.server.url)
        page.goto(url)
        roster_loaded()
        assert scan(codes[0]) == "already_checked_in"
        page.eval_on_selector("#code-input", "input => input.value = ''")
        assert page.locator("#override-form").count() == 0
        browser.close()
    assert violations == []

    with site.app.app_context():
        rows = db.session.execute(
            select(Registration.name, CheckIn.window_override_reason, User.username)
            .join(CheckIn, CheckIn.registration_id == Registration.id)
            .join(User, User.id == CheckIn.checked_in_by_id)
            .order_by(Registration.name)
        ).all()
        assert sorted(rows) == sorted(
            [
                ("王五", "提前到场帮忙布置会场", "organizer-door"),
                ("赵六", "离线补录", "organizer-door"),
            ]
        )
        results = db.session.scalars(
            select(ScanLog.result).where(ScanLog.activity_id == activity_id).order_by(ScanLog.id)
        ).all()
        # The offline scans were queued and synced: the refusal too, judged at its time.
        assert results == ["not_now", "ok", "not_now", "ok", "already_checked_in"]
        db.session.remove()
