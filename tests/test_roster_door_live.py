"""Races at a training's door for roster cadres, against a real multi-process server, on
both databases.

Each round releases at the same moment, for one cadre who holds no registration: several
door devices checking them in from the roster, the cadre registering online, and the cadre
checking themself in on their phone (phone and the ID number's last 6). Whatever the
interleaving, the database must end with one registration and one check-in for the cadre.
A cadre without a phone is raced by the door devices alone.
"""

from __future__ import annotations

import threading
import time
from datetime import date

import pytest
import requests
from sqlalchemy import func, select

from sciweek import create_app
from sciweek.checkin.codes import make_self_code
from sciweek.extensions import db
from sciweek.models import Cadre, CheckIn, Registration
from sciweek.training.periods import add_to_roster

from .checkin_support import LiveServer, bearer, token_for
from .conftest import Factory
from .live_server import csrf_session
from .roster_door_support import build_door, id_number

DEVICES = 4
PHONE_CADRES = 5
SECRET_KEY = "live-test-secret-key-0123456789abcdef"  # LiveServer's


@pytest.fixture
def seeded(empty_database_url, tmp_path, monkeypatch):
    """A training under way for 城关镇's cadres, door devices, and cadres to race for."""
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "TESTING": True})
    with app.app_context():
        db.create_all()
        make = Factory()
        door = build_door(make)
        village = door.chengguan.villages[0]
        racers = []
        for n in range(PHONE_CADRES):
            person = Cadre(
                name=f"赛跑干部{n}",
                town_id=door.chengguan.id,
                village_id=village.id,
                phone=f"1589000{n:04d}",
                id_number=id_number(f"11010519800101{n:03d}"),
                active_from=date(2020, 1, 1),
            )
            add_to_roster(person)
            racers.append(person)
        db.session.commit()
        tokens = [token_for(door.checker)]
        for _ in range(DEVICES - 1):
            checker = make.user("checker")
            checker.assigned_activities.append(door.training)
            db.session.commit()
            tokens.append(token_for(checker))
        facts = {
            "activity_id": door.training.id,
            "session_id": door.training.sessions[0].id,
            "racers": [(c.id, c.name, c.phone, c.id_number) for c in racers],
            "no_phone": door.wang.id,
        }
        db.session.remove()
        yield app, facts, tokens
        db.session.remove()
        db.engine.dispose()


def _together(jobs):
    """Run the callables at the same moment (a barrier), each in its own thread."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def run(i, job):
        barrier.wait()
        results[i] = job()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def _door_device(url, token, cadre_id, session_id):
    def job():
        response = requests.post(
            url,
            json={"cadre_id": cadre_id, "session_id": session_id},
            headers=bearer(token),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()["result"]

    return job


def _online(server_url, activity_id, name, phone):
    http, token = csrf_session(f"{server_url}/activities/{activity_id}")

    def job():
        response = http.post(
            f"{server_url}/activities/{activity_id}/register",
            data={"csrf_token": token, "name": name, "phone": phone},
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code in (303, 409), response.text[:500]
        return response.status_code

    return job


def _self(server_url, session_id, phone, id_no):
    code = make_self_code(SECRET_KEY, session_id, time.time())
    url = f"{server_url}/checkin/self/{code}"
    http, token = csrf_session(url)

    def job():
        response = http.post(
            url,
            data={"csrf_token": token, "cadre-phone": phone, "cadre-id_tail": id_no[-6:]},
            timeout=30,
        )
        assert response.status_code == 200, response.text[:500]
        return "ok" if "签到成功" in response.text else "already_checked_in"

    return job


def test_door_devices_online_registration_and_self_check_in_give_one_of_each(seeded, tmp_path):
    app, facts, tokens = seeded
    activity_id, session_id = facts["activity_id"], facts["session_id"]
    with LiveServer(
        app.config["SQLALCHEMY_DATABASE_URI"],
        tmp_path / "server",
        workers=3,
        SCIWEEK_RATELIMIT_ENABLED="0",
    ) as srv:
        url = f"{srv.url}/api/v1/activities/{activity_id}/roster-checkins"
        online_won = 0
        for cadre_id, name, phone, id_no in facts["racers"]:
            jobs = [_door_device(url, token, cadre_id, session_id) for token in tokens]
            jobs.append(_online(srv.url, activity_id, name, phone))
            jobs.append(_self(srv.url, session_id, phone, id_no))
            *door_answers, online, self_answer = _together(jobs)
            check_ins = [*door_answers, self_answer]
            assert sorted(check_ins) == ["already_checked_in"] * DEVICES + ["ok"], check_ins
            online_won += online == 303
        no_phone = _together(
            [_door_device(url, token, facts["no_phone"], session_id) for token in tokens]
        )
        assert sorted(no_phone) == ["already_checked_in"] * (DEVICES - 1) + ["ok"]

    with app.app_context():
        cadre_ids = [c[0] for c in facts["racers"]] + [facts["no_phone"]]
        per_cadre = dict(
            db.session.execute(
                select(Registration.cadre_id, func.count(Registration.id)).group_by(
                    Registration.cadre_id
                )
            ).all()
        )
        assert per_cadre == {cadre_id: 1 for cadre_id in cadre_ids}
        assert db.session.scalar(select(func.count(Registration.id))) == len(cadre_ids)
        live = db.session.execute(
            select(CheckIn.registration_id, func.count(CheckIn.id))
            .where(CheckIn.undone_at.is_(None))
            .group_by(CheckIn.registration_id)
        ).all()
        assert len(live) == len(cadre_ids)
        assert all(n == 1 for _, n in live)
        # Somebody won each race: whichever it was, the online registrant was told.
        assert 0 <= online_won <= PHONE_CADRES
