"""Security headers on every kind of response, cookies in production, and gunicorn's banner."""

from __future__ import annotations

import pytest
import requests

from sciweek import create_app
from sciweek.extensions import db

from .checkin_support import issue_ticket, sessions_now, token_for
from .live_server import LiveServer


def csp_directives(response) -> dict[str, list[str]]:
    policy = response.headers.get("Content-Security-Policy", "")
    directives = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def assert_protected(response, *, referrer="same-origin", camera="()"):
    """The headers every response carries, whatever its kind."""
    csp = csp_directives(response)
    assert csp["default-src"] == ["'self'"], response.headers
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert "*" not in " ".join(w for words in csp.values() for w in words)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == referrer
    permissions = dict(
        item.strip().split("=", 1) for item in response.headers["Permissions-Policy"].split(",")
    )
    assert permissions["camera"] == camera
    assert permissions["microphone"] == "()"
    assert permissions["geolocation"] == "()"


@pytest.fixture
def sample(app, make):
    activity = make.activity(kind="training", title="果树修剪", sessions=sessions_now())
    checker = make.user("checker")
    checker.assigned_activities.append(activity)
    db.session.commit()
    ticket = issue_ticket(activity)
    return activity, checker, ticket


def test_every_kind_of_response_carries_the_headers(client, auth, sample):
    activity, checker, ticket = sample
    session_id = activity.sessions[0].id
    responses = {
        "listing": client.get("/"),
        "activity page": client.get(f"/activities/{activity.id}"),
        "login form": client.get("/login"),
        "ics feed": client.get("/calendar.ics"),
        "activity ics": client.get(f"/activities/{activity.id}.ics"),
        "static css": client.get("/static/css/site.css"),
        "static js": client.get("/static/js/scanner.js"),
        "health": client.get("/healthz"),
        "404 page": client.get("/no/such/page"),
        "405 page": client.get("/logout"),
        "404 JSON": client.get("/api/v1/activities/999999/roster", headers=bearer_of(checker)),
        "401 JSON": client.post("/api/v1/checkins", json={}),
    }
    auth.login(checker)
    responses["scan service worker"] = client.get("/manage/activities/scan-sw.js")
    responses["JSON API"] = client.post(
        "/api/v1/checkins",
        json={"code": ticket.secret, "activity_id": activity.id},
        headers=bearer_of(checker),
    )
    responses["JSON self-code"] = client.get(
        f"/manage/activities/{activity.id}/sessions/{session_id}/self-code"
    )
    responses["projector"] = client.get(
        f"/manage/activities/{activity.id}/sessions/{session_id}/projector"
    )
    expected = {
        "ics feed": "text/calendar",
        "static css": "text/css",
        "JSON API": "application/json",
        "404 JSON": "application/json",
        "401 JSON": "application/json",
        "404 page": "text/html",
    }
    for kind, response in responses.items():
        response.close()  # file responses keep their file open until closed
        assert response.status_code < 500, kind
        if kind in expected:
            assert response.mimetype == expected[kind], kind
        assert_protected(response)
    assert responses["JSON API"].get_json()["result"] == "ok"
    assert responses["404 JSON"].status_code == 404
    # No HSTS outside production: plain-HTTP LANs and development must keep working.
    assert "Strict-Transport-Security" not in responses["listing"].headers


def bearer_of(user) -> dict:
    return {"Authorization": f"Bearer {token_for(user)}"}


def test_ticket_pages_send_no_referrer(client, sample):
    _activity, _checker, ticket = sample
    for path in ("", "/qr.png", "/qr.svg", "/cancel"):
        response = client.get(f"/t/{ticket.secret}{path}")
        assert response.status_code == 200, path
        assert_protected(response, referrer="no-referrer")
    assert client.get(f"/t/{ticket.secret}/qr.png").mimetype == "image/png"


def test_only_the_scanner_page_may_use_the_camera(client, auth, sample):
    activity, checker, _ticket = sample
    auth.login(checker)
    scanner = client.get(f"/manage/activities/{activity.id}/scan")
    assert scanner.status_code == 200
    assert_protected(scanner, camera="(self)")
    assert_protected(client.get("/manage/checkin"))


def test_error_page_of_a_crash_carries_the_headers(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.route("/test-crash")
    def crash():
        raise RuntimeError("boom")

    response = client.get("/test-crash")
    assert response.status_code == 500
    assert "服务器出错了" in response.get_data(as_text=True)
    assert_protected(response)


def test_csp_allows_what_the_pages_need_and_no_inline_code(client):
    csp = csp_directives(client.get("/"))
    # Scripts and styles come from static/ only (tests/test_csp.py checks every page).
    assert csp["script-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"]
    # The projector's QR code is a data: PNG; the scanner registers a same-origin worker.
    assert csp["img-src"] == ["'self'", "data:"]
    assert csp.get("worker-src", ["'self'"]) == ["'self'"]


def production_app(monkeypatch, tmp_path, app_config):
    monkeypatch.setenv("SCIWEEK_ENV", "production")
    monkeypatch.setenv("SCIWEEK_SECRET_KEY", "p" * 48)
    monkeypatch.setenv("SCIWEEK_BASE_URL", app_config["SCIWEEK_BASE_URL"])
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "prod"))
    config = {k: v for k, v in app_config.items() if k != "TESTING"}
    return create_app(config)


def test_production_sends_hsts_and_a_secure_language_cookie(
    monkeypatch, tmp_path, app_config, backend
):
    app = production_app(monkeypatch, tmp_path, app_config)
    client = app.test_client()
    with app.app_context():
        if backend == "sqlite":
            db.create_all()
        response = client.get("/?lang=en", base_url="https://kp.example.gov.cn")
        db.session.remove()
        db.engine.dispose()
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert_protected(response)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("lang="))
    attributes = [a.strip().lower() for a in cookie.split(";")]
    assert "secure" in attributes
    assert "httponly" in attributes
    assert "samesite=lax" in attributes


def test_language_cookie_not_secure_in_development(client):
    response = client.get("/?lang=en")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("lang="))
    assert "secure" not in [a.strip().lower() for a in cookie.split(";")]


def test_gunicorn_sends_no_server_banner(tmp_path):
    """README's deploy command and the live tests run gunicorn from the project folder,
    where gunicorn.conf.py replaces gunicorn's own ``Server: gunicorn`` header."""
    server = LiveServer(f"sqlite:///{tmp_path / 'banner.sqlite3'}", tmp_path / "server", workers=1)
    with server:
        for path in ("/healthz", "/static/css/site.css", "/no/such/page"):
            response = requests.get(server.url + path, timeout=10)
            assert "gunicorn" not in response.headers.get("Server", "").lower(), path
            assert response.headers.get("Server") == "sciweek", path
            assert_protected(response)


def test_every_page_renders_in_chromium_without_policy_violations(tmp_path, monkeypatch):
    """Crawl the demo site as an admin: one page of every URL shape, no CSP complaint."""
    import os
    import re
    from importlib.util import find_spec
    from urllib.parse import urljoin, urlsplit

    from .browser_support import CHROMIUM, CHROMIUM_ARGS, seeded_demo_app, watch_policy_violations
    from .conftest import require_or_skip

    require_or_skip(os.path.exists(CHROMIUM), f"{CHROMIUM} is not installed")
    require_or_skip(find_spec("playwright") is not None, "Playwright for Python is not installed")
    from playwright.sync_api import sync_playwright

    app, url = seeded_demo_app(tmp_path)
    with app.app_context():
        db.engine.dispose()

    def shape(target: str) -> str:
        """One visit per URL shape; the month view and English are shapes of their own."""
        parts = urlsplit(target)
        extra = [q for q in ("view=month", "lang=en") if q in parts.query]
        return re.sub(r"\d+", "N", parts.path) + "".join(f"?{q}" for q in extra)

    visited: dict[str, str] = {}
    with LiveServer(url, tmp_path / "server", workers=2) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context()
        violations = watch_policy_violations(context)
        page = context.new_page()
        page.goto(server.url + "/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "sciweek-demo")
        page.click("form button[type=submit]")
        page.wait_for_load_state()
        queue = ["/", "/?view=month", "/manage/", "/manage/checkin", "/?lang=en"]
        while queue and len(visited) < 80:
            target = queue.pop(0)
            path = urlsplit(target).path
            if shape(target) in visited or re.search(r"\.(ics|csv|xlsx|png|svg|js)$", path):
                continue
            # From a blank page: the previous page's scripts (the projector's refresh,
            # the scanner) are gone, and no visit is a same-document navigation, for
            # which Playwright returns no response (failed once in CI).
            page.goto("about:blank")
            response = page.goto(server.url + target)
            assert response is not None, target
            page.wait_for_timeout(150)  # let page scripts run (scanner, projector)
            visited[shape(target)] = f"{response.status} {target}"
            for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
                parts = urlsplit(urljoin(page.url, href))
                if parts.netloc == urlsplit(server.url).netloc:
                    queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
        browser.close()
    assert len(visited) >= 20, sorted(visited)
    for must in (
        "/?view=month",
        "/manage/activities/N/scan",
        "/manage/activities/N/sessions/N/projector",
        "/manage/training/",
    ):
        assert must in visited, sorted(visited)
    assert not [v for v in visited.values() if v.startswith("5")], visited
    assert violations == [], violations
