"""Session time windows: a scan or self check-in counts only from a set time before the
session's start to its end plus a grace (SCIWEEK_CHECKIN_OPENS_BEFORE_MINUTES,
SCIWEEK_CHECKIN_CLOSES_AFTER_MINUTES); outside it the answer is ``not_now`` and nothing but
the scan log is written, unless an organizer checks the person in anyway, with a reason.

Every test runs on SQLite, and on PostgreSQL with the scan fast path on and off.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime, timedelta

import pytest
from flask_babel import refresh
from sqlalchemy import func, select, update

from sciweek import create_app
from sciweek.checkin.codes import make_self_code
from sciweek.config import ConfigError
from sciweek.extensions import db
from sciweek.i18n import LOCAL_TZ, to_local
from sciweek.models import ActivitySession, CheckIn, Registration, ScanLog, ScanResult, utcnow
from sciweek.training.coverage import coverage_by_town

from .checkin_support import (  # noqa: F401 - fixtures: SQLite, PostgreSQL fast and general
    app_config,
    backend,
    bearer,
    issue_ticket,
    scan_path,
    token_for,
)
from .training_helpers import cadre


def local_day_at(days_from_now: int, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` Asia/Shanghai on the day ``days_from_now`` days from today."""
    day = to_local(utcnow()).date() + timedelta(days=days_from_now)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LOCAL_TZ)


def scan(client, token, code, activity_id, **extra):
    body = {"code": code, "activity_id": activity_id, **extra}
    return client.post("/api/v1/checkins", json=body, headers=bearer(token))


def result_of(client, token, ticket, activity) -> str:
    return scan(client, token, ticket.secret, activity.id).get_json()["result"]


def live_checkins() -> int:
    return db.session.scalar(select(func.count(CheckIn.id)).where(CheckIn.undone_at.is_(None)))


def logged_results() -> list[str]:
    return list(db.session.scalars(select(ScanLog.result).order_by(ScanLog.id)))


# --- the defects as reported -----------------------------------------------------------------


def test_a_6_december_session_is_not_checked_in_on_27_november(client, make):
    """Reported on 27 Nov: a ticket for a 6 Dec 09:30 session was accepted. Nine days ahead."""
    starts = local_day_at(9, 9, 30)
    activity = make.activity(kind="training", sessions=[(starts, starts + timedelta(hours=2))])
    token = token_for(make.user("admin"))
    ticket = issue_ticket(activity)

    response = scan(client, token, ticket.secret, activity.id)

    assert response.status_code == 200
    body = response.get_json()
    assert body["result"] == "not_now"
    assert body["checked_in_at"] is None
    assert body["checkin_id"] is None
    assert body["message"] == f"本场次 {starts.month}月{starts.day}日 09:30 开始"
    assert body["session"]["starts_at"] == starts.astimezone(utcnow().tzinfo).isoformat()
    assert body["registration"]["name"] == "张三"
    assert live_checkins() == 0
    assert logged_results() == ["not_now"]


@pytest.mark.parametrize("years", [-1, 1], ids=["a year ago", "a year ahead"])
def test_sessions_of_another_year_are_not_checked_in_and_not_counted(client, make, years):
    """Reported: the API accepted check-ins for 2025 and 2027 sessions, all counted for
    coverage."""
    town = make.town(villages=["一村"])
    person = cadre(town)
    starts = local_day_at(400 * years, 9, 30)
    activity = make.activity(
        kind="training", town=town, sessions=[(starts, starts + timedelta(hours=2))]
    )
    token = token_for(make.user("admin"))
    ticket = issue_ticket(activity, phone=person.phone)
    assert ticket.registration.cadre_id == person.id

    body = scan(client, token, ticket.secret, activity.id).get_json()

    assert body["result"] == "not_now"
    ended = starts + timedelta(hours=2)
    when = f"{ended.year}年{ended.month}月{ended.day}日 11:30"
    assert body["message"] == (
        f"本场次已于 {when} 结束"
        if years < 0
        else f"本场次 {starts.year}年{starts.month}月{starts.day}日 09:30 开始"
    )
    assert live_checkins() == 0
    report = coverage_by_town(starts.year)
    assert [(t.cadres, t.trained, t.attendances) for t in report.towns] == [(1, 0, 0)]


def test_self_check_in_for_a_session_days_ahead_is_refused(app, client, make):
    starts = local_day_at(9, 9, 30)
    activity = make.activity(kind="training", sessions=[(starts, starts + timedelta(hours=2))])
    ticket = issue_ticket(activity, phone="13800138000")
    code = make_self_code(app.config["SECRET_KEY"], activity.sessions[0].id, utcnow().timestamp())

    response = client.post(
        f"/checkin/self/{code}",
        data={"phone": "13800138000", "short_code": ticket.registration.short_code},
    )

    page = response.get_data(as_text=True)
    assert "签到成功" not in page
    assert f"本场次 {starts.month}月{starts.day}日 09:30 开始" in page
    assert live_checkins() == 0
    assert logged_results() == ["not_now"]


# --- the window's edges and settings ---------------------------------------------------------


@pytest.fixture
def door(make):
    """An organizer's activity, a checker assigned to it, their tokens, and a ticket."""
    department = make.department()
    organizer = make.user("organizer", department=department)
    checker = make.user("checker")

    class Door:
        def activity(self, starts: datetime, hours: float = 2, **fields):
            activity = make.activity(
                departments=[department],
                sessions=[(starts, starts + timedelta(hours=hours))],
                **fields,
            )
            checker.assigned_activities.append(activity)
            db.session.commit()
            return activity

    d = Door()
    d.organizer, d.checker = organizer, checker
    d.organizer_token, d.checker_token = token_for(organizer), token_for(checker)
    return d


def now_minutes(minutes: float) -> datetime:
    return utcnow().replace(microsecond=0) + timedelta(minutes=minutes)


def test_the_grace_after_the_end_counts_and_then_the_answer_says_when_it_ended(client, door):
    in_grace = door.activity(now_minutes(-120 - 25))  # ended 25 minutes ago
    over = door.activity(now_minutes(-120 - 35))  # ended 35 minutes ago
    late = issue_ticket(in_grace)
    too_late = issue_ticket(over)

    assert scan(client, door.checker_token, late.secret, in_grace.id).get_json()["result"] == "ok"
    body = scan(client, door.checker_token, too_late.secret, over.id).get_json()

    assert body["result"] == "not_now"
    ended = to_local(over.sessions[0].ends_at)
    assert body["message"] == f"本场次已于 {ended.month}月{ended.day}日 {ended:%H:%M} 结束"
    assert body["window"]["state"] == "after"
    assert (
        body["window"]["closes_at"]
        == (over.sessions[0].ends_at + timedelta(minutes=30)).isoformat()
    )
    assert live_checkins() == 1
    assert logged_results() == ["ok", "not_now"]


def test_the_window_opens_an_hour_before_the_start(client, door):
    soon = door.activity(now_minutes(55))
    later = door.activity(now_minutes(65))
    assert result_of(client, door.checker_token, issue_ticket(soon), soon) == "ok"
    body = scan(client, door.checker_token, issue_ticket(later).secret, later.id).get_json()
    assert body["result"] == "not_now"
    assert body["window"]["state"] == "before"
    assert (
        body["window"]["opens_at"] == (later.sessions[0].starts_at - timedelta(hours=1)).isoformat()
    )


def test_the_window_follows_the_settings(app, client, door):
    later = door.activity(now_minutes(90))  # outside the default hour before
    ended = door.activity(now_minutes(-180))  # ended an hour ago
    app.config["SCIWEEK_CHECKIN_OPENS_BEFORE_MINUTES"] = 120
    app.config["SCIWEEK_CHECKIN_CLOSES_AFTER_MINUTES"] = 0
    assert result_of(client, door.checker_token, issue_ticket(later), later) == "ok"
    assert result_of(client, door.checker_token, issue_ticket(ended), ended) == "not_now"
    app.config["SCIWEEK_CHECKIN_CLOSES_AFTER_MINUTES"] = 90
    again = issue_ticket(ended, phone="13900139000")
    assert scan(client, door.checker_token, again.secret, ended.id).get_json()["result"] == "ok"
    roster = client.get(f"/api/v1/activities/{ended.id}/roster", headers=bearer(door.checker_token))
    assert roster.get_json()["checkin_window"] == {
        "opens_before_minutes": 120,
        "closes_after_minutes": 90,
    }


def test_window_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SCIWEEK_CHECKIN_OPENS_BEFORE_MINUTES", "90")
    monkeypatch.setenv("SCIWEEK_CHECKIN_CLOSES_AFTER_MINUTES", "0")
    settings = create_app().config
    assert settings["SCIWEEK_CHECKIN_OPENS_BEFORE_MINUTES"] == 90
    assert settings["SCIWEEK_CHECKIN_CLOSES_AFTER_MINUTES"] == 0
    monkeypatch.delenv("SCIWEEK_CHECKIN_OPENS_BEFORE_MINUTES")
    monkeypatch.delenv("SCIWEEK_CHECKIN_CLOSES_AFTER_MINUTES")
    assert create_app().config["SCIWEEK_CHECKIN_OPENS_BEFORE_MINUTES"] == 60
    assert create_app().config["SCIWEEK_CHECKIN_CLOSES_AFTER_MINUTES"] == 30
    for bad in ("-5", "半小时", "1.5"):
        monkeypatch.setenv("SCIWEEK_CHECKIN_CLOSES_AFTER_MINUTES", bad)
        with pytest.raises(ConfigError, match="SCIWEEK_CHECKIN_CLOSES_AFTER_MINUTES"):
            create_app()


def test_a_session_in_its_grace_is_chosen_without_session_id(client, door, make):
    activity = make.activity(
        sessions=[
            (now_minutes(-130), now_minutes(-10)),  # ended ten minutes ago
            (now_minutes(240), now_minutes(360)),  # later today or tomorrow
        ],
    )
    token = token_for(make.user("admin"))
    body = scan(client, token, issue_ticket(activity).secret, activity.id).get_json()
    assert body["result"] == "ok"
    assert body["session_id"] == activity.sessions[0].id


def test_a_person_checked_in_and_scanned_after_the_window_is_already_checked_in(client, door):
    activity = door.activity(now_minutes(-60))
    ticket = issue_ticket(activity)
    first = scan(client, door.checker_token, ticket.secret, activity.id).get_json()
    db.session.execute(
        update(ActivitySession)
        .where(ActivitySession.id == activity.sessions[0].id)
        .values(starts_at=now_minutes(-300), ends_at=now_minutes(-200))
    )
    db.session.commit()
    client.application.extensions.pop("sciweek_door_caches", None)  # forget cached sessions
    again = scan(client, door.checker_token, ticket.secret, activity.id).get_json()
    assert again["result"] == "already_checked_in"
    assert again["checked_in_at"] == first["checked_in_at"]
    assert live_checkins() == 1


# --- a repeated scan, and the offline queue ----------------------------------------------------


def test_the_same_nonce_twice_outside_the_window_gives_the_same_answer(client, door):
    activity = door.activity(local_day_at(9, 9, 30))
    ticket = issue_ticket(activity)
    first = scan(client, door.checker_token, ticket.secret, activity.id, nonce="n-1")
    second = scan(client, door.checker_token, ticket.secret, activity.id, nonce="n-1")
    first, second = first.get_json(), second.get_json()
    assert second["result"] == first["result"] == "not_now"
    assert second["message"] == first["message"]
    assert second["session"] == first["session"]
    assert second["window"] == first["window"]
    assert logged_results() == ["not_now"]
    assert live_checkins() == 0


def test_an_offline_scan_is_judged_at_its_scan_time_not_at_sync(client, door):
    """The queue syncs after the session's window has closed: scans made during the session
    still count, with the device's time; one made before the window opened does not."""
    over = door.activity(now_minutes(-180))  # 13:00-15:00 when it is now 16:00: closed
    during = now_minutes(-100)
    ticket = issue_ticket(over)
    synced = scan(
        client,
        door.checker_token,
        ticket.secret,
        over.id,
        nonce="q-1",
        scanned_at=during.isoformat(),
    ).get_json()
    assert synced["result"] == "ok"
    assert synced["checked_in_at"] == during.isoformat()

    under_way = door.activity(now_minutes(-30))  # open now ...
    early = issue_ticket(under_way, phone="13900139000")
    queued_early = scan(
        client,
        door.checker_token,
        early.secret,
        under_way.id,
        nonce="q-2",
        scanned_at=now_minutes(-100).isoformat(),  # ... but not when this was scanned
    ).get_json()
    assert queued_early["result"] == "not_now"
    assert queued_early["window"]["state"] == "before"
    rows = db.session.execute(select(CheckIn.registration_id, CheckIn.checked_in_at)).all()
    assert rows == [(ticket.registration.id, during)]


# --- "仍然签到": organizers (and admins) may check in anyway, with a reason -----------------------


@pytest.mark.parametrize("who", ["organizer", "admin"])
def test_an_organizer_checks_in_anyway_and_who_and_why_are_kept(client, door, make, who):
    activity = door.activity(local_day_at(9, 9, 30))
    ticket = issue_ticket(activity)
    user = door.organizer if who == "organizer" else make.user("admin")
    token = door.organizer_token if who == "organizer" else token_for(user)
    refused = scan(client, token, ticket.secret, activity.id).get_json()
    assert refused["result"] == "not_now"

    anyway = scan(
        client, token, ticket.secret, activity.id, override_reason="  提前一周的补训，经培训科同意 "
    )

    assert anyway.status_code == 200
    assert anyway.get_json()["result"] == "ok"
    row = db.session.scalar(select(CheckIn))
    assert (row.checked_in_by_id, row.window_override_reason) == (
        user.id,
        "提前一周的补训，经培训科同意",
    )
    logs = db.session.execute(
        select(ScanLog.result, ScanLog.user_id, ScanLog.window_override_reason).order_by(ScanLog.id)
    ).all()
    assert logs == [
        ("not_now", user.id, None),
        ("ok", user.id, "提前一周的补训，经培训科同意"),
    ]


def test_a_checker_may_not_check_in_anyway(client, door):
    activity = door.activity(local_day_at(9, 9, 30))
    ticket = issue_ticket(activity)
    response = scan(client, door.checker_token, ticket.secret, activity.id, override_reason="来了")
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"
    assert "组织者" in response.get_json()["message"]
    assert live_checkins() == 0
    assert logged_results() == []


@pytest.mark.parametrize("reason", ["", "   ", "a\u0000b", "原" * 201, 5, ["理由"]])
def test_an_override_needs_a_reason_in_words(client, door, reason):
    activity = door.activity(local_day_at(9, 9, 30))
    ticket = issue_ticket(activity)
    response = scan(
        client, door.organizer_token, ticket.secret, activity.id, override_reason=reason
    )
    assert response.status_code == 400
    assert response.get_json()["field"] == "override_reason"
    assert live_checkins() == 0


def test_an_override_inside_the_window_is_an_ordinary_check_in(client, door):
    activity = door.activity(now_minutes(-30))
    ticket = issue_ticket(activity)
    body = scan(
        client, door.organizer_token, ticket.secret, activity.id, override_reason="以防万一"
    )
    assert body.get_json()["result"] == "ok"
    assert db.session.scalar(select(CheckIn.window_override_reason)) is None


# --- walk-ins and self check-in follow the same window --------------------------------------------


def test_a_walk_in_outside_the_window_registers_nobody_unless_an_organizer_insists(client, door):
    activity = door.activity(local_day_at(9, 9, 30))
    url = f"/api/v1/activities/{activity.id}/walk-ins"
    person = {"name": "王五", "phone": "13900000009"}

    refused = client.post(url, json={**person, "nonce": "w-1"}, headers=bearer(door.checker_token))
    again = client.post(url, json={**person, "nonce": "w-1"}, headers=bearer(door.checker_token))
    assert refused.get_json()["result"] == again.get_json()["result"] == "not_now"
    assert again.get_json()["message"] == refused.get_json()["message"]
    assert db.session.scalar(select(func.count(Registration.id))) == 0
    bad_phone = client.post(
        url, json={"name": "王五", "phone": "12345"}, headers=bearer(door.checker_token)
    )
    assert bad_phone.status_code == 400  # a bad phone is a bad phone at any time
    forbidden = client.post(
        url, json={**person, "override_reason": "现场补录"}, headers=bearer(door.checker_token)
    )
    assert forbidden.status_code == 403

    anyway = client.post(
        url, json={**person, "override_reason": "现场补录"}, headers=bearer(door.organizer_token)
    )
    assert anyway.get_json()["result"] == "ok"
    row = db.session.scalar(select(CheckIn))
    assert (row.method, row.window_override_reason) == ("walk_in", "现场补录")
    assert logged_results() == ["not_now", "ok"]


def test_the_self_check_in_page_says_when_the_session_is(app, client, make):
    starts = local_day_at(9, 9, 30)
    activity = make.activity(kind="training", sessions=[(starts, starts + timedelta(hours=2))])
    code = make_self_code(app.config["SECRET_KEY"], activity.sessions[0].id, utcnow().timestamp())
    page = client.get(f"/checkin/self/{code}").get_data(as_text=True)
    assert f"本场次 {starts.month}月{starts.day}日 09:30 开始" in page
    assert 'id="self-form"' not in page
    refresh()  # the fixture's app context (and Flask-Babel's cached locale) spans requests
    english = client.get(f"/checkin/self/{code}?lang=en").get_data(as_text=True)
    assert f"This session starts on {starts.day} {starts:%b} 09:30" in english


# --- the scanner page and the offline roster ------------------------------------------------


def scanner_config(client, activity) -> tuple[dict, str]:
    page = client.get(f"/manage/activities/{activity.id}/scan").get_data(as_text=True)
    return json.loads(html.unescape(re.search(r'data-config="([^"]+)"', page).group(1))), page


def test_the_scanner_offers_the_override_to_organizers_only(client, auth, door):
    starts = local_day_at(9, 9, 30)
    activity = door.activity(starts)
    auth.login(door.organizer)
    config, page = scanner_config(client, activity)
    assert config["canOverride"] is True
    assert 'id="override-form"' in page
    assert config["checkinWindow"] == {"opens_before_minutes": 60, "closes_after_minutes": 30}
    assert config["sessions"][0]["not_now"]["before"] == (
        f"本场次 {starts.month}月{starts.day}日 09:30 开始"
    )
    assert config["texts"]["not_now"] == "不在签到时间"
    # Every scan result has its words on the page.
    assert {str(result) for result in ScanResult} <= set(config["texts"])
    auth.logout()
    auth.login(door.checker)
    config, page = scanner_config(client, activity)
    assert config["canOverride"] is False
    assert 'id="override-form"' not in page
