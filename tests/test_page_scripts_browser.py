"""The small page scripts in static/js/, in headless Chromium on the demo site.

They used to be inline code; under ``script-src 'self'`` and ``style-src 'self'`` each now
lives in a static file and reads its data (texts, widths) from data-* attributes. Every
test also fails on any Content-Security-Policy complaint the browser reports.
"""

from __future__ import annotations

import os
import secrets
from importlib.util import find_spec

import pytest
from sqlalchemy import func, select

from sciweek.demo import DEMO_PASSWORD
from sciweek.extensions import db
from sciweek.models import Activity, ActivitySession, Cadre, Registration, Town
from sciweek.training.coverage import local_year_today, year_bounds

from .browser_support import CHROMIUM, CHROMIUM_ARGS, seeded_demo_app, watch_policy_violations
from .conftest import require_or_skip
from .live_server import LiveServer


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo data set behind a live gunicorn server; yields (app, server)."""
    require_or_skip(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed")
    require_or_skip(find_spec("playwright") is not None, "Playwright for Python is not installed")
    tmp = tmp_path_factory.mktemp("scripts-demo")
    app, url = seeded_demo_app(tmp)
    with LiveServer(url, tmp / "server", workers=2) as server:
        yield app, server
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def browser(demo):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser, demo):
    """A fresh browser context; after the test, no policy violation may have been reported."""
    context = browser.new_context()
    violations = watch_policy_violations(context)
    yield context
    context.close()
    assert violations == []


def log_in(page, base: str, username: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_load_state()


def active_registration(app) -> tuple[int, int]:
    """(activity id, registration id) of a confirmed demo registration."""
    with app.app_context():
        row = db.session.execute(
            select(Registration.activity_id, Registration.id)
            .where(Registration.status == "confirmed")
            .order_by(Registration.id)
        ).first()
        db.session.remove()
    return row.activity_id, row.id


def status_of(app, registration_id: int) -> str:
    with app.app_context():
        status = db.session.get(Registration, registration_id).status
        db.session.remove()
    return status


@pytest.mark.parametrize(
    ("lang", "question"), [("zh", "确定取消此报名？"), ("en", "Cancel this registration?")]
)
def test_cancelling_a_registrant_asks_first_and_no_means_no(demo, context, lang, question):
    app, server = demo
    activity_id, registration_id = active_registration(app)
    page = context.new_page()
    log_in(page, server.url, "admin")
    url = f"{server.url}/manage/activities/{activity_id}/registrations?lang={lang}"
    page.goto(url)
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    row = page.locator("tr", has=page.locator(f"form[action$='/{registration_id}/cancel']"))
    dialogs = []

    def answer(dialog, accept: bool):
        dialogs.append((dialog.type, dialog.message))
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda d: answer(d, accept=False))
    row.locator("button[type=submit]").click()
    page.wait_for_timeout(300)
    assert dialogs == [("confirm", question)]
    assert posts == []
    assert page.url == url
    assert status_of(app, registration_id) == "confirmed"
    if lang == "en":
        return
    # Yes cancels it (and nothing else).
    page.once("dialog", lambda d: answer(d, accept=True))
    with page.expect_navigation():
        row.locator("button[type=submit]").click()
    assert len(dialogs) == 2
    assert len(posts) == 1
    assert status_of(app, registration_id) == "cancelled"


def test_copy_button_copies_the_feed_address(demo, context):
    _app, server = demo
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    page.goto(server.url + "/?kind=training")
    page.click("details.subscribe summary")
    address = page.input_value(".feed-url")
    assert address.startswith(server.url + "/calendar.ics")
    assert "kind=training" in address
    # Focusing the address selects all of it, for a long press or Ctrl+C.
    page.focus(".feed-url")
    assert page.evaluate(
        "() => { const i = document.querySelector('.feed-url');"
        " return [i.selectionStart, i.selectionEnd]; }"
    ) == [0, len(address)]
    page.evaluate("navigator.clipboard.writeText('something else')")
    button = page.locator(".copy-feed-url")
    assert button.inner_text() == "复制地址"
    button.click()
    page.wait_for_function(
        "() => !/复制地址/.test(document.querySelector('.copy-feed-url').textContent)"
    )
    assert button.inner_text() == "已复制"
    assert page.evaluate("navigator.clipboard.readText()") == address


def test_coverage_bars_have_their_widths_and_the_page_prints(demo, context):
    app, server = demo
    page = context.new_page()
    log_in(page, server.url, "admin")
    page.goto(server.url + "/manage/training/")
    bars = page.eval_on_selector_all(
        ".bar-track",
        """tracks => tracks.map(track => {
            const box = track.getBoundingClientRect();
            const fill = track.querySelector('.bar-fill');
            const target = track.querySelector('.bar-target');
            const percent = (el, edge) =>
              (el.getBoundingClientRect()[edge] - box.left) / box.width * 100;
            return {
              coverage: parseFloat(fill.dataset.coverage),
              width: percent(fill, 'right'),
              target: target ? parseFloat(target.dataset.target) : null,
              left: target ? percent(target, 'left') : null,
            };
        })""",
    )
    with app.app_context():
        towns = db.session.scalar(select(func.count(Town.id)))
        db.session.remove()
    assert len(bars) == towns
    assert any(b["coverage"] > 0 for b in bars)
    assert any(b["target"] for b in bars)
    for bar in bars:
        assert bar["width"] == pytest.approx(min(bar["coverage"], 100), abs=0.5), bar
        if bar["target"] is not None:
            # The marker's 3 px border straddles the target line.
            assert bar["left"] == pytest.approx(bar["target"], abs=1), bar
    # The year field is narrow (it was a style= attribute).
    assert page.eval_on_selector("input[name=year]", "i => i.offsetWidth") < 160
    # The print button prints.
    page.evaluate("() => { window.print = () => { window.printed = (window.printed || 0) + 1; }; }")
    page.click("button[data-print]")
    assert page.evaluate("window.printed") == 1


def unmatched_stranger(app) -> tuple[int, int, int, str]:
    """A new attendee of a demo training this year whose phone is on no roster, and a cadre
    of the roster holding no registration for it: (year, registration id, cadre id, name)."""
    with app.app_context():
        year = local_year_today()
        start, end = year_bounds(year)
        activity_id = db.session.scalar(
            select(ActivitySession.activity_id)
            .join(Activity)
            .where(Activity.kind == "training", ActivitySession.starts_at.between(start, end))
            .order_by(ActivitySession.id)
            .limit(1)
        )
        holds = select(Registration.id).where(
            Registration.cadre_id == Cadre.id, Registration.activity_id == activity_id
        )
        person = db.session.scalars(select(Cadre).where(~holds.exists()).order_by(Cadre.id)).first()
        registration = Registration(
            activity_id=activity_id,
            name="换了号码的干部",
            phone="13600009999",
            status="confirmed",
            secret_hash=secrets.token_hex(32),
            short_code="PICK01",
        )
        db.session.add(registration)
        db.session.commit()
        found = (year, registration.id, person.id, person.name)
        db.session.remove()
    return found


def test_unmatched_attendee_is_linked_by_typing_a_name(demo, context):
    app, server = demo
    year, registration_id, cadre_id, name = unmatched_stranger(app)
    page = context.new_page()
    log_in(page, server.url, "admin")
    page.goto(f"{server.url}/manage/training/unmatched?year={year}")
    cell = f'.picker[data-registration="{registration_id}"]'
    page.fill(f"{cell} input[name=q]", name)  # typing searches: no button pressed
    choice = f'{cell} .picker-results input[name=cadre_id][value="{cadre_id}"] ~ button'
    page.wait_for_selector(choice)
    assert page.url.endswith(f"unmatched?year={year}")  # answered in place, not reloaded
    assert name in page.text_content(choice)
    page.click(choice)
    page.wait_for_load_state()
    assert "已将 换了号码的干部 关联到干部" in page.text_content("body")
    with app.app_context():
        assert db.session.get(Registration, registration_id).cadre_id == cadre_id
        db.session.remove()
