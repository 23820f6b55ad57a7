"""A roster cadre's self check-in with an SMS code sent to the roster phone (issue 11.2):
for cadres the roster has no ID number for, or who prefer it (no browser).

Codes reach the test as they reach the cadre: sealed into the outbox, delivered by the
console backend, read from the SMS text (``test_verification.sms_codes``).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from sciweek.checkin.codes import make_self_code
from sciweek.extensions import db
from sciweek.models import (
    ActivitySession,
    CheckIn,
    NotificationEvent,
    OutboxMessage,
    Registration,
    VerificationCode,
    VerificationPurpose,
    utcnow,
)
from sciweek.notifications import verification
from sciweek.training.coverage import coverage_by_town, local_year_today

from .roster_door_support import Door, build_door
from .test_manage import errors_in
from .test_verification import sms_codes, sms_rate_limited_app, wrong

STRANGER = "13312345678"
SENT = "如果此号码在本次培训的参训干部名单中，验证码短信已发出"


@pytest.fixture
def door(make) -> Door:
    return build_door(make)


def self_code(app, session_id: int) -> str:
    return make_self_code(app.config["SECRET_KEY"], session_id, utcnow().timestamp())


def ask(client, code: str, phone: str):
    """The "发送验证码" button (its form sends the empty code field too)."""
    return client.post(f"/checkin/self/{code}/sms-code", data={"sms-phone": phone, "sms-code": ""})


def check_in(client, code: str, phone: str, sms_code: str):
    return client.post(f"/checkin/self/{code}", data={"sms-phone": phone, "sms-code": sms_code})


def live_checkins() -> int:
    return db.session.scalar(select(func.count(CheckIn.id)).where(CheckIn.undone_at.is_(None)))


def code_sms_recipients() -> list[str]:
    return list(
        db.session.scalars(
            select(OutboxMessage.recipient).where(
                OutboxMessage.event == NotificationEvent.VERIFICATION
            )
        )
    )


def test_cadre_without_id_number_checks_in_once_with_the_sms_code(app, client, door, caplog):
    code = self_code(app, door.training.sessions[0].id)
    page = client.get(f"/checkin/self/{code}").get_data(as_text=True)
    assert 'name="sms-code"' in page
    assert "花名册没有您的身份证号？用短信验证码签到" in page

    asked = ask(client, code, "139 7483 5678")  # 李秀英: the roster has no ID number
    assert asked.status_code == 200, asked.get_data(as_text=True)
    assert SENT in asked.get_data(as_text=True)
    [sms] = sms_codes(caplog, phone=door.li.phone)

    done = check_in(client, code, door.li.phone, " ".join(sms))  # spaces typed in: fine
    text = done.get_data(as_text=True)
    assert done.status_code == 200, text
    assert "签到成功" in text
    assert "李**" in text
    assert "李秀英" not in text
    [registration] = db.session.scalars(
        select(Registration).where(Registration.cadre_id == door.li.id)
    ).all()
    assert [c.method for c in registration.checkins] == ["self"]
    # The code was used with the check-in: a second use is refused, still one check-in.
    again = check_in(client, code, door.li.phone, sms)
    assert "验证码无效或已过期" in again.get_data(as_text=True)
    assert live_checkins() == 1
    assert db.session.scalar(select(VerificationCode.consumed_at)) is not None

    # It counts for coverage like any other check-in.
    chengguan = next(
        t for t in coverage_by_town(local_year_today()).towns if t.town_id == door.chengguan.id
    )
    assert (chengguan.trained, chengguan.attendances) == (1, 1)


def test_a_wrong_code_is_refused_and_the_try_counted(app, client, door, caplog):
    code = self_code(app, door.training.sessions[0].id)
    ask(client, code, door.zhang.phone)  # a cadre with an ID number may prefer the SMS
    [sms] = sms_codes(caplog, phone=door.zhang.phone)
    refused = check_in(client, code, door.zhang.phone, wrong(sms))
    assert refused.status_code == 200  # the try is committed with the page
    assert errors_in(refused) == ["验证码不正确，还可以再试 4 次。"]
    assert 'id="cadre-sms-form"' in refused.get_data(as_text=True)
    assert live_checkins() == 0
    assert db.session.scalar(select(VerificationCode.tries)) == 1
    assert db.session.scalar(select(func.count(Registration.id))) == 0
    # Not six digits: said next to the field, no try spent.
    typo = check_in(client, code, door.zhang.phone, "12345")
    assert errors_in(typo) == ["请填写短信中的 6 位验证码。"]
    db.session.expire_all()
    assert db.session.scalar(select(VerificationCode.tries)) == 1
    assert "签到成功" in check_in(client, code, door.zhang.phone, sms).get_data(as_text=True)
    assert live_checkins() == 1


def test_a_code_for_another_session_is_refused(app, client, door, caplog):
    # The training's second sitting begins in half an hour: its door is open too.
    soon = utcnow() + timedelta(minutes=30)
    other = ActivitySession(starts_at=soon, ends_at=soon + timedelta(hours=2))
    door.training.sessions.append(other)
    db.session.commit()
    first = self_code(app, door.training.sessions[0].id)
    ask(client, first, door.li.phone)
    [sms] = sms_codes(caplog, phone=door.li.phone)
    refused = check_in(client, self_code(app, other.id), door.li.phone, sms)
    assert errors_in(refused) == ["验证码无效或已过期，请重新获取。"]
    assert live_checkins() == 0
    # ... and it still works for its own session.
    assert "签到成功" in check_in(client, first, door.li.phone, sms).get_data(as_text=True)


def test_asking_answers_alike_whether_or_not_the_phone_is_on_the_roster(app, client, door):
    code = self_code(app, door.training.sessions[0].id)

    def page(phone):
        response = ask(client, code, phone)
        return response.status_code, response.get_data(as_text=True).replace(phone, "PHONE")

    cadre = page(door.li.phone)
    assert cadre[0] == 200
    # A stranger, a cadre of a town not invited, a cadre who left before the training.
    for phone in (STRANGER, door.qian.phone, door.sun.phone):
        assert page(phone) == cadre
    # Only the invited cadre's phone gets an SMS.
    assert code_sms_recipients() == [door.li.phone]
    # The same per-phone limits for all: asking again at once is refused alike.
    again = [ask(client, code, phone) for phone in (door.li.phone, STRANGER)]
    assert [r.status_code for r in again] == [429, 429]
    # (The seconds to wait may differ by one: the phones asked one after the other.)
    waits = [[re.sub("[0-9]+", "N", e) for e in errors_in(r)] for r in again]
    assert waits == [["验证码已发送，请 N 秒后再重新获取。"]] * 2
    # Whoever guesses a code for the stranger's phone learns nothing either.
    for phone in (door.li.phone, STRANGER):
        guessed = check_in(client, code, phone, "000000")
        assert guessed.status_code == 200
        assert errors_in(guessed) == ["验证码不正确，还可以再试 4 次。"]
    assert live_checkins() == 0
    assert db.session.scalar(select(func.count(Registration.id))) == 0


def test_outside_the_window_no_code_is_asked_tried_or_used(app, client, make):
    door = build_door(make, under_way=False)  # the session is in three days
    session = door.training.sessions[0]
    code = self_code(app, session.id)
    assert 'id="self-not-now"' in client.get(f"/checkin/self/{code}").get_data(as_text=True)
    asked = ask(client, code, door.li.phone)
    assert asked.status_code == 400
    assert "本场次" in asked.get_data(as_text=True)
    assert db.session.scalar(select(func.count(VerificationCode.id))) == 0
    assert code_sms_recipients() == []
    # A code in hand (asked by the service itself, say) is neither tried nor used.
    verification.request_code(
        door.li.phone, VerificationPurpose.SELF_CHECK_IN, scope=f"s{session.id}", send=False
    )
    db.session.commit()
    refused = check_in(client, code, door.li.phone, "123456")
    assert refused.status_code == 400
    assert "本场次" in refused.get_data(as_text=True)
    db.session.expire_all()
    row = db.session.scalar(select(VerificationCode))
    assert (row.tries, row.consumed_at) == (0, None)
    assert live_checkins() == 0


def test_a_training_without_a_roster_takes_no_code_requests(app, client, make):
    training = make.activity(kind="training")
    code = self_code(app, training.sessions[0].id)
    assert 'name="sms-code"' not in client.get(f"/checkin/self/{code}").get_data(as_text=True)
    assert ask(client, code, STRANGER).status_code == 404
    assert db.session.scalar(select(func.count(VerificationCode.id))) == 0


def test_bad_phone_is_answered_next_to_the_field(app, client, door):
    code = self_code(app, door.training.sessions[0].id)
    for phone in ("", "1234"):
        response = ask(client, code, phone)
        assert response.status_code == 400
        assert len(errors_in(response)) == 1
    assert db.session.scalar(select(func.count(VerificationCode.id))) == 0


def test_the_address_limit_counts_asking_and_checking_codes_only(
    app, app_config, door, tmp_path, monkeypatch
):
    session_id = door.training.sessions[0].id
    zhang_phone, zhang_tail = door.zhang.phone, door.zhang.id_number[-6:]
    with sms_rate_limited_app(app_config, tmp_path, monkeypatch, "4 per minute") as limited:
        client = limited.test_client()
        code = self_code(limited, session_id)
        # Two phones asked, two codes tried: the address's budget is spent ...
        statuses = [ask(client, code, f"1390000{n:04d}").status_code for n in range(2)]
        statuses += [
            check_in(client, code, f"1390000{n:04d}", "123456").status_code for n in range(2)
        ]
        asking = ask(client, code, "13900009999").status_code
        checking = check_in(client, code, "13900009999", "123456").status_code
        # ... for 找回我的票 too (one budget for every SMS code) ...
        recovering = client.post("/tickets/recover", data={"phone": "13900009999"}).status_code
        # ... while the ID number's last 6 is not an SMS code.
        by_id_tail = client.post(
            f"/checkin/self/{code}", data={"cadre-phone": zhang_phone, "cadre-id_tail": zhang_tail}
        ).status_code
    assert statuses == [200, 200, 200, 200]
    assert (asking, checking, recovering) == (429, 429, 429)
    assert by_id_tail == 200
