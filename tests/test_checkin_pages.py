"""Scanner page, projector and self check-in, checker assignment (no browser)."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from sciweek import create_app
from sciweek.checkin.codes import make_self_code, read_self_code
from sciweek.extensions import db
from sciweek.models import CheckIn, ScanLog, utcnow

from .checkin_support import bearer, issue_ticket, token_for


@pytest.fixture
def training(make):
    department = make.department()
    activity = make.activity(kind="training", departments=[department])
    organizer = make.user("organizer", department=department)
    checker = make.user("checker")
    checker.assigned_activities.append(activity)
    db.session.commit()
    return activity, organizer, checker


def self_code(app, session_id, seconds_ago=0):
    return make_self_code(app.config["SECRET_KEY"], session_id, utcnow().timestamp() - seconds_ago)


# --- scanner page ------------------------------------------------------------------------


def test_scanner_page_for_assigned_checker(client, auth, training):
    activity, _organizer, checker = training
    auth.login(checker)
    page = client.get(f"/manage/activities/{activity.id}/scan")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    config = json.loads(html.unescape(re.search(r'data-config="([^"]+)"', text).group(1)))
    assert config["activityId"] == activity.id
    assert config["sessions"][0]["id"] == activity.sessions[0].id
    assert config["texts"]["offline_pending"] == "离线 — {n} 条待同步"
    assert config["canUndo"] is False
    assert "vendor/jsqr/jsQR.js" in text
    listing = client.get("/manage/checkin").get_data(as_text=True)
    assert activity.title in listing


def test_scanner_page_refuses_unassigned_and_anonymous(client, auth, training, make):
    activity = training[0]
    assert client.get(f"/manage/activities/{activity.id}/scan").status_code == 302
    auth.login(make.user("checker"))
    assert client.get(f"/manage/activities/{activity.id}/scan").status_code == 403
    assert activity.title not in client.get("/manage/checkin").get_data(as_text=True)


def test_service_worker_scope_covers_scanner_pages(client):
    response = client.get("/manage/activities/scan-sw.js")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert response.headers["Service-Worker-Allowed"] == "/manage/activities/"
    assert b"sciweek-scanner-" in response.data


# --- checker assignment -------------------------------------------------------------------


def test_organizer_assigns_and_removes_a_checker(client, auth, training, make):
    activity, organizer, _checker = training
    newcomer = make.user("checker", username="volunteer7")
    token = token_for(newcomer)
    ticket = issue_ticket(activity)
    body = {"code": ticket.secret, "activity_id": activity.id}
    assert client.post("/api/v1/checkins", json=body, headers=bearer(token)).status_code == 403

    auth.login(organizer)
    page = client.get(f"/manage/activities/{activity.id}/checkers")
    assert page.status_code == 200 and "volunteer7" in page.get_data(as_text=True)
    client.post(f"/manage/activities/{activity.id}/checkers", data={"username": "volunteer7"})
    assert client.post("/api/v1/checkins", json=body, headers=bearer(token)).status_code == 200

    refused = client.post(
        f"/manage/activities/{activity.id}/checkers", data={"username": organizer.username}
    )
    assert "没有这个签到员账号" in refused.get_data(as_text=True)

    client.post(f"/manage/activities/{activity.id}/checkers/{newcomer.id}/remove")
    assert client.post("/api/v1/checkins", json=body, headers=bearer(token)).status_code == 403


def test_only_the_activitys_organizers_assign_checkers(client, auth, training, make):
    activity, _organizer, checker = training
    auth.login(make.user("organizer"))
    assert client.get(f"/manage/activities/{activity.id}/checkers").status_code == 403
    auth.logout()
    auth.login(checker)
    assert client.get(f"/manage/activities/{activity.id}/checkers").status_code == 403


# --- self check-in -------------------------------------------------------------------------


def test_self_code_rotates_and_expires():
    key, now = "k" * 32, 1_800_000_000.0
    code = make_self_code(key, 7, now)
    assert read_self_code(key, code, now) == (7, True)
    assert read_self_code(key, code, now + 100) == (7, True)
    assert read_self_code(key, code, now + 125) == (7, False)  # a screenshot after 2 minutes
    assert make_self_code(key, 7, now + 30) != code  # a new code every 30 s
    assert read_self_code("other-key", code, now) == (None, False)
    forged = code.rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAA"
    assert read_self_code(key, forged, now) == (None, False)
    session_swapped = "8." + code.split(".", 1)[1]
    assert read_self_code(key, session_swapped, now) == (None, False)


def test_projector_gives_a_working_self_checkin_link(app, client, auth, training):
    activity, _organizer, checker = training
    session = activity.sessions[0]
    issue_ticket(activity, phone="13800138000")
    auth.login(checker)
    assert (
        client.get(f"/manage/activities/{activity.id}/sessions/{session.id}/projector").status_code
        == 200
    )
    data = client.get(
        f"/manage/activities/{activity.id}/sessions/{session.id}/self-code"
    ).get_json()
    assert data["qr"].startswith("data:image/png;base64,")
    assert data["url"].startswith("https://sciweek.example.cn/checkin/self/")
    auth.logout()

    path = data["url"].replace("https://sciweek.example.cn", "")
    assert client.get(path).status_code == 200
    done = client.post(path, data={"phone": "138 0013 8000"})
    assert done.status_code == 200
    assert "签到成功" in done.get_data(as_text=True)
    row = db.session.scalar(select(CheckIn))
    assert row.method == "self" and row.session_id == session.id
    again = client.post(path, data={"phone": "13800138000"})
    assert "已签到" in again.get_data(as_text=True)
    assert db.session.scalar(select(ScanLog.result).order_by(ScanLog.id.desc()).limit(1)) == (
        "already_checked_in"
    )


def test_old_screenshot_of_the_code_no_longer_works(app, client, training):
    activity = training[0]
    issue_ticket(activity, phone="13800138000")
    session_id = activity.sessions[0].id
    still_fresh = self_code(app, session_id, seconds_ago=90)
    expired = self_code(app, session_id, seconds_ago=150)
    response = client.post(f"/checkin/self/{expired}", data={"phone": "13800138000"})
    assert response.status_code == 400
    assert "已过期" in response.get_data(as_text=True)
    assert db.session.scalar(select(CheckIn)) is None
    ok = client.post(f"/checkin/self/{still_fresh}", data={"phone": "13800138000"})
    assert ok.status_code == 200 and "签到成功" in ok.get_data(as_text=True)


@pytest.mark.parametrize("code", ["1.2.3", "garbage", "99999.1.AAAAAAAAAAAAAAAA", "x" * 300])
def test_forged_self_codes_are_refused(client, training, code):
    response = client.post(f"/checkin/self/{code}", data={"phone": "13800138000"})
    assert response.status_code == 400
    assert db.session.scalar(select(CheckIn)) is None


def test_unregistered_or_malformed_phone_is_a_clear_400(app, client, training):
    activity = training[0]
    issue_ticket(activity, phone="13800138000")
    code = self_code(app, activity.sessions[0].id)
    unknown = client.post(f"/checkin/self/{code}", data={"phone": "13900000000"})
    assert unknown.status_code == 400
    assert "没有找到该手机号的报名" in unknown.get_data(as_text=True)
    bad = client.post(f"/checkin/self/{code}", data={"phone": "12345"})
    assert bad.status_code == 400 and "手机号格式不正确" in bad.get_data(as_text=True)
    empty = client.post(f"/checkin/self/{code}", data={"phone": ""})
    assert empty.status_code == 400
    assert db.session.scalar(select(CheckIn)) is None


def test_self_checkin_post_is_rate_limited(app_config, training):
    activity = training[0]
    session_id = activity.sessions[0].id
    db.session.close()
    limited = create_app(
        {
            **app_config,
            "RATELIMIT_ENABLED": True,
            "SCIWEEK_SELF_CHECKIN_RATE_LIMIT": "3 per minute",
        }
    )
    client = limited.test_client()
    with limited.app_context():
        code = self_code(limited, session_id)
        statuses = [
            client.post(f"/checkin/self/{code}", data={"phone": "13900000000"}).status_code
            for _ in range(4)
        ]
        assert statuses == [400, 400, 400, 429]
        db.session.remove()
        db.engine.dispose()


def test_self_codes_of_a_past_window_are_refused_even_after_some_time(app, client, training):
    activity = training[0]
    issue_ticket(activity, phone="13800138000")
    code = self_code(app, activity.sessions[0].id, seconds_ago=int(timedelta(hours=1).seconds))
    assert client.get(f"/checkin/self/{code}").status_code == 400


def test_door_list_puts_the_day_ahead_before_past_activities(client, auth, make):
    from .conftest import local

    department = make.department()
    make.activity(
        title="早已结束",
        departments=[department],
        sessions=[(local(2020, 5, 1, 9), local(2020, 5, 1, 11))],
    )
    make.activity(
        title="后天",
        departments=[department],
        sessions=[(local(2099, 5, 3, 9), local(2099, 5, 3, 11))],
    )
    make.activity(
        title="明天",
        departments=[department],
        sessions=[(local(2099, 5, 2, 9), local(2099, 5, 2, 11))],
    )
    make.activity(
        title="上月结束",
        departments=[department],
        sessions=[(local(2021, 5, 1, 9), local(2021, 5, 1, 11))],
    )
    auth.login(make.user("organizer", department=department))
    page = client.get("/manage/checkin").get_data(as_text=True)
    order = [page.index(t) for t in ("明天", "后天", "上月结束", "早已结束")]
    assert order == sorted(order)
