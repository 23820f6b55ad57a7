"""Typing a signed paper 签到表 in afterwards: /manage/sessions/<id>/paper."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from sciweek import create_app
from sciweek.checkin.services import scan
from sciweek.extensions import db
from sciweek.i18n import to_local
from sciweek.models import CheckIn, Registration, ScanLog, utcnow
from sciweek.training.coverage import coverage_by_town

from .checkin_support import register_person as _register
from .conftest import DEFAULT_PASSWORD, Factory
from .live_server import CSRF_RE, LiveServer
from .training_helpers import cadre


def _session_training(make, organizer, *, began_ago=timedelta(days=2), town=None):
    starts = utcnow() - began_ago
    return make.activity(
        kind="training",
        town=town,
        departments=[organizer.department],
        sessions=[(starts, starts + timedelta(hours=2))],
    )


@pytest.fixture
def sheet(make, auth):
    """A training held two days ago with three registrants (one scanned at the door), and
    its organizer logged in."""
    town = make.town(villages=["东村", "西村"])
    east, west = town.villages
    organizer = make.user("organizer")
    activity = _session_training(make, organizer, town=town)
    people = {
        "zhang": _register(activity, "张三", "13800138001", west),
        "li": _register(activity, "李四", "13800138002", east),
        "wang": _register(activity, "王五", "13800138003", east),
    }
    # Scanned at the door during the session, on a phone that was offline until now.
    during = activity.sessions[0].starts_at + timedelta(minutes=30)
    scan(
        organizer,
        activity.id,
        people["wang"].short_code,
        base_url="https://x",
        session_id=activity.sessions[0].id,
        scanned_at=during.isoformat(),
    )
    db.session.commit()
    auth.login(organizer)
    return activity, activity.sessions[0], organizer, people


def _live(registration, session):
    return db.session.scalar(
        select(CheckIn).where(
            CheckIn.registration_id == registration.id,
            CheckIn.session_id == session.id,
            CheckIn.undone_at.is_(None),
        )
    )


def _paper_logs(session):
    return db.session.scalars(
        select(ScanLog).where(ScanLog.session_id == session.id, ScanLog.method == "paper")
    ).all()


def test_page_lists_the_sheet_in_its_order_with_who_is_checked_in(client, sheet):
    _activity, session, _organizer, people = sheet
    page = client.get(f"/manage/sessions/{session.id}/paper").get_data(as_text=True)
    # By village, then name: 东村 李四 (1), 东村 王五 (2), 西村 张三 (3).
    rows = re.findall(r'data-number="(\d+)" data-search="(\S+) (\S+)"', page)
    assert rows == [("1", "李四", "东村"), ("2", "王五", "东村"), ("3", "张三", "西村")]
    assert "138****8003" in page
    assert "13800138003" not in page
    wang = f'value="r{people["wang"].id}" id="present-r{people["wang"].id}" checked disabled'
    assert wang in page  # scanned at the door: shown, not for unticking here
    assert f'value="r{people["li"].id}" id="present-r{people["li"].id}">' in page
    assert "扫码" in page


def test_ticking_and_saving_once_checks_in_on_paper_at_the_session_start(client, sheet):
    _activity, session, organizer, people = sheet
    response = client.post(
        f"/manage/sessions/{session.id}/paper",
        data={"present": [f"r{people['li'].id}", f"r{people['wang'].id}"], "on_paper": ""},
        follow_redirects=True,
    )
    assert "补录签到 1 人，撤销纸质签到 0 人，1 人此前已签到" in response.get_data(as_text=True)
    li = _live(people["li"], session)
    assert li.method == "paper"
    assert li.checked_in_at == session.starts_at
    assert li.checked_in_by_id == organizer.id
    assert _live(people["wang"], session).method == "scan"  # the scan stays as it was
    assert _live(people["zhang"], session) is None
    # Every ticked line is logged: a check-in made, or one that was there already.
    logs = {(log.user_id, log.registration_id, log.result) for log in _paper_logs(session)}
    assert logs == {
        (organizer.id, people["li"].id, "ok"),
        (organizer.id, people["wang"].id, "already_checked_in"),
    }

    page = client.get(f"/manage/sessions/{session.id}/paper").get_data(as_text=True)
    assert f'name="on_paper" value="r{people["li"].id}"' in page
    assert "纸质签到表" in page


def test_unticking_undoes_a_paper_check_in_only(client, sheet):
    _activity, session, organizer, people = sheet
    url = f"/manage/sessions/{session.id}/paper"
    client.post(url, data={"present": [f"r{people['li'].id}"], "on_paper": ""})
    # Untick 李四 (seen on paper); claim 王五 was on paper too: his scan must stay.
    on_paper = f"r{people['li'].id},r{people['wang'].id}"
    response = client.post(url, data={"on_paper": on_paper}, follow_redirects=True)
    assert "撤销纸质签到 1 人" in response.get_data(as_text=True)
    assert _live(people["li"], session) is None
    undone = db.session.scalar(select(CheckIn).where(CheckIn.registration_id == people["li"].id))
    assert undone.undone_by_id == organizer.id
    assert _live(people["wang"], session).method == "scan"
    logs = db.session.execute(
        select(ScanLog.method, ScanLog.result, ScanLog.user_id)
        .where(ScanLog.registration_id == people["li"].id)
        .order_by(ScanLog.id)
    ).all()
    assert logs == [("paper", "ok", organizer.id), ("undo", "undone", organizer.id)]


def test_a_paper_check_in_the_page_did_not_show_is_not_undone(client, sheet):
    """Two people typing the same sheet: one's save does not undo the other's ticks."""
    _activity, session, _organizer, people = sheet
    url = f"/manage/sessions/{session.id}/paper"
    client.post(url, data={"present": [f"r{people['li'].id}"], "on_paper": ""})
    # A page opened before that save: 李四 unticked, and not shown as on paper.
    client.post(url, data={"present": [f"r{people['zhang'].id}"], "on_paper": ""})
    assert _live(people["li"], session).method == "paper"
    assert _live(people["zhang"], session).method == "paper"


def test_paper_entry_for_a_session_to_come_is_refused(client, make, auth):
    organizer = make.user("organizer")
    activity = _session_training(make, organizer, began_ago=-timedelta(days=1))
    person = _register(activity, "赵六", "13800138004")
    session = activity.sessions[0]
    auth.login(organizer)
    url = f"/manage/sessions/{session.id}/paper"
    assert "场次尚未开始" in client.get(url).get_data(as_text=True)
    response = client.post(url, data={"present": [f"r{person.id}"], "on_paper": ""})
    assert "场次尚未开始" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(CheckIn.id))) == 0
    assert db.session.scalar(select(func.count(ScanLog.id))) == 0


@pytest.mark.parametrize(
    ("ended_days_ago", "allowed"), [(13, True), (15, False)], ids=["13-days", "15-days"]
)
def test_paper_entry_is_allowed_for_14_days_after_the_session(
    client, make, auth, ended_days_ago, allowed
):
    organizer = make.user("organizer")
    activity = _session_training(make, organizer, began_ago=timedelta(days=ended_days_ago, hours=2))
    person = _register(activity, "赵六", "13800138004")
    auth.login(organizer)
    response = client.post(
        f"/manage/sessions/{activity.sessions[0].id}/paper",
        data={"present": [f"r{person.id}"], "on_paper": ""},
        follow_redirects=True,
    )
    assert ("超过 14 天" in response.get_data(as_text=True)) is not allowed
    assert (_live(person, activity.sessions[0]) is not None) is allowed


def test_the_entry_period_is_a_setting(app, client, make, auth):
    app.config["SCIWEEK_PAPER_ENTRY_DAYS"] = 30
    organizer = make.user("organizer")
    activity = _session_training(make, organizer, began_ago=timedelta(days=20))
    person = _register(activity, "赵六", "13800138004")
    auth.login(organizer)
    client.post(
        f"/manage/sessions/{activity.sessions[0].id}/paper",
        data={"present": [f"r{person.id}"], "on_paper": ""},
    )
    assert _live(person, activity.sessions[0]).method == "paper"


@pytest.mark.parametrize(
    "present",
    [
        ["r99999"],  # no such registration
        ["r99999999999"],  # beyond any id
        ["12"],
        ["r1\x00"],
        ["ｒ１"],
        ["c5"],  # a roster line that is not on the sheet
    ],
    ids=["unknown", "huge", "bare-number", "nul", "full-width", "cadre"],
)
def test_bad_ticks_get_a_message_and_write_nothing(client, sheet, present):
    _activity, session, _organizer, people = sheet
    response = client.post(
        f"/manage/sessions/{session.id}/paper",
        data={"present": [f"r{people['li'].id}", *present], "on_paper": ""},
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "请刷新页面后" in page or "控制字符" in page
    assert _live(people["li"], session) is None
    assert _paper_logs(session) == []


def test_another_activitys_registration_cannot_be_ticked(client, make, sheet):
    _activity, session, organizer, people = sheet
    other = make.activity(departments=[organizer.department])
    stranger = _register(other, "外人", "13800138009")
    client.post(
        f"/manage/sessions/{session.id}/paper",
        data={"present": [f"r{stranger.id}"], "on_paper": ""},
    )
    assert db.session.scalar(select(func.count(CheckIn.id)).where(CheckIn.method == "paper")) == 0


@pytest.mark.parametrize("role", ["checker", "coordinator", "citizen", "other-organizer"])
def test_only_the_activitys_managers_enter_paper_sheets(client, make, auth, role):
    organizer = make.user("organizer")
    activity = _session_training(make, organizer)
    person = _register(activity, "赵六", "13800138004")
    user = make.user("organizer" if role == "other-organizer" else role)
    if role == "checker":
        user.assigned_activities.append(activity)
        db.session.commit()
    auth.login(user)
    url = f"/manage/sessions/{activity.sessions[0].id}/paper"
    assert client.get(url).status_code == 403
    assert client.post(url, data={"present": [f"r{person.id}"]}).status_code == 403
    assert db.session.scalar(select(func.count(CheckIn.id))) == 0


def test_admin_enters_paper_sheets_and_unknown_session_is_404(client, make, auth):
    organizer = make.user("organizer")
    activity = _session_training(make, organizer)
    person = _register(activity, "赵六", "13800138004")
    auth.login(make.user("admin"))
    client.post(
        f"/manage/sessions/{activity.sessions[0].id}/paper",
        data={"present": [f"r{person.id}"], "on_paper": ""},
    )
    assert _live(person, activity.sessions[0]).method == "paper"
    assert client.get("/manage/sessions/999999/paper").status_code == 404


def test_paper_check_ins_count_in_coverage(client, make, auth):
    town = make.town(villages=["一村"])
    person = cadre(town, name="周干部")
    cadre(town)
    organizer = make.user("organizer")
    activity = _session_training(make, organizer, town=town)
    registration = _register(activity, "周干部", person.phone)
    assert registration.cadre_id == person.id
    year = to_local(activity.sessions[0].starts_at).year
    report = next(t for t in coverage_by_town(year).towns if t.town_id == town.id)
    assert report.trained == 0

    auth.login(organizer)
    client.post(
        f"/manage/sessions/{activity.sessions[0].id}/paper",
        data={"present": [f"r{registration.id}"], "on_paper": ""},
    )
    report = next(t for t in coverage_by_town(year).towns if t.town_id == town.id)
    assert (report.cadres, report.trained, report.attendances) == (2, 1, 1)
    assert report.hours == activity.sessions[0].credit_hours


def test_held_session_of_a_cancelled_training_takes_its_paper_sheet(client, make, auth):
    """The first session was held on paper, then the training was called off: the sheet is
    typed in afterwards and counts; the cancelled session takes none."""
    town = make.town(villages=["一村"])
    person = cadre(town)
    organizer = make.user("organizer")
    held, coming = utcnow() - timedelta(days=1), utcnow() + timedelta(days=6)
    activity = make.activity(
        kind="training",
        town=town,
        departments=[organizer.department],
        sessions=[(held, held + timedelta(hours=2)), (coming, coming + timedelta(hours=2))],
    )
    registration = _register(activity, "干部", person.phone)
    auth.login(organizer)
    client.post(f"/manage/activities/{activity.id}/cancel", data={"reason": "后续停课"})
    first, second = activity.sessions
    client.post(
        f"/manage/sessions/{first.id}/paper",
        data={"present": [f"r{registration.id}"], "on_paper": ""},
    )
    assert _live(registration, first).method == "paper"
    response = client.post(
        f"/manage/sessions/{second.id}/paper",
        data={"present": [f"r{registration.id}"], "on_paper": ""},
    )
    assert "该场次已取消" in response.get_data(as_text=True)
    assert _live(registration, second) is None
    year = to_local(held).year
    report = next(t for t in coverage_by_town(year).towns if t.town_id == town.id)
    assert report.trained == 1


# --- two people saving the same sheet at once, against a real multi-process server -----


@pytest.fixture
def live_sheet(empty_database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "TESTING": True})
    with app.app_context():
        db.create_all()
        make = Factory()
        organizer = make.user("organizer", username="organizer-a")
        admin = make.user("admin", username="admin-b")
        activity = _session_training(make, organizer)
        ids = [_register(activity, f"学员{n}", f"1390000{n:04d}").id for n in range(40)]
        session_id = activity.sessions[0].id
        users = [organizer.username, admin.username]
        db.session.remove()
        yield app, session_id, ids, users
        db.session.remove()
        db.engine.dispose()


def _logged_in(base_url: str, username: str) -> tuple[requests.Session, str]:
    http = requests.Session()
    token = CSRF_RE.search(http.get(base_url + "/login", timeout=30).text).group(1)
    response = http.post(
        base_url + "/login",
        data={"username": username, "password": DEFAULT_PASSWORD, "csrf_token": token},
        timeout=30,
    )
    assert response.status_code in (200, 302), response.text[:300]
    return http, token


def test_simultaneous_saves_of_one_sheet_make_one_check_in_each(live_sheet, tmp_path):
    app, session_id, ids, users = live_sheet
    url_db = app.config["SQLALCHEMY_DATABASE_URI"]
    with LiveServer(url_db, tmp_path / "server", workers=3, SCIWEEK_RATELIMIT_ENABLED="0") as srv:
        page = f"{srv.url}/manage/sessions/{session_id}/paper"
        clients = [_logged_in(srv.url, name) for name in users for _ in range(2)]
        tokens = [CSRF_RE.search(http.get(page, timeout=30).text).group(1) for http, _ in clients]
        barrier = threading.Barrier(len(clients))
        statuses = [None] * len(clients)

        def save(i):
            http, _token = clients[i]
            barrier.wait()
            response = http.post(
                page,
                data={
                    "csrf_token": tokens[i],
                    "present": [f"r{n}" for n in ids],
                    "on_paper": "",
                },
                timeout=60,
                allow_redirects=False,
            )
            statuses[i] = response.status_code

        threads = [threading.Thread(target=save, args=(i,)) for i in range(len(clients))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert statuses == [302] * len(clients), (statuses, srv.log()[-2000:])

    with app.app_context():
        per_person = db.session.execute(
            select(CheckIn.registration_id, func.count(CheckIn.id))
            .where(CheckIn.session_id == session_id, CheckIn.undone_at.is_(None))
            .group_by(CheckIn.registration_id)
        ).all()
        assert sorted(per_person) == [(n, 1) for n in sorted(ids)]
        logged = db.session.scalar(
            select(func.count(ScanLog.id)).where(ScanLog.method == "paper", ScanLog.result == "ok")
        )
        assert logged == len(ids)  # one "ok" per check-in made, whoever made it
        db.session.remove()


def test_invited_cadres_without_registration_are_on_the_sheet_and_ticked_in(client, sheet):
    """A training names its town: the town's roster cadres who never registered are lines
    of the sheet, and ticking one registers them, linked to the cadre, and checks them in."""
    activity, session, organizer, people = sheet
    town = activity.town
    zhao = cadre(town, "东村", "赵六", phone="13900139006")
    no_phone = cadre(town, "东村", "钱七")
    no_phone.phone = None  # an elderly village cadre: no mobile on the roster
    activity.roster_towns = [town]
    db.session.commit()
    page = client.get(f"/manage/sessions/{session.id}/paper").get_data(as_text=True)
    assert f'value="c{zhao.id}"' in page
    assert f'value="c{no_phone.id}"' in page
    response = client.post(
        f"/manage/sessions/{session.id}/paper",
        data={"present": [f"c{zhao.id}", f"c{no_phone.id}"], "on_paper": ""},
        follow_redirects=True,
    )
    assert "补录签到 2 人" in response.get_data(as_text=True)
    for person in (zhao, no_phone):
        [registration] = db.session.scalars(
            select(Registration).where(
                Registration.activity_id == activity.id, Registration.cadre_id == person.id
            )
        ).all()
        assert _live(registration, session).method == "paper"
    # Now registered: the next sheet lists them through their registrations, once each.
    page = client.get(f"/manage/sessions/{session.id}/paper").get_data(as_text=True)
    assert f'value="c{zhao.id}"' not in page
    names = [
        name for _n, name, _v in re.findall(r'data-number="(\d+)" data-search="(\S+) (\S+)"', page)
    ]
    assert names.count("赵六") == 1
    assert names.count("钱七") == 1
