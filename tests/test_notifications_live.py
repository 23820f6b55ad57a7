"""Races on the senders, against a real multi-process server, on both databases.

* Organizers confirming broadcasts of one activity at the same moment: the hourly limit
  holds (the activity row's lock serialises the count).
* Two coordinators' sessions inviting the same town's cadres to the same training at the
  same moment: each cadre is invited once (the outbox key).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from sciweek import create_app
from sciweek.extensions import db
from sciweek.i18n import to_local
from sciweek.models import (
    Broadcast,
    InvitationBatch,
    NotificationEvent,
    OutboxMessage,
    utcnow,
)

from .conftest import TEST_PASSWORD_HASH_METHOD, Factory, local
from .live_server import CSRF_RE, LiveServer
from .test_notifications import PHONES
from .test_roster_door_live import _together
from .training_helpers import attend, cadre, training

PASSWORD = "correct-horse-9"
RACERS = 6


@pytest.fixture
def seeded(empty_database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "TESTING": True})
    with app.app_context():
        db.create_all()
        make = Factory()
        department = make.department()
        activity = make.activity(
            departments=[department],
            sessions=[(local(2027, 3, 10, 9), local(2027, 3, 10, 11))],
        )
        for n in range(3):
            attend(activity, PHONES[n], sessions=[])  # confirmed, not checked in
        town = make.town(villages=["东村"])
        for n in range(5):
            cadre(town, phone=f"1370000{n:04d}")
        soon = to_local(utcnow()).date() + timedelta(days=10)
        course = training(make, town, [(soon.year, soon.month, soon.day)])
        course.roster_towns = [town]
        users = [make.user("organizer", department=department) for _ in range(RACERS)]
        users += [make.user("coordinator", town=town) for _ in range(2)]
        for user in users:
            user.set_password(PASSWORD, method=TEST_PASSWORD_HASH_METHOD)
        db.session.commit()
        facts = {
            "activity_id": activity.id,
            "town_id": town.id,
            "training_id": course.id,
            "organizers": [u.username for u in users[:RACERS]],
            "coordinators": [u.username for u in users[RACERS:]],
        }
        db.session.remove()
        yield app, facts
        db.session.remove()
        db.engine.dispose()


def logged_in(base: str, username: str, page: str) -> tuple[requests.Session, str]:
    http = requests.Session()
    token = CSRF_RE.search(http.get(f"{base}/login", timeout=30).text).group(1)
    http.post(
        f"{base}/login",
        data={"csrf_token": token, "username": username, "password": PASSWORD},
        timeout=30,
    )
    form = http.get(f"{base}{page}", timeout=30)
    assert form.status_code == 200, form.text[:300]
    return http, CSRF_RE.search(form.text).group(1)


def test_concurrent_broadcasts_and_invitations_keep_their_limits(seeded, tmp_path):
    app, facts = seeded
    with LiveServer(
        app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "server", workers=3
    ) as server:
        page = f"/manage/activities/{facts['activity_id']}/broadcasts"
        sessions = [logged_in(server.url, name, page) for name in facts["organizers"]]

        def send(http, token, n):
            return lambda: (
                http.post(
                    f"{server.url}{page}",
                    data={"csrf_token": token, "text": f"通知{n}", "step": "send"},
                    allow_redirects=False,
                    timeout=60,
                ).status_code
            )

        codes = _together([send(h, t, n) for n, (h, t) in enumerate(sessions)])
        assert sorted(codes) == [200] * (RACERS - 2) + [302] * 2

        invite = f"/manage/training/towns/{facts['town_id']}/invitations"
        coordinators = [logged_in(server.url, name, invite) for name in facts["coordinators"]]

        def invite_all(http, token):
            return lambda: (
                http.post(
                    f"{server.url}{invite}",
                    data={"csrf_token": token, "activity_id": facts["training_id"], "step": "send"},
                    allow_redirects=False,
                    timeout=60,
                ).status_code
            )

        codes = _together([invite_all(h, t) for h, t in coordinators])
        assert 302 in codes
    with app.app_context():
        assert db.session.scalar(select(func.count(Broadcast.id))) == 2
        assert db.session.scalar(select(func.sum(Broadcast.recipients))) == 6
        invitations = db.session.scalars(
            select(OutboxMessage.recipient).where(
                OutboxMessage.event == NotificationEvent.INVITATION
            )
        ).all()
        assert sorted(invitations) == [f"1370000{n:04d}" for n in range(5)]
        assert db.session.scalar(select(func.sum(InvitationBatch.invited))) == 5
        db.session.remove()
