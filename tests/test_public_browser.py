"""The public pages and the door pages in headless Chromium: one axe-core run over all of
them (no serious or critical violation), and one citizen's journey on a 390-px phone.

The server is started without SCIWEEK_BASE_URL, on a random port: the ticket's QR code must
carry the address actually served (issue 15, point 1)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from datetime import timedelta
from importlib.util import find_spec
from pathlib import Path

import pytest
from sqlalchemy import select

from sciweek import create_app
from sciweek.checkin.codes import make_self_code
from sciweek.extensions import db
from sciweek.models import Registration, utcnow
from sciweek.registration.services import reissue_ticket

from .browser_support import CHROMIUM, CHROMIUM_ARGS, watch_policy_violations
from .checkin_support import issue_ticket
from .conftest import DEFAULT_PASSWORD, Factory, local, require_or_skip
from .live_server import LiveServer

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SECRET_KEY = "public-browser-secret-key-0123456789abcdef"
PHONE = {"width": 390, "height": 844}
UPCOMING = [(local(2099, 5, 17, 9, 30), local(2099, 5, 17, 11))]


@pytest.fixture(scope="module")
def browser():
    require_or_skip(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed")
    require_or_skip(find_spec("playwright") is not None, "Playwright for Python is not installed")
    from playwright import sync_api

    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("public")
    url = f"sqlite:///{folder / 'public.sqlite3'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCIWEEK_INSTANCE_PATH", str(folder / "setup"))
        mp.delenv("SCIWEEK_BASE_URL", raising=False)
        app = create_app(
            {"SQLALCHEMY_DATABASE_URI": url, "TESTING": True, "SECRET_KEY": SECRET_KEY}
        )

    class Site:
        pass

    s = Site()
    with app.app_context():
        db.create_all()
        make = Factory()
        town = make.town(name="青山镇")
        now = utcnow()
        make.activity(
            title="去年的下乡", kind="outreach", capacity=50, town=town,
            sessions=[(local(2001, 5, 17, 9), local(2001, 5, 17, 11))],
        )  # fmt: skip
        outreach = make.activity(
            title="果树修剪下乡", kind="outreach", capacity=50, town=town, venue="文化礼堂",
            latitude=30.2741, longitude=120.1551, sessions=UPCOMING,
        )  # fmt: skip
        make.activity(title="村干部电商培训", kind="training", town=town, sessions=UPCOMING)
        make.activity(
            title="取消的科普日", kind="science_day", status="cancelled", sessions=UPCOMING
        )
        door = make.activity(
            title="今天的培训", kind="training", town=town,
            sessions=[(now - timedelta(minutes=10), now + timedelta(hours=2))],
        )  # fmt: skip
        make.user("admin", username="boss")
        citizen = make.user("citizen", username="13700000001")
        s.door_ticket = issue_ticket(door, name="王五", phone="13700000001").secret
        registration = issue_ticket(outreach, name="王五", phone="13700000001").registration
        registration.user_id = citizen.id
        s.replaced_ticket = issue_ticket(outreach, name="赵六", phone="13700000002").secret
        reissue_ticket(db.session.scalar(select(Registration).where(Registration.name == "赵六")))
        db.session.commit()
        s.outreach_id, s.door_id = outreach.id, door.id
        s.session_id = door.sessions[0].id
        db.session.remove()
    # No SCIWEEK_BASE_URL: links follow the port gunicorn was given.
    env = {"SCIWEEK_BASE_URL": "", "SCIWEEK_SECRET_KEY": SECRET_KEY}
    with LiveServer(url, folder / "server", workers=2, env=env) as server:
        s.url = server.url
        yield s
    with app.app_context():
        db.engine.dispose()


def _login(page, base: str, username: str, password: str = DEFAULT_PASSWORD) -> None:
    page.goto(base + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_load_state()


AXE_RUN = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
  });
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.id} (${v.impact}): ${v.help} -- ` +
         v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
}"""


def test_no_serious_accessibility_violation_on_public_and_door_pages(browser, site):
    require_or_skip(AXE.exists(), f"{AXE} is missing")
    # axe is injected as an inline script, which the site's CSP refuses: bypass it here.
    context = browser.new_context(viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    base = site.url
    public = [
        "/", "/?view=month&month=2099-05", "/?from=2001-01-01&to=2001-12-31",
        "/?from=2099-05-18&to=2099-05-01", f"/activities/{site.outreach_id}",
        f"/t/{site.door_ticket}", f"/t/{site.door_ticket}/cancel", "/t/" + "A" * 32,
        f"/t/{site.replaced_ticket}", "/tickets/find", "/login", "/account/signup", "/no-such-page",
        "/?lang=en", f"/activities/{site.outreach_id}?lang=en", "/?lang=zh",
    ]  # fmt: skip
    code = make_self_code(SECRET_KEY, site.session_id, time.time())
    door = [
        f"/checkin/self/{code}", "/manage/checkin", f"/manage/activities/{site.door_id}/scan",
        f"/manage/activities/{site.door_id}/sessions/{site.session_id}/projector",
        f"/manage/activities/{site.door_id}/cadres",
        f"/manage/sessions/{site.session_id}/paper",
        f"/manage/activities/{site.door_id}/checkers",
    ]  # fmt: skip
    found: dict[str, list[str]] = {}
    for path in public:
        page.goto(base + path)
        page.add_script_tag(path=str(AXE))
        found[path] = page.evaluate(AXE_RUN)
    _login(page, base, "13700000001")
    for path in ("/my/registrations", "/account/calendar"):
        page.goto(base + path)
        assert "/login" not in page.url, path
        page.add_script_tag(path=str(AXE))
        found[path] = page.evaluate(AXE_RUN)
    page.click("header form button[type=submit]")  # log out
    page.wait_for_load_state()
    _login(page, base, "boss")
    for path in door:
        page.goto(base + path)
        assert "/login" not in page.url, path
        page.add_script_tag(path=str(AXE))
        found[path] = page.evaluate(AXE_RUN)
    context.close()
    assert {path: v for path, v in found.items() if v} == {}


def test_a_citizen_on_a_phone_filters_reads_the_month_and_saves_the_ticket_qr(
    browser, site, tmp_path
):
    require_or_skip(shutil.which("zbarimg") is not None, "zbarimg (zbar-tools) is not installed")
    context = browser.new_context(viewport=PHONE, accept_downloads=True)
    violations = watch_policy_violations(context)
    page = context.new_page()
    base = site.url

    # Filter by kind with the form: only upcoming activities of that kind.
    page.goto(base + "/")
    page.select_option("#kind", "outreach")
    page.click(".filters button[type=submit]")
    page.wait_for_load_state()
    titles = page.locator(".activity-card h2").all_inner_texts()
    assert titles == ["果树修剪下乡"]
    assert re.fullmatch(r"剩余名额 [0-9]+", page.locator(".activity-card .places").inner_text())

    # The month view on a phone: a day list with times, titles and places.
    page.goto(base + "/?view=month&month=2099-05")
    day_list = page.locator(".day-list")
    assert day_list.is_visible()
    text = day_list.inner_text()
    assert "2099年5月17日" in text
    assert "09:30–11:00 果树修剪下乡" in text
    assert "青山镇 · 文化礼堂" in text
    assert not page.locator("table.month .ev").first.is_visible()  # no clipped titles
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]  # nothing wider than the phone

    # Register, keep the ticket: 保存二维码 downloads a PNG that decodes to this server.
    page.goto(f"{base}/activities/{site.outreach_id}")
    page.fill("#name", "张三")
    page.fill("#phone", "138 0013 8000")
    page.click("button.primary.wide")
    page.wait_for_url("**/t/*")
    ticket_url = page.url
    image = page.locator(".qr img")
    image.wait_for()
    assert page.evaluate("img => img.naturalWidth > 0", image.element_handle())
    with page.expect_download() as info:
        page.get_by_role("link", name="保存二维码").click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    assert saved.suffix == ".png"
    decoded = subprocess.run(
        ["zbarimg", "--raw", "-q", "--nodbus", str(saved)],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert decoded == ticket_url
    assert decoded.startswith(base + "/t/")
    context.close()
    assert violations == []
