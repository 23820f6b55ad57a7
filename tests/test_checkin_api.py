"""The check-in API contract: results, idempotency, auth, bad input, undo, roster, walk-ins.

Every test runs on SQLite, and on PostgreSQL with the scan fast path on and off.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from sciweek import create_app
from sciweek.extensions import db, limiter
from sciweek.models import ApiToken, CheckIn, Registration, ScanLog, utcnow
from sciweek.registration.services import cancel_registration
from sciweek.registration.tickets import ticket_url
from sciweek.tokens import hash_secret

from .checkin_support import (  # noqa: F401 - fixtures: SQLite, PostgreSQL fast and general
    app_config,
    assert_api_error,
    backend,
    bearer,
    issue_ticket,
    scan_path,
    sessions_now,
    token_for,
)
from .conftest import DEFAULT_PASSWORD

BASE = "https://sciweek.example.cn"


@pytest.fixture
def door(make):
    """An activity, an organizer of it, a checker assigned to it, and their tokens."""
    department = make.department()
    activity = make.activity(departments=[department], capacity=2, sessions=sessions_now())
    organizer = make.user("organizer", department=department)
    checker = make.user("checker")
    checker.assigned_activities.append(activity)
    db.session.commit()

    class Door:
        pass

    d = Door()
    d.activity, d.organizer, d.checker = activity, organizer, checker
    d.session_id = activity.sessions[0].id
    d.checker_token = token_for(checker)
    d.organizer_token = token_for(organizer)
    return d


def scan(client, token, code, activity_id, **extra):
    body = {"code": code, "activity_id": activity_id, **extra}
    return client.post("/api/v1/checkins", json=body, headers=bearer(token))


def checkin_rows(registration_id=None) -> int:
    stmt = select(func.count(CheckIn.id)).where(CheckIn.undone_at.is_(None))
    if registration_id is not None:
        stmt = stmt.where(CheckIn.registration_id == registration_id)
    return db.session.scalar(stmt)


def test_ticket_url_checks_in_and_second_scan_says_already(client, door):
    ticket = issue_ticket(door.activity)
    url = ticket_url(BASE, ticket.secret)

    first = scan(client, door.checker_token, url, door.activity.id)
    assert first.status_code == 200
    body = first.get_json()
    assert body["result"] == "ok"
    assert body["session_id"] == door.session_id
    assert body["registration"] == {
        "id": ticket.registration.id,
        "name": "张三",
        "phone_masked": "138****8000",
        "short_code": ticket.registration.short_code,
    }
    assert body["checked_in_at"]
    assert body["counts"] == {"checked_in": 1, "expected": 1}

    again = scan(client, door.checker_token, ticket.secret, door.activity.id).get_json()
    assert again["result"] == "already_checked_in"
    assert again["checked_in_at"] == body["checked_in_at"]
    assert checkin_rows(ticket.registration.id) == 1


def test_short_code_typed_in_lower_case_checks_in(client, door):
    ticket = issue_ticket(door.activity)
    code = ticket.registration.short_code.lower()
    body = scan(client, door.checker_token, f" {code[:3]}-{code[3:]} ", door.activity.id).get_json()
    assert body["result"] == "ok"


def test_same_nonce_twice_gives_same_answer_and_one_checkin(client, door):
    ticket = issue_ticket(door.activity)
    first = scan(client, door.checker_token, ticket.secret, door.activity.id, nonce="n-1")
    second = scan(client, door.checker_token, ticket.secret, door.activity.id, nonce="n-1")
    assert first.get_json()["result"] == "ok"
    assert second.get_json()["result"] == "ok"
    assert second.get_json()["checked_in_at"] == first.get_json()["checked_in_at"]
    assert checkin_rows() == 1
    assert db.session.scalar(select(func.count(ScanLog.id))) == 1
    # A different nonce is a new scan: already checked in.
    third = scan(client, door.checker_token, ticket.secret, door.activity.id, nonce="n-2")
    assert third.get_json()["result"] == "already_checked_in"


def test_nonces_are_per_user(client, door):
    ticket = issue_ticket(door.activity)
    a = scan(client, door.checker_token, ticket.secret, door.activity.id, nonce="same")
    b = scan(client, door.organizer_token, ticket.secret, door.activity.id, nonce="same")
    assert a.get_json()["result"] == "ok"
    assert b.get_json()["result"] == "already_checked_in"


@pytest.mark.parametrize(
    "code",
    [
        "hello",
        "",
        "https://evil.example.com/t/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "https://sciweek.example.cn/t/short",
        "https://sciweek.example.cn/activities/1",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "ZZZZZZ",
        "'; DROP TABLE checkins; --",
        "x" * 1500,
        "\u0000\u202e",
    ],
)
def test_garbage_codes_are_invalid_and_logged(client, door, code):
    issue_ticket(door.activity)
    response = scan(client, door.checker_token, code, door.activity.id)
    if code == "":
        assert response.status_code == 400
        return
    assert response.status_code == 200
    body = response.get_json()
    assert body["result"] == "invalid"
    assert body["registration"] is None
    assert checkin_rows() == 0
    log = db.session.scalar(select(ScanLog))
    assert log.result == "invalid"
    assert len(log.code) <= 40


def test_other_site_url_with_a_real_secret_is_invalid(client, door):
    ticket = issue_ticket(door.activity)
    body = scan(
        client, door.checker_token, f"https://evil.example.com/t/{ticket.secret}", door.activity.id
    ).get_json()
    assert body["result"] == "invalid"
    assert checkin_rows() == 0


def test_ticket_for_another_activity_is_wrong_activity(client, door, make):
    other = make.activity(title="另一场讲座")
    ticket = issue_ticket(other)
    body = scan(client, door.checker_token, ticket.secret, door.activity.id).get_json()
    assert body["result"] == "wrong_activity"
    assert body["registration"] is None  # not this checker's business
    assert "另一场讲座" in body["message"]
    assert checkin_rows() == 0
    # Its short code, typed, says the same as its QR code (it used to say 无效票码).
    typed = scan(client, door.checker_token, ticket.registration.short_code, door.activity.id)
    assert typed.get_json()["result"] == "wrong_activity"
    assert typed.get_json()["message"].startswith("不是本活动的票")
    assert typed.get_json()["registration"] is None
    log = db.session.scalar(select(ScanLog).order_by(ScanLog.id.desc()).limit(1))
    assert log.result == "wrong_activity"
    assert checkin_rows() == 0


def test_a_short_code_held_here_and_elsewhere_is_this_activitys(client, door, make):
    """Short codes are unique per activity only: this activity's ticket wins."""
    elsewhere = issue_ticket(make.activity(title="另一场讲座"), phone="13900000001")
    here = issue_ticket(door.activity, phone="13900000002")
    db.session.execute(
        update(Registration)
        .where(Registration.id == elsewhere.registration_id)
        .values(short_code=here.registration.short_code)
    )
    db.session.commit()
    body = scan(client, door.checker_token, here.registration.short_code, door.activity.id)
    assert body.get_json()["result"] == "ok"
    assert body.get_json()["registration"]["id"] == here.registration_id


def test_full_width_and_dashed_short_codes_check_in(client, door):
    """A Chinese keyboard types ＰＺＴ９ＣＺ; a phone turns "-" into an en dash."""
    ticket = issue_ticket(door.activity)
    code = ticket.registration.short_code
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in code)
    first = scan(client, door.checker_token, full_width, door.activity.id).get_json()
    assert first["result"] == "ok"
    dashed = f"{code[:3].lower()}\u2013{code[3:]}"
    again = scan(client, door.checker_token, dashed, door.activity.id).get_json()
    assert again["result"] == "already_checked_in"


def test_cancelled_and_waitlisted_are_refused(client, door):
    a = issue_ticket(door.activity, phone="13800000001")
    b = issue_ticket(door.activity, phone="13800000002")
    c = issue_ticket(door.activity, phone="13800000003")  # capacity 2: waitlisted
    assert c.registration.status == "waitlisted"
    cancel_registration(a.registration.id)  # c is promoted
    db.session.commit()  # (services flush; the caller commits)
    assert scan(client, door.checker_token, a.secret, door.activity.id).get_json()["result"] == (
        "cancelled"
    )
    d = issue_ticket(door.activity, phone="13800000004")
    assert scan(client, door.checker_token, d.secret, door.activity.id).get_json()["result"] == (
        "waitlisted"
    )
    assert scan(client, door.checker_token, b.secret, door.activity.id).get_json()["result"] == "ok"
    assert checkin_rows() == 1


def test_cancelled_activity_cancels_every_ticket(client, door):
    ticket = issue_ticket(door.activity)
    door.activity.status = "cancelled"
    door.activity.cancel_reason = "天气原因"
    db.session.commit()
    body = scan(client, door.checker_token, ticket.secret, door.activity.id).get_json()
    assert body["result"] == "cancelled"


def test_every_scan_is_logged_with_user_nonce_time_and_result(client, door):
    ticket = issue_ticket(door.activity)
    scan(client, door.checker_token, "garbage", door.activity.id, nonce="a")
    scan(client, door.checker_token, ticket.secret, door.activity.id, nonce="b")
    scan(client, door.checker_token, ticket.secret, door.activity.id, nonce="c")
    logs = db.session.scalars(select(ScanLog).order_by(ScanLog.id)).all()
    assert [(log.nonce, log.result) for log in logs] == [
        ("a", "invalid"),
        ("b", "ok"),
        ("c", "already_checked_in"),
    ]
    assert all(log.user_id == door.checker.id and log.recorded_at for log in logs)
    # The log never holds a ticket secret.
    assert all(ticket.secret not in log.code for log in logs)


# --- auth ---------------------------------------------------------------------------


def test_no_auth_is_401_and_bad_token_is_401(client, door):
    ticket = issue_ticket(door.activity)
    body = {"code": ticket.secret, "activity_id": door.activity.id}
    assert client.post("/api/v1/checkins", json=body).status_code == 401
    bad = client.post("/api/v1/checkins", json=body, headers=bearer("swk_nope"))
    assert_api_error(bad, 401, "unauthorized")
    basic = client.post("/api/v1/checkins", json=body, headers={"Authorization": "Basic eDp5"})
    assert basic.status_code == 401
    assert checkin_rows() == 0


def test_a_door_behind_one_address_is_not_held_by_a_per_address_limit(
    app_config,  # noqa: F811
    door,
    monkeypatch,
):
    """A door's phones usually share one address (the venue's Wi-Fi): scans pass no
    per-address limit, even a site-wide one, while other URLs keep it."""
    tickets = [issue_ticket(door.activity, phone=f"1380013801{n}") for n in range(2)]
    token, activity_id = door.checker_token, door.activity.id
    db.session.close()  # SQLite: release the write lock before the second app writes
    # The site-wide limit stays on the module's one Limiter: undone after the test.
    monkeypatch.setattr(limiter.limit_manager, "_application_limits", [])
    limited = create_app(
        {
            **app_config,
            "RATELIMIT_ENABLED": True,
            "RATELIMIT_STORAGE_URI": "memory://",
            "RATELIMIT_APPLICATION": "2 per minute",
        }
    )
    client = limited.test_client()
    with limited.app_context():
        try:
            answers = [scan(client, token, t.secret, activity_id) for t in [*tickets, tickets[0]]]
            healthz = [client.get("/healthz").status_code for _ in range(3)]
        finally:
            db.session.remove()
            db.engine.dispose()
    assert [(a.status_code, a.get_json().get("result")) for a in answers] == [
        (200, "ok"),
        (200, "ok"),
        (200, "already_checked_in"),
    ]
    assert healthz == [200, 200, 429]


def test_revoked_token_and_disabled_user_are_401(client, door):
    ticket = issue_ticket(door.activity)
    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == door.checker.id))
    token.revoked_at = utcnow()
    db.session.commit()
    assert scan(client, door.checker_token, ticket.secret, door.activity.id).status_code == 401
    door.organizer.is_enabled = False
    db.session.commit()
    assert scan(client, door.organizer_token, ticket.secret, door.activity.id).status_code == 401


def test_unassigned_checker_and_other_organizer_get_403(client, door, make):
    ticket = issue_ticket(door.activity)
    stranger = token_for(make.user("checker"))
    other_org = token_for(make.user("organizer"))
    coordinator = token_for(make.user("coordinator"))
    for token in (stranger, other_org, coordinator):
        assert_api_error(scan(client, token, ticket.secret, door.activity.id), 403)
    assert checkin_rows() == 0
    assert (
        client.get(
            f"/api/v1/activities/{door.activity.id}/roster", headers=bearer(stranger)
        ).status_code
        == 403
    )


def test_unknown_activity_is_404(client, door):
    response = scan(client, door.checker_token, "ABCDEF", 999999)
    assert response.status_code == 404
    assert response.get_json()["message"]


def test_session_cookie_auth_needs_csrf_header(app_config, door):  # noqa: F811
    """Logged-in pages use the API with their session cookie and the X-CSRFToken header."""
    ticket = issue_ticket(door.activity)
    body = {"code": ticket.secret, "activity_id": door.activity.id}
    username, organizer_token = door.checker.username, door.organizer_token
    db.session.close()  # SQLite: release the write lock before the second app writes
    csrf_app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    client = csrf_app.test_client()
    with csrf_app.app_context():
        page = client.get("/login").get_data(as_text=True)
        csrf_token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        client.post(
            "/login",
            data={"username": username, "password": DEFAULT_PASSWORD, "csrf_token": csrf_token},
        )
        assert_api_error(client.post("/api/v1/checkins", json=body), 400, "csrf")
        ok = client.post("/api/v1/checkins", json=body, headers={"X-CSRFToken": csrf_token})
        assert ok.status_code == 200
        assert ok.get_json()["result"] == "ok"
        # Bearer requests need no CSRF token even with CSRF protection on.
        again = client.post("/api/v1/checkins", json=body, headers=bearer(organizer_token))
        assert again.get_json()["result"] == "already_checked_in"
        db.session.remove()
        db.engine.dispose()


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "[1, 2]",
        '{"code": 5, "activity_id": 1}',
        '{"code": "ABCDEF", "activity_id": "1"}',
        '{"code": "ABCDEF", "activity_id": true}',
        '{"code": "ABCDEF", "activity_id": 1.5}',
        '{"code": "ABCDEF", "activity_id": -3}',
        '{"code": "ABCDEF", "activity_id": 99999999999999999999}',
        '{"code": "ABCDEF"}',
        '{"code": "ABCDEF", "activity_id": ACT, "session_id": "x"}',
        '{"code": "ABCDEF", "activity_id": ACT, "nonce": 12}',
        '{"code": "ABCDEF", "activity_id": ACT, "nonce": "a\\u0000b"}',
        '{"code": "ABCDEF", "activity_id": ACT, "nonce": "' + "n" * 65 + '"}',
        '{"code": "ABCDEF", "activity_id": ACT, "scanned_at": "yesterday"}',
        '{"code": "ABCDEF", "activity_id": ACT, "scanned_at": 12}',
        '{"code": "ABCDEF", "activity_id": ACT, "scanned_at": "2099-01-01T00:00:00Z"}',
        '{"code": "ABCDEF", "activity_id": ACT, "scanned_at": "2001-01-01T00:00:00Z"}',
        '{"code": "ABCDEF", "activity_id": ACT, "session_id": 999999}',
    ],
)
def test_malformed_requests_are_400_with_a_message(client, door, payload):
    data = payload.replace("ACT", str(door.activity.id))
    response = client.post(
        "/api/v1/checkins",
        data=data,
        headers={**bearer(door.checker_token), "Content-Type": "application/json"},
    )
    assert_api_error(response, 400)
    assert checkin_rows() == 0


def test_oversized_body_is_413_json(client, door):
    body = {"code": "A" * 5000, "activity_id": door.activity.id}
    response = client.post("/api/v1/checkins", json=body, headers=bearer(door.checker_token))
    assert_api_error(response, 413)


def test_ambiguous_session_is_400_listing_sessions(client, make):
    # Two sessions whose check-in windows are both open (and neither has ended).
    now = utcnow().replace(microsecond=0)
    activity = make.activity(
        kind="training",
        sessions=[
            (now - timedelta(minutes=30), now + timedelta(hours=1)),
            (now + timedelta(minutes=30), now + timedelta(hours=2)),
        ],
    )
    token = token_for(make.user("admin"))
    ticket = issue_ticket(activity)
    response = scan(client, token, ticket.secret, activity.id)
    assert response.status_code == 400
    assert [s["id"] for s in response.get_json()["sessions"]] == [s.id for s in activity.sessions]
    chosen = scan(client, token, ticket.secret, activity.id, session_id=activity.sessions[1].id)
    assert chosen.get_json()["result"] == "ok"
    assert chosen.get_json()["session_id"] == activity.sessions[1].id
    # The other session is a separate check-in.
    first = scan(client, token, ticket.secret, activity.id, session_id=activity.sessions[0].id)
    assert first.get_json()["result"] == "ok"


def test_session_under_way_is_chosen_without_session_id(client, make):
    now = utcnow()
    activity = make.activity(
        kind="training",
        sessions=[
            (now - timedelta(hours=1), now + timedelta(hours=1)),
            (now + timedelta(days=1), now + timedelta(days=1, hours=2)),
        ],
    )
    token = token_for(make.user("admin"))
    ticket = issue_ticket(activity)
    body = scan(client, token, ticket.secret, activity.id).get_json()
    assert body["session_id"] == activity.sessions[0].id


# --- offline scans ----------------------------------------------------------------------


def test_offline_scans_keep_device_times_and_report_conflicts(client, door):
    """One ticket scanned on two offline devices: one check-in, both scans in the log."""
    ticket = issue_ticket(door.activity)
    first_time = (utcnow() - timedelta(minutes=30)).replace(microsecond=0)
    second_time = first_time + timedelta(minutes=3)
    a = scan(
        client,
        door.checker_token,
        ticket.secret,
        door.activity.id,
        nonce="dev-a-1",
        scanned_at=first_time.isoformat(),
    )
    b = scan(
        client,
        door.organizer_token,
        ticket.secret,
        door.activity.id,
        nonce="dev-b-1",
        scanned_at=second_time.isoformat().replace("+00:00", "Z"),
    )
    a, b = a.get_json(), b.get_json()
    assert a["result"] == "ok"
    assert a["conflict"] is False
    assert a["checked_in_at"].startswith(first_time.isoformat()[:19])
    assert b["result"] == "already_checked_in"
    assert b["conflict"] is True
    assert b["checked_in_at"] == a["checked_in_at"]
    logs = db.session.scalars(select(ScanLog).order_by(ScanLog.id)).all()
    assert [(log.result, log.scanned_at) for log in logs] == [
        ("ok", first_time),
        ("already_checked_in", second_time),
    ]
    assert logs[1].checked_in_at == first_time
    assert checkin_rows() == 1
    row = db.session.scalar(select(CheckIn))
    assert row.checked_in_at == first_time
    assert row.recorded_at > first_time


# --- undo ---------------------------------------------------------------------------------


def test_organizer_undoes_a_checkin_and_it_is_recorded(client, door):
    ticket = issue_ticket(door.activity)
    body = scan(client, door.checker_token, ticket.secret, door.activity.id).get_json()
    url = f"/api/v1/checkins/{body['checkin_id']}/undo"
    assert client.post(url, headers=bearer(door.checker_token)).status_code == 403
    undone = client.post(url, headers=bearer(door.organizer_token))
    assert undone.status_code == 200
    assert undone.get_json()["result"] == "undone"
    row = db.session.get(CheckIn, body["checkin_id"])
    db.session.refresh(row)
    assert row.undone_at is not None
    assert row.undone_by_id == door.organizer.id
    log = db.session.scalar(select(ScanLog).where(ScanLog.result == "undone"))
    assert log.user_id == door.organizer.id
    assert log.checkin_id == row.id
    assert client.post(url, headers=bearer(door.organizer_token)).status_code == 400
    # The person can be checked in again afterwards.
    again = scan(client, door.checker_token, ticket.secret, door.activity.id).get_json()
    assert again["result"] == "ok"
    assert again["checkin_id"] != body["checkin_id"]
    assert (
        client.post(
            "/api/v1/checkins/999999/undo", headers=bearer(door.organizer_token)
        ).status_code
        == 404
    )


# --- roster and walk-ins ------------------------------------------------------------------


def test_roster_has_hashes_never_secrets(client, door):
    a = issue_ticket(door.activity, phone="13800000001")
    issue_ticket(door.activity, name="李四", phone="13900000002")
    scan(client, door.checker_token, a.secret, door.activity.id)
    response = client.get(
        f"/api/v1/activities/{door.activity.id}/roster", headers=bearer(door.checker_token)
    )
    assert response.status_code == 200
    assert a.secret not in response.get_data(as_text=True)
    data = response.get_json()
    assert data["sessions"][0]["id"] == door.session_id
    first, second = data["registrations"]
    assert first["secret_sha256"] == hash_secret(a.secret)
    assert first["phone_masked"] == "138****0001"
    assert first["status"] == "confirmed"
    assert list(first["checked_in"]) == [str(door.session_id)]
    assert second["name"] == "李四"
    assert second["checked_in"] == {}
    assert client.get(f"/api/v1/activities/{door.activity.id}/roster").status_code == 401


def test_walk_in_registers_and_checks_in_at_once(client, door):
    url = f"/api/v1/activities/{door.activity.id}/walk-ins"
    headers = bearer(door.checker_token)
    body = client.post(
        url, json={"name": "王五", "phone": "139 0000 0009", "nonce": "w1"}, headers=headers
    ).get_json()
    assert body["result"] == "ok"
    registration = db.session.get(Registration, body["registration"]["id"])
    assert registration.walk_in
    assert registration.phone == "13900000009"
    # Resending is idempotent; the same phone again finds the same person, already in.
    assert (
        client.post(
            url, json={"name": "王五", "phone": "13900000009", "nonce": "w1"}, headers=headers
        ).get_json()["result"]
        == "ok"
    )
    again = client.post(url, json={"name": "王五", "phone": "13900000009"}, headers=headers)
    assert again.get_json()["result"] == "already_checked_in"
    assert db.session.scalar(select(func.count(Registration.id))) == 1
    bad = client.post(url, json={"name": "王五", "phone": "12345"}, headers=headers)
    assert bad.status_code == 400
    assert bad.get_json()["field"] == "phone"
    assert (
        client.post(url, json={"name": "", "phone": "13900000008"}, headers=headers).status_code
        == 400
    )
    assert (
        client.post(
            url, json={"name": "a\u0000b", "phone": "13900000008"}, headers=headers
        ).status_code
        == 400
    )


# --- tokens and CLI --------------------------------------------------------------------------


def test_create_token_command_prints_a_working_token(client, door, runner):
    result = runner.invoke(args=["create-token", door.checker.username, "--name", "门口手机"])
    assert result.exit_code == 0, result.output
    raw = result.output.strip()
    assert raw.startswith("swk_")
    stored = db.session.scalars(select(ApiToken.token_hash)).all()
    assert raw not in stored
    assert len(stored) == 3
    ticket = issue_ticket(door.activity)
    assert scan(client, raw, ticket.secret, door.activity.id).get_json()["result"] == "ok"
    assert runner.invoke(args=["create-token", "nobody"]).exit_code != 0


def test_tokens_page_shows_a_new_token_once_and_revokes(client, auth, door):
    auth.login(door.checker)
    page = client.post("/manage/tokens", data={"name": "前台平板"})
    assert page.status_code == 200
    raw = re.search(r'id="new-token">(swk_[^<]+)<', page.get_data(as_text=True)).group(1)
    ticket = issue_ticket(door.activity)
    assert scan(client, raw, ticket.secret, door.activity.id).status_code == 200
    listing = client.get("/manage/tokens").get_data(as_text=True)
    assert raw not in listing
    assert "前台平板" in listing
    token = db.session.scalar(select(ApiToken).where(ApiToken.name == "前台平板"))
    client.post(f"/manage/tokens/{token.id}/revoke")
    assert scan(client, raw, ticket.secret, door.activity.id).status_code == 401


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.data == b"ok"
