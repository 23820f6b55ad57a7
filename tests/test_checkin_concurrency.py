"""Simultaneous scans of one ticket against a real multi-process server, on both databases.

gunicorn runs the app with several worker processes on a throw-away database (a SQLite
file, or a PostgreSQL database created for the test); threads fire scans of one ticket at
the same moment. Whatever the interleaving, exactly one check-in row may exist.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sciweek import create_app
from sciweek.extensions import db
from sciweek.models import CheckIn, ScanLog

from .checkin_support import (
    LiveServer,
    bearer,
    fire_together,
    issue_ticket,
    sessions_now,
    token_for,
)
from .conftest import Factory

DEVICES = 6
ROUNDS = 8


@pytest.fixture
def seeded(empty_database_url, tmp_path, monkeypatch):
    """Schema, an activity, devices (checker tokens) and tickets; the app for checking rows."""
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "TESTING": True})
    with app.app_context():
        db.create_all()
        make = Factory()
        activity = make.activity(capacity=None, sessions=sessions_now())
        tokens = []
        for _ in range(DEVICES):
            checker = make.user("checker")
            checker.assigned_activities.append(activity)
            db.session.commit()
            tokens.append(token_for(checker))
        tickets = [issue_ticket(activity, phone=f"1380000{n:04d}").secret for n in range(ROUNDS)]
        activity_id = activity.id
        db.session.remove()
        yield app, activity_id, tokens, tickets
        db.session.remove()
        db.engine.dispose()


def test_simultaneous_scans_of_one_ticket_give_one_checkin(seeded, tmp_path):
    app, activity_id, tokens, tickets = seeded
    with LiveServer(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "server", workers=3) as srv:
        for secret in tickets:
            body = {"code": secret, "activity_id": activity_id}
            results = fire_together(
                srv.url + "/api/v1/checkins", [(body, bearer(token)) for token in tokens]
            )
            assert all(status == 200 for status, _ in results), results
            outcomes = sorted(data["result"] for _, data in results)
            assert outcomes == ["already_checked_in"] * (DEVICES - 1) + ["ok"], outcomes
            # Everyone reports the winner's time.
            assert len({data["checked_in_at"] for _, data in results}) == 1

    with app.app_context():
        assert db.session.scalar(select(func.count(CheckIn.id))) == ROUNDS
        per_registration = db.session.execute(
            select(CheckIn.registration_id, func.count(CheckIn.id)).group_by(
                CheckIn.registration_id
            )
        ).all()
        assert all(n == 1 for _, n in per_registration)
        assert db.session.scalar(select(func.count(ScanLog.id))) == ROUNDS * DEVICES


def test_one_device_resending_a_scan_concurrently_gets_one_answer(seeded, tmp_path):
    """A flaky network makes a phone send the same scan (same nonce) several times at once."""
    app, activity_id, tokens, tickets = seeded
    with LiveServer(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "server", workers=3) as srv:
        body = {"code": tickets[0], "activity_id": activity_id, "nonce": "retry-1"}
        results = fire_together(srv.url + "/api/v1/checkins", [(body, bearer(tokens[0]))] * 6)
    assert all(status == 200 for status, _ in results), results
    assert {data["result"] for _, data in results} == {"ok"}
    with app.app_context():
        assert db.session.scalar(select(func.count(CheckIn.id))) == 1
        assert db.session.scalar(select(func.count(ScanLog.id))) == 1
