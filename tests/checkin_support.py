"""Helpers for the check-in tests: tickets, API tokens and a live gunicorn server."""

from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta

import pytest
import requests

from sciweek.checkin.services import create_api_token
from sciweek.extensions import db
from sciweek.models import Registration, utcnow
from sciweek.registration.services import RegistrationRequest, register_for_activity

from .conftest import require_or_skip
from .live_server import LiveServer  # noqa: F401 - shared with check-in tests

SNAKE = re.compile(r"[a-z]+(_[a-z]+)*")


def assert_api_error(response, status, kind=None) -> dict:
    """An /api/ error in the one vocabulary (docs/checkin_api.md, "Errors"): ``status``, JSON
    ``{"error": <snake_case kind>, "message": <non-empty text>}``; ``kind`` if given."""
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json", response.data
    body = response.get_json()
    assert SNAKE.fullmatch(body["error"]), body
    assert isinstance(body["message"], str), body
    assert body["message"].strip(), body
    if kind is not None:
        assert body["error"] == kind, body
    return body


def sessions_now(*, started: timedelta = timedelta(minutes=30)) -> list[tuple[datetime, datetime]]:
    """One two-hour session that began ``started`` ago: its check-in window is open now, so
    a door test scans within it (checkin/windows.py). For ``make.activity(sessions=...)``."""
    starts = utcnow().replace(microsecond=0) - started
    return [(starts, starts + timedelta(hours=2))]


def fire_together(url, bodies_and_headers) -> list[tuple[int, dict]]:
    """POST each (body, headers) to ``url`` from its own thread, all released at the same
    moment; (status, JSON answer) in the same order."""
    barrier = threading.Barrier(len(bodies_and_headers))
    results: list = [None] * len(bodies_and_headers)

    def fire(i, body, headers):
        with requests.Session() as http:
            barrier.wait()
            response = http.post(url, json=body, headers=headers, timeout=30)
            results[i] = (response.status_code, response.json())

    threads = [
        threading.Thread(target=fire, args=(i, body, headers))
        for i, (body, headers) in enumerate(bodies_and_headers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def issue_ticket(activity, name="张三", phone="13800138000", **kwargs):
    """Register someone and return the IssuedTicket (registration + secret), committed."""
    issued = register_for_activity(
        activity.id, RegistrationRequest(name=name, phone=phone), walk_in=True, **kwargs
    )
    db.session.commit()
    return issued


def register_person(activity, name, phone, village=None) -> Registration:
    """Register someone (living in ``village``, if given) and return the registration."""
    issued = register_for_activity(
        activity.id,
        RegistrationRequest(
            name=name,
            phone=phone,
            town_id=village.town_id if village is not None else None,
            village_id=village.id if village is not None else None,
        ),
        walk_in=True,
    )
    db.session.commit()
    return db.session.get(Registration, issued.registration_id)


def token_for(user, name="测试设备") -> str:
    _token, raw = create_api_token(user, name)
    db.session.commit()
    return raw


def bearer(raw: str) -> dict:
    return {"Authorization": f"Bearer {raw}"}


# --- every check-in API test on SQLite, and on PostgreSQL with the fast path on and off ---
# Import scan_path, backend and app_config into a test module to run it so.

SCAN_PATHS = [
    pytest.param(("sqlite", True), id="sqlite"),
    pytest.param(("postgres", True), id="postgres-fast"),
    pytest.param(("postgres", False), id="postgres-general"),
]


@pytest.fixture(params=SCAN_PATHS)
def scan_path(request) -> tuple[str, bool]:
    """(database, whether SCIWEEK_CHECKIN_FAST_PATH is on)."""
    return request.param


@pytest.fixture
def backend(scan_path, postgres_schema_url):
    if scan_path[0] == "postgres":
        require_or_skip(
            postgres_schema_url is not None,
            "PostgreSQL not configured (set SCIWEEK_TEST_POSTGRES_URL)",
        )
    return scan_path[0]


@pytest.fixture
def app_config(app_config, scan_path):
    return {**app_config, "SCIWEEK_CHECKIN_FAST_PATH": scan_path[1]}


@pytest.fixture
def fast_path(backend, scan_path) -> bool:
    """Whether scans take the fast path in this test."""
    return backend == "postgres" and scan_path[1]
