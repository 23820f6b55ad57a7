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
from sciweek.models import CheckIn, Registration, ScanLog, utcnow

from .checkin_support import bearer, issue_ticket, sessions_now, token_for


@pytest.fixture
def training(make):
    department = make.department()
    activity = make.activity(kind="training", departments=[department], sessions=sessions_now())
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
    response.close()  # sent from a file, which stays open until the response is closed


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
    assert page.status_code == 200
    assert "volunteer7" in page.get_data(as_text=True)
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
    short_code = issue_ticket(activity, phone="13800138000").registration.short_code
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
    done = client.post(path, data={"phone": "138 0013 8000", "short_code": short_code})
    assert done.status_code == 200
    assert "签到成功" in done.get_data(as_text=True)
    row = db.session.scalar(select(CheckIn))
    assert row.method == "self"
    assert row.session_id == session.id
    again = client.post(path, data={"phone": "13800138000", "short_code": short_code})
    assert "已签到" in again.get_data(as_text=True)
    assert db.session.scalar(select(ScanLog.result).order_by(ScanLog.id.desc()).limit(1)) == (
        "already_checked_in"
    )


def test_old_screenshot_of_the_code_no_longer_works(app, client, training):
    activity = training[0]
    proof = {
        "phone": "13800138000",
        "short_code": issue_ticket(activity, phone="13800138000").registration.short_code,
    }
    session_id = activity.sessions[0].id
    still_fresh = self_code(app, session_id, seconds_ago=90)
    expired = self_code(app, session_id, seconds_ago=150)
    response = client.post(f"/checkin/self/{expired}", data=proof)
    assert response.status_code == 400
    assert "已过期" in response.get_data(as_text=True)
    assert db.session.scalar(select(CheckIn)) is None
    ok = client.post(f"/checkin/self/{still_fresh}", data=proof)
    assert ok.status_code == 200
    assert "签到成功" in ok.get_data(as_text=True)


@pytest.mark.parametrize("code", ["1.2.3", "garbage", "99999.1.AAAAAAAAAAAAAAAA", "x" * 300])
def test_forged_self_codes_are_refused(client, training, code):
    response = client.post(f"/checkin/self/{code}", data={"phone": "13800138000"})
    assert response.status_code == 400
    assert db.session.scalar(select(CheckIn)) is None


def test_unregistered_or_malformed_phone_is_a_clear_400(app, client, training):
    activity = training[0]
    short_code = issue_ticket(activity, phone="13800138000").registration.short_code
    code = self_code(app, activity.sessions[0].id)
    unknown = client.post(
        f"/checkin/self/{code}", data={"phone": "13900000000", "short_code": short_code}
    )
    assert unknown.status_code == 400
    assert "手机号与票码不符" in unknown.get_data(as_text=True)
    bad = client.post(f"/checkin/self/{code}", data={"phone": "12345", "short_code": short_code})
    assert bad.status_code == 400
    assert "手机号格式不正确" in bad.get_data(as_text=True)
    empty = client.post(f"/checkin/self/{code}", data={"phone": "", "short_code": ""})
    assert empty.status_code == 400
    assert field_errors(empty.get_data(as_text=True), "phone") == ["请填写手机号。"]
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
            client.post(
                f"/checkin/self/{code}", data={"phone": "13900000000", "short_code": "ABCDEF"}
            ).status_code
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


# --- self check-in: only with proof held by the person (no 代签 by typing a phone) ----------


def field_errors(page: str, name: str) -> list[str]:
    """The error messages shown next to the form field ``name``."""
    for block in re.findall(r'<div class="field[^"]*">(.*?)</div>', page, flags=re.S):
        if f'name="{name}"' in block:
            return re.findall(r'<p class="error"[^>]*>(.*?)</p>', block, flags=re.S)
    raise AssertionError(f"no field {name}")


def test_typing_someone_elses_phone_no_longer_checks_them_in(app, client, training):
    activity = training[0]
    issue_ticket(activity, name="张三", phone="13800138000")
    code = self_code(app, activity.sessions[0].id)
    response = client.post(f"/checkin/self/{code}", data={"phone": "13800138000"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "签到成功" not in page
    assert "张三" not in page
    assert field_errors(page, "short_code") == ["请填写票码。"]
    assert db.session.scalar(select(CheckIn)) is None


def test_device_holding_the_ticket_checks_in_with_one_tap(app, client, training):
    activity = training[0]
    ticket = issue_ticket(activity, name="欧阳娜娜", phone="13800138000")
    issue_ticket(activity, name="李四", phone="13900139000")
    code = self_code(app, activity.sessions[0].id)
    before = client.get(f"/checkin/self/{code}").get_data(as_text=True)
    assert 'name="registration_id"' not in before  # nothing held yet: phone and code

    client.get(f"/t/{ticket.secret}")  # the ticket opened on this device
    page = client.get(f"/checkin/self/{code}").get_data(as_text=True)
    assert f'name="registration_id" type="hidden" value="{ticket.registration_id}"' in page
    assert "欧阳**" in page
    assert "欧阳娜娜" not in page
    assert "李四" not in page
    done = client.post(f"/checkin/self/{code}", data={"registration_id": ticket.registration_id})
    text = done.get_data(as_text=True)
    assert done.status_code == 200
    assert "签到成功" in text
    assert "欧阳**" in text
    assert "欧阳娜娜" not in text
    row = db.session.scalar(select(CheckIn))
    assert row.registration_id == ticket.registration_id
    assert row.method == "self"


def test_registering_on_this_device_is_proof_enough(app, client, make):
    activity = make.activity(kind="training", sessions=sessions_now())
    response = client.post(
        f"/activities/{activity.id}/register", data={"name": "王五", "phone": "13700137000"}
    )
    assert response.status_code == 303
    client.get(response.headers["Location"])  # the browser lands on its ticket
    registration_id = db.session.scalar(select(Registration.id))
    code = self_code(app, activity.sessions[0].id)
    done = client.post(f"/checkin/self/{code}", data={"registration_id": registration_id})
    assert done.status_code == 200
    assert "签到成功" in done.get_data(as_text=True)
    assert "王*" in done.get_data(as_text=True)


def test_ticket_not_held_by_this_device_is_refused(app, client, training, make):
    activity = training[0]
    mine = issue_ticket(activity, name="张三", phone="13800138000")
    other = issue_ticket(activity, name="李四", phone="13900139000")
    elsewhere = issue_ticket(make.activity(kind="training"), name="王五", phone="13700137000")
    code = self_code(app, activity.sessions[0].id)
    client.get(f"/t/{mine.secret}")
    client.get(f"/t/{elsewhere.secret}")
    for registration_id in (other.registration_id, elsewhere.registration_id, "x", ""):
        refused = client.post(f"/checkin/self/{code}", data={"registration_id": registration_id})
        assert refused.status_code == 400
        assert "李四" not in refused.get_data(as_text=True)
    # A cookie edited by hand loses its signature, and with it every ticket.
    from sciweek.registration.device import COOKIE

    value = client.get_cookie(COOKIE).value
    client.set_cookie(COOKIE, value.replace(str(mine.registration_id), str(other.registration_id)))
    forged = client.post(f"/checkin/self/{code}", data={"registration_id": other.registration_id})
    assert forged.status_code == 400
    assert db.session.scalar(select(CheckIn)) is None


def test_phone_and_short_code_check_in_from_any_device(app, client, training):
    activity = training[0]
    ticket = issue_ticket(activity, name="张三", phone="13800138000")
    short_code = ticket.registration.short_code
    code = self_code(app, activity.sessions[0].id)
    done = client.post(
        f"/checkin/self/{code}", data={"phone": "138 0013 8000", "short_code": short_code.lower()}
    )
    text = done.get_data(as_text=True)
    assert done.status_code == 200
    assert "签到成功" in text
    assert "张*" in text
    assert "张三" not in text


def test_wrong_short_code_is_refused_next_to_the_field(app, client, training):
    activity = training[0]
    ticket = issue_ticket(activity, name="张三", phone="13800138000")
    other = issue_ticket(activity, name="李四", phone="13900139000")
    code = self_code(app, activity.sessions[0].id)
    wrong = "ABCDEF" if ticket.registration.short_code != "ABCDEF" else "BCDEFG"
    for phone, short_code in [
        ("13800138000", wrong),
        ("13800138000", other.registration.short_code),  # someone else's code
        ("13600136000", ticket.registration.short_code),  # not registered: same answer
    ]:
        refused = client.post(
            f"/checkin/self/{code}", data={"phone": phone, "short_code": short_code}
        )
        page = refused.get_data(as_text=True)
        assert refused.status_code == 400
        assert field_errors(page, "short_code") == [
            "手机号与票码不符。票码是电子票二维码下方的 6 位字母和数字。"
        ]
        assert "张三" not in page
        assert "李四" not in page
    malformed = client.post(
        f"/checkin/self/{code}", data={"phone": "13800138000", "short_code": "12"}
    )
    assert field_errors(malformed.get_data(as_text=True), "short_code") == [
        "票码应为 6 位字母和数字，见电子票二维码下方。"
    ]
    bad_phone = client.post(f"/checkin/self/{code}", data={"phone": "12345", "short_code": wrong})
    assert any(
        "手机号格式不正确" in e for e in field_errors(bad_phone.get_data(as_text=True), "phone")
    )
    assert db.session.scalar(select(CheckIn)) is None


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
    assert page.index("明天") < page.index("后天")
    # Sessions that are over are behind a link (tests/test_door_pages.py), newest first.
    assert "上月结束" not in page
    assert "早已结束" not in page
    past = client.get("/manage/checkin?when=past").get_data(as_text=True)
    assert past.index("上月结束") < past.index("早已结束")
