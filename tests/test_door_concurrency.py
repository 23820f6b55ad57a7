"""Two (or more) door devices admitting the same person over capacity at the same moment give
one admission and one check-in (issue 11, point 4), against a real multi-process server on
both databases.

gunicorn runs several worker processes on a throw-away database (a SQLite file, or a
PostgreSQL database created for the test); threads release their requests together.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sciweek import create_app
from sciweek.extensions import db
from sciweek.models import Activity, CheckIn, Registration, ScanLog

from .checkin_support import (
    LiveServer,
    bearer,
    fire_together,
    issue_ticket,
    sessions_now,
    token_for,
)
from .conftest import Factory

DEVICES = 4


@pytest.fixture
def full_fair(empty_database_url, tmp_path, monkeypatch):
    """A full fair (capacity 1, waitlist on) with one waitlisted person, a village, and
    organizer devices (one token per organizer); the app for checking rows."""
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "TESTING": True})
    with app.app_context():
        db.create_all()
        make = Factory()
        department = make.department()
        town = make.town(villages=["李家村"])
        activity = make.activity(
            departments=[department],
            town=town,
            capacity=1,
            waitlist_enabled=True,
            sessions=sessions_now(),
        )
        tokens = [token_for(make.user("organizer", department=department)) for _ in range(DEVICES)]
        issue_ticket(activity, phone="13800000001")
        waiting = issue_ticket(activity, phone="13800000002")
        ids = {
            "activity": activity.id,
            "village": town.villages[0].id,
            "waiting": waiting.registration_id,
        }
        db.session.remove()
        yield app, ids, tokens
        db.session.remove()
        db.engine.dispose()


def _rows(app, activity_id: int) -> dict:
    with app.app_context():
        activity = db.session.get(Activity, activity_id)
        rows = {
            "registrations": db.session.scalar(select(func.count(Registration.id))),
            "over_capacity": db.session.scalar(
                select(func.count(Registration.id)).where(Registration.over_capacity)
            ),
            "over_capacity_count": activity.over_capacity_count,
            "confirmed_count": activity.confirmed_count,
            "checkins": db.session.scalar(select(func.count(CheckIn.id))),
            "log": db.session.scalar(select(func.count(ScanLog.id))),
        }
        db.session.remove()
        return rows


def _outcomes(results) -> list[str]:
    assert all(status == 200 for status, _ in results), results
    return sorted(data["result"] for _, data in results)


def test_devices_admitting_one_walk_in_over_capacity_give_one(full_fair, tmp_path):
    app, ids, tokens = full_fair
    walk_ins = f"/api/v1/activities/{ids['activity']}/walk-ins"
    person = {"name": "王五", "phone": "13900000009", "over_capacity": True}
    elderly = {"name": "王大爷", "no_phone": True, "village_id": ids["village"]}
    with LiveServer(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "server", workers=3) as srv:
        # The same person from every organizer's device (each its own nonce).
        results = fire_together(
            srv.url + walk_ins,
            [({**person, "nonce": f"d{n}"}, bearer(token)) for n, token in enumerate(tokens)],
        )
        assert _outcomes(results) == ["already_checked_in"] * (DEVICES - 1) + ["ok"]
        assert len({data["registration"]["id"] for _, data in results}) == 1
        assert len({data["checkin_id"] for _, data in results}) == 1
        # A walk-in without a phone: the same name and village is the same person.
        results = fire_together(
            srv.url + walk_ins,
            [({**elderly, "over_capacity": True}, bearer(token)) for token in tokens],
        )
        assert _outcomes(results) == ["already_checked_in"] * (DEVICES - 1) + ["ok"]
    assert _rows(app, ids["activity"]) == {
        "registrations": 4,
        "over_capacity": 2,
        "over_capacity_count": 2,
        "confirmed_count": 1,
        "checkins": 2,
        "log": 2 * DEVICES,
    }


def test_one_device_resending_an_admission_gets_one_answer(full_fair, tmp_path):
    """A flaky network: the same request (same user, same nonce) arrives several times."""
    app, ids, tokens = full_fair
    walk_ins = f"/api/v1/activities/{ids['activity']}/walk-ins"
    body = {"name": "王五", "phone": "13900000009", "over_capacity": True, "nonce": "again"}
    with LiveServer(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "server", workers=3) as srv:
        results = fire_together(srv.url + walk_ins, [(body, bearer(tokens[0]))] * DEVICES)
    assert _outcomes(results) == ["ok"] * DEVICES
    assert len({data["checkin_id"] for _, data in results}) == 1
    assert _rows(app, ids["activity"]) == {
        "registrations": 3,
        "over_capacity": 1,
        "over_capacity_count": 1,
        "confirmed_count": 1,
        "checkins": 1,
        "log": 1,
    }


def test_devices_admitting_one_waitlisted_person_give_one(full_fair, tmp_path):
    app, ids, tokens = full_fair
    url = f"/api/v1/activities/{ids['activity']}/over-capacity"
    with LiveServer(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "server", workers=3) as srv:
        results = fire_together(
            srv.url + url, [({"registration_id": ids["waiting"]}, bearer(t)) for t in tokens]
        )
    assert _outcomes(results) == ["already_checked_in"] * (DEVICES - 1) + ["ok"]
    assert _rows(app, ids["activity"]) == {
        "registrations": 2,
        "over_capacity": 1,
        "over_capacity_count": 1,
        "confirmed_count": 1,
        "checkins": 1,
        "log": DEVICES,
    }
