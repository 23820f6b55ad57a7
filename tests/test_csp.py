"""The strict Content-Security-Policy holds: no page has inline scripts, handlers or styles.

``script-src 'self'`` and ``style-src 'self'`` (no 'unsafe-inline') make the browser refuse
inline ``<script>`` blocks, ``on*=`` attributes, ``javascript:`` URLs, ``<style>`` blocks and
``style=`` attributes. Each refusal silently breaks a behaviour, so every template is checked
as written, and every page of the demo site as rendered, for every role.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from sqlalchemy import select

from sciweek import create_app
from sciweek.checkin.codes import make_self_code
from sciweek.demo import DEMO_PASSWORD, seed_demo
from sciweek.extensions import db
from sciweek.models import Activity, ActivitySession, utcnow

from .test_security_headers import csp_directives

ROOT = Path(__file__).resolve().parents[1]
HANDLER = re.compile(r"on[a-z]+")
DOWNLOAD = re.compile(r"\.(ics|csv|xlsx|png|svg|js|pdf)$")


class InlineCode(HTMLParser):
    """Collects what a strict policy refuses: the places a page would silently break."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        where = f"line {self.getpos()[0]} <{tag}>"
        names = {name: (value or "") for name, value in attrs}
        data_block = names.get("type", "").strip().lower() == "application/json"
        if tag == "script" and "src" not in names and not data_block:
            self.found.append(f"{where}: inline script")
        if tag == "style":
            self.found.append(f"{where}: <style> block")
        for name, value in names.items():
            if HANDLER.fullmatch(name):
                self.found.append(f"{where}: {name}= handler")
            elif name == "style":
                self.found.append(f"{where}: style= attribute")
            elif re.sub(r"\s", "", value).lower().startswith("javascript:"):
                self.found.append(f"{where}: javascript: URL in {name}")

    handle_startendtag = handle_starttag


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    parser.close()
    return parser.found


def test_the_check_finds_what_a_strict_policy_refuses():
    page = """<p style="width:1em">a</p><button onclick="go()">b</button>
    <script>alert(1)</script><script type="application/json">{"a": 1}</script>
    <script src="/static/js/forms.js"></script><a href=" JavaScript:go()">c</a>
    <style>p{}</style><form data-once data-confirm="?"></form>"""
    assert [f.split(": ", 1)[1] for f in inline_code(page)] == [
        "style= attribute",
        "onclick= handler",
        "inline script",
        "javascript: URL in href",
        "<style> block",
    ]


def test_templates_hold_no_inline_code():
    """Also the templates a crawl cannot reach (forms after a failed POST, import steps)."""
    found = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        text = re.sub(r"\{#.*?#\}", "", template.read_text(encoding="utf-8"), flags=re.S)
        found += [f"{template.relative_to(ROOT)} {f}" for f in inline_code(text)]
    assert found == []


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo data set on SQLite (the pages, not the database, are under test here)."""
    tmp = tmp_path_factory.mktemp("csp-demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCIWEEK_INSTANCE_PATH", str(tmp / "instance"))
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'demo.sqlite3'}",
                "TESTING": True,
                "WTF_CSRF_ENABLED": False,
                "RATELIMIT_ENABLED": False,
            }
        )
    with app.app_context():
        db.create_all()
        seed_demo()
        db.session.commit()
        db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()


def shape(target: str) -> str:
    """One visit per URL shape: ids become N; the month view and English are shapes too."""
    parts = urlsplit(target)
    path = re.sub(r"^/(t|checkin/self|manage/training/import)/[^/]+", r"/\1/S", parts.path)
    extra = [q for q in ("view=month", "lang=en") if q in parts.query]
    return re.sub(r"\d+", "N", path) + "".join(f"?{q}" for q in extra)


def register(client, app, phone: str) -> tuple[int, str]:
    """Register on the first activity that takes registrations: its id, the ticket's path."""
    with app.app_context():
        ids = db.session.scalars(
            select(Activity.id).where(Activity.status == "published").order_by(Activity.id)
        ).all()
    for activity_id in ids:
        response = client.post(
            f"/activities/{activity_id}/register", data={"name": "测试", "phone": phone}
        )
        if response.status_code == 303:
            return activity_id, urlsplit(response.headers["Location"]).path
    raise AssertionError("no demo activity takes registrations")


def starting_points(client, app, role: str | None) -> list[str]:
    """Log in as ``role`` and return pages to start from, some reachable only by POST."""
    starts = ["/", "/?view=month", "/?lang=en", "/no/such/page", "/login", "/tickets/find"]
    if role is None:
        activity_id, ticket = register(client, app, "13700137000")
        starts.append(ticket)
        with app.app_context():
            session = db.session.scalars(
                select(ActivitySession)
                .join(Activity)
                .where(Activity.kind == "training", Activity.status == "published")
                .order_by(ActivitySession.id)
            ).first()
            code = make_self_code(app.config["SECRET_KEY"], session.id, utcnow().timestamp())
        starts.append(f"/checkin/self/{code}")
        # A form answered with its errors.
        response = client.post(f"/activities/{activity_id}/register", data={"phone": "123"})
        assert response.status_code == 422, response.status_code
        check_page(response, "/activities/N/register (POST, errors)")
        return starts
    if role == "citizen":
        response = client.post(
            "/account/signup",
            data={"phone": "13600136000", "password": "citizen-pw-1", "confirm": "citizen-pw-1"},
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        _activity_id, ticket = register(client, app, "13600136000")
        return [*starts, ticket, "/my/registrations", "/account/calendar", "/account/signup"]
    response = client.post("/login", data={"username": role, "password": DEMO_PASSWORD})
    assert response.status_code == 302
    starts += ["/manage/", "/manage/checkin", "/manage/training/", "/account/calendar"]
    if role in ("admin", "coordinator"):
        sample = ROOT / "sciweek" / "demo_data" / "cadres_sample.xlsx"
        with sample.open("rb") as fh:
            response = client.post(
                "/manage/training/import",
                data={"file": (fh, "cadres_sample.xlsx")},
                content_type="multipart/form-data",
            )
        assert response.status_code == 302, response.get_data(as_text=True)
        starts.append(urlsplit(response.headers["Location"]).path)  # the import preview
    return starts


def check_page(response, label: str) -> None:
    assert response.status_code < 500, label
    csp = csp_directives(response)
    assert csp["script-src"] == ["'self'"], label
    assert csp["style-src"] == ["'self'"], label
    found = inline_code(response.get_data(as_text=True))
    assert found == [], f"{label}: {found}"


@pytest.mark.parametrize("role", [None, "citizen", "checker", "coordinator", "organizer", "admin"])
def test_every_page_of_the_demo_site_runs_under_the_strict_policy(demo, role):
    client = demo.test_client()
    queue = starting_points(client, demo, role)
    visited: dict[str, int] = {}
    while queue and len(visited) < 150:
        target = queue.pop(0)
        if shape(target) in visited or DOWNLOAD.search(urlsplit(target).path):
            continue
        response = client.get(target)
        visited[shape(target)] = response.status_code
        if response.status_code in (301, 302, 303):
            queue.append(response.headers["Location"])
            continue
        if response.mimetype != "text/html":
            continue
        check_page(response, f"{role or 'anonymous'} {target}")
        for href in re.findall(r'<a [^>]*href="([^"]+)"', response.get_data(as_text=True)):
            parts = urlsplit(urljoin(target, href.replace("&amp;", "&")))
            if not parts.netloc or parts.netloc == "localhost":
                queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    expected = {
        None: ["/activities/N", "/t/S", "/t/S/cancel", "/checkin/self/S", "/no/such/page"],
        "citizen": ["/my/registrations", "/account/calendar", "/t/S"],
        "checker": ["/manage/checkin", "/manage/activities/N/scan"],
        "coordinator": [
            "/manage/training/",
            "/manage/training/roster",
            "/manage/training/import/S",
            "/manage/activities/N/sessions",
        ],
        "organizer": [
            "/manage/activities/N/registrations",
            "/manage/activities/N/edit",
            "/manage/activities/N/sessions",
            "/manage/sessions/N/paper",
        ],
        "admin": [
            "/manage/training/targets",
            "/manage/activities/N/sessions/N/projector",
            "/manage/tokens",
            "/manage/training/import/S",
        ],
    }[role]
    missing = [s for s in expected if s not in visited]
    assert missing == [], sorted(visited)
    assert len(visited) >= 12, sorted(visited)
