"""Fixtures: an app per test on SQLite (always) and PostgreSQL (when configured).

``SCIWEEK_TEST_POSTGRES_URL`` points at a server where tests may create and drop
their own databases. Outside CI a missing server skips the PostgreSQL half; in CI
(``CI=true``) it fails.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sciweek import create_app
from sciweek.extensions import db
from sciweek.i18n import LOCAL_TZ
from sciweek.models import (
    Activity,
    ActivitySession,
    ActivityStatus,
    Campaign,
    Department,
    Town,
    User,
    Village,
)

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("SCIWEEK_TEST_POSTGRES_URL")
DEFAULT_PASSWORD = "correct-horse-9"
# Users made by the factory below get a one-iteration hash: each scrypt hash or check costs
# ~0.1 s of CPU and the suite makes hundreds. Users the application creates (create_user,
# sign-up) keep the real method; tests/test_accounts.py checks that.
TEST_PASSWORD_HASH_METHOD = "pbkdf2:sha256:1"


def require_or_skip(available: bool, reason: str) -> None:
    """Skip a test needing a missing system part, except in CI where it must run."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def _psycopg_url(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


class PostgresServer:
    """Creates and drops throw-away databases on the test server."""

    def __init__(self, url: str):
        self.admin_url = make_url(_psycopg_url(url))
        self.engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")

    def create_database(self) -> str:
        name = f"sciweek_test_{uuid.uuid4().hex[:12]}"
        with self.engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        if not re.fullmatch(r"sciweek_test_[0-9a-f]{12}", name or ""):
            raise ValueError(f"refusing to drop {name}")
        with self.engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_server():
    if not POSTGRES_URL:
        yield None
        return
    server = PostgresServer(POSTGRES_URL)
    try:
        with server.engine.connect():
            pass
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        if IN_CI:
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
        server.engine.dispose()
        yield None
        return
    yield server
    server.engine.dispose()


@pytest.fixture(scope="session")
def postgres_schema_url(postgres_server):
    """One PostgreSQL database per test session, with the schema; emptied per test."""
    if postgres_server is None:
        yield None
        return
    url = postgres_server.create_database()
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    yield url
    postgres_server.drop_database(url)


def _empty_tables(app) -> None:
    with app.app_context():
        names = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request, postgres_schema_url):
    if request.param == "postgres":
        require_or_skip(
            postgres_schema_url is not None,
            "PostgreSQL not configured (set SCIWEEK_TEST_POSTGRES_URL)",
        )
    return request.param


@pytest.fixture
def database_url(backend, tmp_path, postgres_schema_url):
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    return postgres_schema_url


@pytest.fixture
def app_config(tmp_path, database_url):
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "SCIWEEK_BASE_URL": "https://sciweek.example.cn",
        "SERVER_NAME": None,
        # Messages stay queued for tests to look at (no broker: no in-process delivery).
        "NOTIFICATIONS_DELIVER_AFTER_COMMIT": False,
    }


@pytest.fixture
def app(backend, app_config, tmp_path, monkeypatch):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    application = create_app(app_config)
    with application.app_context():
        if backend == "sqlite":
            db.create_all()
        else:
            _empty_tables(application)
        yield application
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def local(year, month, day, hour=9, minute=0) -> datetime:
    """An aware datetime in Asia/Shanghai."""
    return datetime(year, month, day, hour, minute, tzinfo=LOCAL_TZ)


class Factory:
    """Builds model objects with sensible defaults; each call commits."""

    def __init__(self):
        self._n = 0

    def _next(self) -> int:
        self._n += 1
        return self._n

    def town(self, name=None, code=None, villages=()) -> Town:
        n = self._next()
        town = Town(name=name or f"测试镇{n}", code=code or f"town{n}")
        town.villages = [Village(name=v) for v in villages]
        db.session.add(town)
        db.session.commit()
        return town

    def department(self, name=None, code=None) -> Department:
        n = self._next()
        department = Department(name=name or f"测试部门{n}", code=code or f"dept{n}")
        db.session.add(department)
        db.session.commit()
        return department

    def campaign(self, name=None, kind="st_week", starts_on=None, ends_on=None) -> Campaign:
        from datetime import date

        n = self._next()
        campaign = Campaign(
            name=name or f"专题{n}",
            kind=kind,
            starts_on=starts_on or date(2026, 5, 16),
            ends_on=ends_on or date(2026, 5, 23),
        )
        db.session.add(campaign)
        db.session.commit()
        return campaign

    def user(self, role="admin", username=None, department=None, town=None, password=None):
        n = self._next()
        if role == "organizer" and department is None:
            department = self.department()
        if role == "coordinator" and town is None:
            town = self.town()
        user = User(
            username=username or f"{role}{n}",
            display_name=f"{role} {n}",
            role=role,
            department=department,
            town=town,
        )
        user.set_password(password or DEFAULT_PASSWORD, method=TEST_PASSWORD_HASH_METHOD)
        db.session.add(user)
        db.session.commit()
        return user

    def activity(
        self,
        title=None,
        kind="outreach",
        status=ActivityStatus.PUBLISHED.value,
        departments=None,
        town=None,
        sessions=None,
        capacity=None,
        venue="文化礼堂",
        **fields,
    ) -> Activity:
        n = self._next()
        activity = Activity(
            title=title or f"活动{n}",
            kind=kind,
            status=status,
            town=town,
            venue=venue,
            capacity=capacity,
            cancel_reason=fields.pop("cancel_reason", "天气原因" if status == "cancelled" else ""),
            **fields,
        )
        activity.departments = departments if departments is not None else [self.department()]
        if sessions is None:
            sessions = [(local(2026, 12, 10, 9), local(2026, 12, 10, 11))]
        activity.sessions = [
            ActivitySession(
                starts_at=s, ends_at=e, credit_hours=Decimal("2") if kind == "training" else None
            )
            for s, e in sessions
        ]
        db.session.add(activity)
        db.session.commit()
        return activity


@pytest.fixture
def make(app) -> Factory:
    return Factory()


class Auth:
    def __init__(self, client):
        self.client = client

    def login(self, user, password=DEFAULT_PASSWORD):
        return self.client.post("/login", data={"username": user.username, "password": password})

    def logout(self):
        return self.client.post("/logout")


@pytest.fixture
def auth(client) -> Auth:
    return Auth(client)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database_url(request, tmp_path, postgres_server):
    """A new, empty database (no schema): SQLite, then PostgreSQL when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    require_or_skip(postgres_server is not None, "PostgreSQL not configured")
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture
def live_database(empty_database_url, tmp_path, monkeypatch):
    """A fresh database with the schema, plus an app bound to it for setting up data.

    Yields (app, database_url); a live server started on the URL sees the same data.
    """
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "setup-instance"))
    application = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "TESTING": True})
    with application.app_context():
        db.create_all()
        yield application, empty_database_url
        db.session.remove()
        db.engine.dispose()
