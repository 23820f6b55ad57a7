"""``/healthz`` and ``/healthz/db``: what a load balancer (and a benchmark's ceiling) sees."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from sciweek import create_app
from sciweek.extensions import db
from tests.conftest import require_or_skip
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
