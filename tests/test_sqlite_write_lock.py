"""SQLite: only writing transactions take the database write lock (issue 9.10).

Another connection holds the write lock (an open ``BEGIN IMMEDIATE``, as a slow write
request would): pages that only read still answer at once, and requests that write wait
for the lock and then succeed (never "database is locked"), including GET pages that
write (a first visit to the personal feed page, a scanner token's first use).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.engine import make_url

from sciweek import database
from sciweek.extensions import db
from sciweek.feeds.services import issue_feed_token
from sciweek.models import Activity, ApiToken, Registration, User

from .checkin_support import bearer, issue_ticket, token_for
from .conftest import DEFAULT_PASSWORD, Factory, local
from .live_server import LiveServer, csrf_session

only_sqlite = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _path(url: str) -> str:
    return make_url(url).database


@contextmanager
def write_lock_held(path: str):
    """Another connection holding the database write lock, committing a change at the end.

    The change makes every snapshot taken meanwhile stale, so a transaction that read
    while the lock was held and then tried to write would fail (SQLITE_BUSY_SNAPSHOT).
    """
    other = sqlite3.connect(path, isolation_level=None, timeout=30)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield other
        other.execute("INSERT INTO towns (name, code) VALUES ('锁外镇', 'lock-holder')")
        other.execute("COMMIT")
    finally:
        other.close()


@pytest.fixture
def short_busy_timeout(monkeypatch):
    """A request that does wait for the lock gives up after 2 s instead of 15 s."""
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 2000)
    db.engine.dispose()


@pytest.fixture
def site(app, make, auth):
    """An activity with a registration, a feed token and a logged-in organizer."""
    activity = make.activity(capacity=5, sessions=[(local(2099, 6, 1, 9), local(2099, 6, 1, 11))])
    ticket = issue_ticket(activity)
    organizer = make.user("organizer", department=activity.departments[0])
    feed_token = issue_feed_token(organizer)
    db.session.commit()
    auth.login(organizer)
    data = {
        "activity_id": activity.id,
        "secret": ticket.secret,
        "feed_token": feed_token,
        "username": organizer.username,
    }
    db.session.remove()
    return data


@only_sqlite
def test_reading_pages_answer_while_another_connection_holds_the_write_lock(
    app, client, site, short_busy_timeout
):
    activity_id, secret = site["activity_id"], site["secret"]
    pages = [
        "/",
        f"/activities/{activity_id}",
        f"/t/{secret}",
        f"/t/{secret}/qr.svg",
        f"/t/{secret}/cancel",
        "/calendar.ics",
        f"/activities/{activity_id}.ics",
        f"/calendar/{site['feed_token']}.ics",
        "/account/calendar",
        "/manage/",
        f"/manage/activities/{activity_id}/registrations",
        "/manage/checkin",
        "/tickets/find",
        "/healthz",
    ]
    with write_lock_held(_path(app.config["SQLALCHEMY_DATABASE_URI"])):
        statuses = {page: client.get(page).status_code for page in pages}
        with app.app_context():  # a visitor of their own (Flask-Login keeps the user in g)
            login = app.test_client().post(
                "/login", data={"username": site["username"], "password": DEFAULT_PASSWORD}
            )
    assert statuses == dict.fromkeys(pages, 200)
    assert login.status_code == 302  # logging in writes nothing, so it does not wait either


@only_sqlite
def test_writes_wait_for_the_lock_then_succeed(app, site, make):
    """A registration POST, and GET pages that write, wait for the lock; none fails."""
    citizen = make.user("citizen", username="13900000001")
    checker = make.user("checker")
    checker.assigned_activities.append(db.session.get(Activity, site["activity_id"]))
    db.session.commit()
    api_token = token_for(checker)
    citizen_id = citizen.id
    db.session.remove()  # SQLite: leave no transaction open in this connection
    citizen_client = app.test_client()
    with app.app_context():  # its own app context: Flask-Login keeps the user in g
        citizen_client.post(
            "/login", data={"username": "13900000001", "password": DEFAULT_PASSWORD}
        )
    activity_id = site["activity_id"]

    def register():
        return app.test_client().post(
            f"/activities/{activity_id}/register", data={"name": "李四", "phone": "13700000002"}
        )

    def first_feed_page():  # the first visit issues the personal feed link: a write
        return citizen_client.get("/account/calendar")

    def roster_with_new_token():  # a token's first use is noted: a write
        return app.test_client().get(
            f"/api/v1/activities/{activity_id}/roster", headers=bearer(api_token)
        )

    with ThreadPoolExecutor(max_workers=3) as pool:
        with write_lock_held(_path(app.config["SQLALCHEMY_DATABASE_URI"])):
            futures = [
                pool.submit(call) for call in (register, first_feed_page, roster_with_new_token)
            ]
            time.sleep(0.5)
            assert not [f.result() for f in futures if f.done()]  # waiting for the lock
        registered, feed_page, roster = (f.result(timeout=30) for f in futures)
    assert registered.status_code == 303
    assert feed_page.status_code == 200
    assert "/calendar/" in feed_page.get_data(as_text=True)
    assert roster.status_code == 200
    assert (
        db.session.scalar(select(Registration.status).where(Registration.phone == "13700000002"))
        == "confirmed"
    )
    assert db.session.scalar(select(User.feed_token_hash).where(User.id == citizen_id)) is not None
    assert db.session.scalar(select(ApiToken.last_used_at)) is not None


@pytest.mark.parametrize("empty_database_url", ["sqlite"], indirect=True)
def test_live_server_keeps_serving_pages_while_a_write_holds_the_lock(live_database, tmp_path):
    """Four gunicorn workers: readers are not queued behind a slow writer; the writer's
    neighbours (another registration) wait their turn and succeed."""
    app, url = live_database
    make = Factory()
    activity = make.activity(capacity=5, sessions=[(local(2099, 6, 1, 9), local(2099, 6, 1, 11))])
    activity_id = activity.id
    secret = issue_ticket(activity).secret
    db.session.remove()
    db.engine.dispose()
    pages = [
        "/",
        f"/activities/{activity_id}",
        f"/t/{secret}",
        "/calendar.ics",
        f"/activities/{activity_id}.ics",
    ] * 4
    with LiveServer(url, tmp_path / "server", workers=4) as server:
        http, token = csrf_session(f"{server.url}/activities/{activity_id}")
        for page in set(pages):  # warm every worker's templates outside the measurement
            requests.get(server.url + page, timeout=30)
        held = threading.Event()
        answered_while_held: list[tuple[str, int, bool]] = []

        def read(page):
            response = requests.get(server.url + page, timeout=60)
            answered_while_held.append((page, response.status_code, held.is_set()))

        def register():
            response = http.post(
                f"{server.url}/activities/{activity_id}/register",
                data={"csrf_token": token, "name": "王五", "phone": "13600000003"},
                allow_redirects=False,
                timeout=60,
            )
            return response.status_code, held.is_set()

        with ThreadPoolExecutor(max_workers=len(pages) + 1) as pool:
            with write_lock_held(_path(url)):
                held.set()
                registration = pool.submit(register)
                list(pool.map(read, pages))
                time.sleep(0.5)
                held.clear()
            registered = registration.result(timeout=60)
        log = server.log()
    assert answered_while_held == [(p, 200, True) for p, _s, _h in answered_while_held], log[-2000:]
    assert len(answered_while_held) == len(pages)
    assert registered == (303, False), log[-2000:]  # it waited for the lock, then got in
