"""``/healthz`` and ``/healthz/db``: what a load balancer (and a benchmark's ceiling) sees."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from sciweek import create_app
from sciweek.extensions import db
from sciweek.models import Activity, ActivitySession, CheckIn, Department, User, utcnow
from tests.checkin_support import bearer, issue_ticket, token_for
from tests.conftest import TEST_PASSWORD_HASH_METHOD, require_or_skip
from tests.live_server import free_port


def test_healthz_db_answers_when_the_database_does(client):
    response = client.get("/healthz/db")
    assert response.status_code == 200
    assert response.data == b"ok"
    # Cheap and anonymous: no session, no cookie, never cached.
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


def _unreachable_url(backend: str, tmp_path: Path, postgres_url: str | None) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'no-such-folder' / 'db.sqlite3'}"
    # The test server's address with a port where nothing listens.
    return make_url(postgres_url).set(port=free_port()).render_as_string(hide_password=False)


def test_healthz_db_is_503_json_when_the_database_is_unreachable(
    backend, tmp_path, monkeypatch, postgres_schema_url
):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    url = _unreachable_url(backend, tmp_path, postgres_schema_url)
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url})
    response = app.test_client().get("/healthz/db")
    assert response.status_code == 503
    assert response.get_json() == {
        "error": "database_unavailable",
        "message": "数据库暂时无法连接。",
    }
    assert response.headers["Cache-Control"] == "no-store"
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def own_postgres_database(postgres_server):
    require_or_skip(postgres_server is not None, "PostgreSQL not configured")
    url = postgres_server.create_database()
    yield url
    with postgres_server.engine.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{make_url(url).database}" ALLOW_CONNECTIONS true'))
    postgres_server.drop_database(url)


def test_healthz_db_notices_the_database_going_away_after_connecting(
    own_postgres_database, postgres_server, tmp_path, monkeypatch
):
    """A pooled connection to a database that has gone is not taken for a live one."""
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": own_postgres_database})
    client = app.test_client()
    assert client.get("/healthz/db").status_code == 200  # the pool now holds a connection
    name = make_url(own_postgres_database).database
    with postgres_server.engine.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
            {"name": name},
        )
    response = client.get("/healthz/db")
    assert response.status_code == 503
    assert response.get_json()["error"] == "database_unavailable"
    with postgres_server.engine.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    assert client.get("/healthz/db").status_code == 200
    with app.app_context():
        db.engine.dispose()


def _drop_connections_of(postgres_server, url: str) -> None:
    """What a database restart does to a pool: every open connection is closed."""
    with postgres_server.engine.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": make_url(url).database},
        )


def _count_pings(app, monkeypatch) -> list:
    pings: list = []
    with app.app_context():
        dialect = db.engine.dialect
    real_ping = dialect.do_ping
    monkeypatch.setattr(dialect, "do_ping", lambda conn: pings.append(1) or real_ping(conn))
    return pings


def test_a_busy_connection_is_not_pinged_before_each_request(
    own_postgres_database, tmp_path, monkeypatch
):
    """One round trip per request, not two: the pool checks only connections left idle."""
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": own_postgres_database})
    with app.app_context():
        db.create_all()
    pings = _count_pings(app, monkeypatch)
    client = app.test_client()
    for _ in range(3):
        assert client.get("/").status_code == 200
    assert pings == []
    with app.app_context():
        db.engine.dispose()


def test_an_idle_connection_dropped_by_the_server_is_replaced_before_use(
    own_postgres_database, postgres_server, tmp_path, monkeypatch
):
    """A database restart during a quiet spell: the next page still answers."""
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": own_postgres_database,
            "SCIWEEK_DATABASE_PING_IDLE_SECONDS": 0,  # every pooled connection counts as idle
        }
    )
    with app.app_context():
        db.create_all()
    pings = _count_pings(app, monkeypatch)
    client = app.test_client()
    assert client.get("/").status_code == 200
    _drop_connections_of(postgres_server, own_postgres_database)
    assert client.get("/").status_code == 200
    assert pings  # the dead connection was found by the check, not by the page's query
    with app.app_context():
        db.engine.dispose()


def test_a_scan_on_a_connection_dropped_while_busy_is_retried_once(
    own_postgres_database, postgres_server, tmp_path, monkeypatch
):
    """The fast path's one statement meets a connection the server closed: it runs again on
    a new one, and the person is checked in exactly once."""
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": own_postgres_database})
    with app.app_context():
        db.create_all()
        now = utcnow()
        activity = Activity(
            kind="outreach",
            title="科技下乡",
            status="published",
            departments=[Department(code="d1", name="科协")],
            sessions=[ActivitySession(starts_at=now, ends_at=now + timedelta(hours=2))],
        )
        checker = User(username="door", display_name="门口", role="checker")
        checker.set_password("x" * 12, method=TEST_PASSWORD_HASH_METHOD)
        checker.assigned_activities.append(activity)
        db.session.add_all([activity, checker])
        db.session.commit()
        secret = issue_ticket(activity).secret
        headers = bearer(token_for(checker))
        activity_id = activity.id
    client = app.test_client()
    first = client.post(
        "/api/v1/checkins", json={"activity_id": activity_id, "code": "XXXXXX"}, headers=headers
    )
    assert first.status_code == 200  # the pool now holds warm connections
    _drop_connections_of(postgres_server, own_postgres_database)
    answer = client.post(
        "/api/v1/checkins",
        json={"activity_id": activity_id, "code": secret, "nonce": "n-1"},
        headers=headers,
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["result"] == "ok"
    with app.app_context():
        assert db.session.query(CheckIn).count() == 1
        db.session.remove()
        db.engine.dispose()
