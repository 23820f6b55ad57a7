"""SMS verification codes (issue 12.5): 找回我的票 and 报名需短信验证.

Codes reach the test the way they reach a person: written sealed into the outbox and
delivered by the console backend (``delivery.deliver_one``), whose log line is the SMS.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from flask import Flask, current_app
from sqlalchemy import func, select

from sciweek import create_app, jobs
from sciweek.extensions import db
from sciweek.models import (
    Activity,
    NotificationEvent,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    ReplacedTicket,
    VerificationCode,
    VerificationPhone,
    VerificationPurpose,
    utcnow,
)
from sciweek.notifications import delivery, outbox, sealing, verification
from sciweek.registration.services import RegistrationRequest, register_for_activity

from .conftest import local
from .test_manage import activity_form, errors_in
from .waiting import wait_until

PHONE = "13900001111"
OTHER_PHONE = "13900002222"
NIGHT = local(2026, 12, 1, 23, 30)  # inside the quiet hours


def register(activity, phone=PHONE, name="张三"):
    issued = register_for_activity(activity.id, RegistrationRequest(name=name, phone=phone))
    db.session.commit()
    return issued


def sms_codes(caplog, phone=PHONE, now=None) -> list[str]:
    """Deliver the phone's waiting verification SMS through the console backend and read
    the codes from the texts it logged."""
    ids = db.session.scalars(
        select(OutboxMessage.id).where(
            OutboxMessage.recipient == phone,
            OutboxMessage.event == NotificationEvent.VERIFICATION,
            OutboxMessage.status == OutboxStatus.QUEUED,
        )
    ).all()
    db.session.rollback()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sciweek.sms"):
        for message_id in ids:
            assert delivery.deliver_one(message_id, now=now or utcnow()).status == "sent"
    texts = [r.getMessage() for r in caplog.records if r.name == "sciweek.sms"]
    return [m.group(1) for t in texts for m in [re.search(r"验证码([0-9]{6})，", t)] if m]


def ask(client, phone=PHONE):
    return client.post("/tickets/recover", data={"phone": phone})


def answer(client, code, phone=PHONE):
    return client.post("/tickets/recover/code", data={"phone": phone, "code": code})


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def age_codes(minutes: float) -> None:
    """Move every code (and the limits that count them) ``minutes`` into the past."""
    for row in db.session.scalars(select(VerificationCode)):
        row.created_at -= timedelta(minutes=minutes)
        row.expires_at -= timedelta(minutes=minutes)
    db.session.commit()


# --- codes: hashing, sending -----------------------------------------------------------


def test_the_code_is_kept_only_hashed_and_sent_sealed_even_at_night(client, make, caplog):
    register(make.activity())
    db.session.execute(OutboxMessage.__table__.delete())  # the confirmation: not this test's
    db.session.commit()
    assert ask(client).status_code == 200
    [message] = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.event == NotificationEvent.VERIFICATION)
    ).all()
    assert message.dedupe_key.startswith("verification::")
    assert message.sealed  # the code travels encrypted ...
    [row] = db.session.scalars(select(VerificationCode)).all()
    assert row.purpose == VerificationPurpose.LOST_TICKET
    assert row.expires_at - row.created_at == timedelta(minutes=5)
    # Quiet hours hold back every other message; a code is sent at once.
    [code] = sms_codes(caplog, now=NIGHT)
    db.session.expire_all()
    # ... and nowhere in the database in clear: not the code's row, not the message.
    assert code not in row.code_hash
    assert len(row.code_hash) == 64
    assert code not in repr(message.params)
    assert message.sealed is None
    assert message.status == OutboxStatus.SENT
    for value in db.session.execute(select(VerificationCode.__table__)).one():
        assert code not in str(value)
    # An unkeyed hash would be undone by trying the 10^6 codes: the stored one is keyed.
    assert row.code_hash != hashlib.sha256(code.encode()).hexdigest()


def test_a_code_goes_out_before_a_large_dispatch_waiting(client, app, make, caplog):
    """Without a broker (the in-process jobs): a code asked for while 120 messages wait is
    sent before all of them, not after them in the dispatch's batches."""
    register(make.activity())
    for n in range(120):
        outbox.enqueue(
            NotificationEvent.CHANGED,
            key=f"changed:test:{n}:r0",
            recipient=f"1370000{n:04d}",
            params={"title": "讲座", "starts_at": "", "place": "礼堂"},
        )
    db.session.commit()
    app.config.update(NOTIFICATIONS_DELIVER_AFTER_COMMIT=True, SCIWEEK_SMS_QUIET_HOURS=None)
    with caplog.at_level(logging.WARNING, logger="sciweek.sms"):
        assert ask(client).status_code == 200

        def all_sent():
            done = db.session.scalar(
                select(func.count()).where(OutboxMessage.status == OutboxStatus.SENT)
            )
            db.session.rollback()
            return done == 122  # (the registration's confirmation too)

        wait_until(all_sent, timeout=60, what="the in-process delivery of every message")
    texts = [r.getMessage() for r in caplog.records if r.name == "sciweek.sms"]
    first_code = next(i for i, t in enumerate(texts) if "验证码" in t)
    assert first_code == 0, texts[:3]


def test_a_code_expires_after_five_minutes(app, make):
    start = utcnow()
    issued = verification.request_code(PHONE, VerificationPurpose.LOST_TICKET, now=start)
    code = _code_of(issued)
    db.session.commit()
    with pytest.raises(verification.VerificationRefused, match="过期"):
        verification.check_code(
            PHONE, VerificationPurpose.LOST_TICKET, code, now=start + timedelta(minutes=5)
        )
    # Just inside the five minutes it works, once.
    verification.check_code(
        PHONE, VerificationPurpose.LOST_TICKET, code, now=start + timedelta(minutes=4, seconds=59)
    )
    db.session.commit()
    with pytest.raises(verification.VerificationRefused):
        verification.check_code(PHONE, VerificationPurpose.LOST_TICKET, code, now=start)


def _code_of(issued) -> str:
    """The code, read back from its sealed SMS (as the phone would see it)."""
    message = db.session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.dedupe_key.endswith(f":{issued.code_id}:p{PHONE}")
        )
    )
    return sealing.unseal(current_app.config["SECRET_KEY"], message.sealed)["otp"]


def test_one_code_a_minute_and_five_an_hour_per_phone(app, make):
    start = utcnow()
    purpose = VerificationPurpose.LOST_TICKET
    verification.request_code(PHONE, purpose, now=start)
    db.session.commit()
    with pytest.raises(verification.VerificationRefused, match="秒后") as refused:
        verification.request_code(PHONE, purpose, now=start + timedelta(seconds=30))
    assert 29 <= refused.value.retry_after <= 31
    db.session.rollback()
    # Another phone is not held back by this one.
    verification.request_code(OTHER_PHONE, purpose, now=start + timedelta(seconds=30))
    for minute in range(1, 5):
        verification.request_code(PHONE, purpose, now=start + timedelta(minutes=minute))
        db.session.commit()
    with pytest.raises(verification.VerificationRefused, match="分钟后"):
        verification.request_code(PHONE, purpose, now=start + timedelta(minutes=10))
    db.session.rollback()
    # An hour after the first, one place is free again.
    verification.request_code(PHONE, purpose, now=start + timedelta(minutes=60, seconds=1))
    db.session.commit()
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(VerificationCode)
            .where(VerificationCode.phone == PHONE)
        )
        == 6
    )


def test_codes_are_deleted_after_a_day(app, make):
    start = utcnow()
    verification.request_code(PHONE, VerificationPurpose.LOST_TICKET, now=start)
    verification.request_code(OTHER_PHONE, VerificationPurpose.LOST_TICKET, now=start)
    db.session.commit()
    later = start + timedelta(hours=23)
    verification.request_code(OTHER_PHONE, VerificationPurpose.LOST_TICKET, now=later)
    db.session.commit()
    assert verification.purge_old_codes(now=start + timedelta(days=1, minutes=1)) == 2
    db.session.commit()
    assert db.session.scalars(select(VerificationCode.phone)).all() == [OTHER_PHONE]
    assert db.session.scalars(select(VerificationPhone.phone)).all() == [OTHER_PHONE]
    assert verification.PURGE_JOB in {p.name for p in jobs.SCHEDULE}  # beat runs it hourly


# --- brute force -----------------------------------------------------------------------


@contextmanager
def sms_rate_limited_app(app_config, tmp_path, monkeypatch, limit: str) -> Iterator[Flask]:
    """Another app on the test's database with the per-address SMS code limit ``limit`` on
    (rate limits are off in the test app); its context is pushed while in use."""
    db.session.remove()  # (SQLite: this session keeps no transaction open meanwhile)
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "rl"))
    limited = create_app(
        {**app_config, "RATELIMIT_ENABLED": True, "SCIWEEK_VERIFICATION_RATE_LIMIT": limit}
    )
    with limited.app_context():
        yield limited
        db.session.remove()
        db.engine.dispose()


def test_five_wrong_tries_use_up_a_code_even_for_the_right_one_after(client, make, caplog):
    register(make.activity())
    ask(client)
    [code] = sms_codes(caplog)
    for left in (4, 3, 2, 1):
        response = answer(client, wrong(code))
        assert response.status_code == 200  # the try is committed with the page
        assert f"还可以再试 {left} 次" in response.get_data(as_text=True)
    response = answer(client, wrong(code))
    assert "输错次数过多" in response.get_data(as_text=True)
    response = answer(client, code)
    assert "输错次数过多" in response.get_data(as_text=True)
    assert "我的票" in response.get_data(as_text=True)
    assert "/t/" not in response.get_data(as_text=True)
    assert db.session.scalar(select(VerificationCode.tries)) == 5


def test_the_address_limit_stops_guessing_across_phones(
    app, app_config, make, tmp_path, monkeypatch
):
    activity_id = make.activity(sms_verification=True).id
    with sms_rate_limited_app(app_config, tmp_path, monkeypatch, "4 per minute") as limited:
        client = limited.test_client()
        codes = [answer(client, "123456", phone=f"1390000{n:04d}").status_code for n in range(4)]
        refused = ask(client, phone="13900009999").status_code
        # ... the registration form's "发送验证码" button counts against the same budget,
        registration_code = client.post(
            f"/activities/{activity_id}/register",
            data={"name": "王五", "phone": OTHER_PHONE, "send_code": "1"},
        ).status_code
        # ... while registering itself does not.
        registering = client.post(
            f"/activities/{activity_id}/register", data={"name": "王五", "phone": OTHER_PHONE}
        ).status_code
    assert codes == [200, 200, 200, 200]
    assert refused == 429
    assert registration_code == 429
    assert registering == 422  # (no code typed)


# --- 找回我的票 --------------------------------------------------------------------------


def test_lost_tickets_are_recovered_reissued_and_the_old_link_says_replaced(client, make, caplog):
    upcoming = make.activity(title="果树修剪")
    waiting = make.activity(title="科普讲座", capacity=1)
    register(waiting, OTHER_PHONE)
    old = register(upcoming)
    register(waiting)  # waitlisted: still a ticket
    cancelled = make.activity(title="已取消的活动")
    register(cancelled)
    cancelled.status = "cancelled"
    cancelled.cancel_reason = "天气原因"
    past = make.activity(
        title="上个月的活动", sessions=[(local(2026, 1, 5, 9), local(2026, 1, 5, 11))]
    )
    db.session.add(
        Registration(
            activity=past,
            name="张三",
            phone=PHONE,
            status=RegistrationStatus.CONFIRMED,
            secret_hash="x" * 64,
            short_code="PAST22",
        )
    )
    db.session.commit()
    assert client.get(f"/t/{old.secret}").status_code == 200

    page = ask(client).get_data(as_text=True)
    assert "139****1111" in page
    [code] = sms_codes(caplog)
    response = answer(client, code)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-store"
    html = response.get_data(as_text=True)
    assert "果树修剪" in html
    assert "科普讲座" in html
    assert "已取消的活动" not in html
    assert "上个月的活动" not in html
    links = re.findall(r'href="(/t/[A-Za-z0-9_-]{32})"', html)
    assert len(links) == 2
    ticket = client.get(links[0])
    assert ticket.status_code == 200
    assert "果树修剪" in ticket.get_data(as_text=True)
    # The old link no longer opens the ticket, and says why.
    replaced = client.get(f"/t/{old.secret}")
    assert replaced.status_code == 410
    assert "此电子票已更换" in replaced.get_data(as_text=True)
    assert client.get(f"/t/{old.secret}/qr.svg").status_code == 410
    assert db.session.scalar(select(func.count()).select_from(ReplacedTicket)) == 2
    # The code was used up.
    assert "无效或已过期" in answer(client, code).get_data(as_text=True)


def test_asking_answers_alike_whether_or_not_the_phone_registered(client, make):
    register(make.activity())

    def page(phone):
        response = ask(client, phone)
        masked = f"{phone[:3]}****{phone[-4:]}"
        html = response.get_data(as_text=True).replace(masked, "MASKED")
        return response.status_code, html.replace(phone, "PHONE")  # (its hidden field)

    assert page(PHONE) == page(OTHER_PHONE)
    # The same limits for both: asking again at once is refused alike.
    again = [ask(client, p) for p in (PHONE, OTHER_PHONE)]
    assert [r.status_code for r in again] == [429, 429]
    assert errors_in(again[0]) == errors_in(again[1])
    # Only the phone with a ticket gets an SMS (a stranger's phone is not texted).
    recipients = db.session.scalars(
        select(OutboxMessage.recipient).where(OutboxMessage.event == NotificationEvent.VERIFICATION)
    ).all()
    assert recipients == [PHONE]
    # Whoever types a guess for the other phone learns nothing either.
    html = answer(client, "000000", phone=OTHER_PHONE).get_data(as_text=True)
    assert "还可以再试 4 次" in html


def test_the_recovery_is_linked_from_the_ticket_pages(client, make):
    activity = make.activity()
    issued = register(activity)
    for url in (f"/t/{issued.secret}", "/tickets/find", f"/activities/{activity.id}"):
        assert 'href="/tickets/recover"' in client.get(url).get_data(as_text=True), url
    form = client.get("/tickets/recover").get_data(as_text=True)
    assert 'name="phone"' in form


def test_bad_input_is_answered_next_to_the_field(client):
    response = ask(client, "12345")
    assert response.status_code == 422
    assert errors_in(response)
    response = answer(client, "")
    assert response.status_code == 422
    assert "请填写短信验证码。" in errors_in(response)


# --- 报名需短信验证 ------------------------------------------------------------------------


def post_registration(client, activity, **data):
    return client.post(
        f"/activities/{activity.id}/register", data={"name": "李四", "phone": PHONE, **data}
    )


def registrations() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Registration))


def test_with_the_option_on_nobody_registers_without_the_code_sent_to_the_phone(
    client, make, caplog
):
    activity = make.activity(sms_verification=True)
    other = make.activity(sms_verification=True)
    page = client.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert 'name="verification_code"' in page
    assert 'name="send_code"' in page

    response = post_registration(client, activity)
    assert response.status_code == 422
    assert "请填写短信验证码。" in errors_in(response)
    assert registrations() == 0

    response = post_registration(client, activity, send_code="1")
    assert response.status_code == 200
    assert "验证码短信已发送到 139****1111" in response.get_data(as_text=True)
    assert registrations() == 0
    [code] = sms_codes(caplog)

    # Someone else's code, or the code for another activity, does not do.
    response = post_registration(client, activity, verification_code=wrong(code))
    assert response.status_code == 200
    assert "验证码不正确，还可以再试 4 次。" in errors_in(response)
    response = post_registration(client, other, verification_code=code)
    assert "验证码无效或已过期，请重新获取。" in errors_in(response)
    assert registrations() == 0

    response = post_registration(client, activity, verification_code=code)
    assert response.status_code == 303
    assert registrations() == 1
    row = db.session.scalar(select(VerificationCode))
    assert row.consumed_at is not None
    assert row.tries == 2


def test_a_repeated_submit_of_the_verified_form_gets_the_same_registration(client, make, caplog):
    activity = make.activity(sms_verification=True)
    post_registration(client, activity, send_code="1", submission="form-1")
    [code] = sms_codes(caplog)
    first = post_registration(client, activity, verification_code=code, submission="form-1")
    again = post_registration(client, activity, verification_code=code, submission="form-1")
    assert (first.status_code, again.status_code) == (303, 303)
    assert registrations() == 1
    assert client.get(again.headers["Location"]).status_code == 200
    # Another form (someone else) with the used code gets nothing.
    other = post_registration(client, activity, verification_code=code, submission="form-2")
    assert "验证码无效或已过期，请重新获取。" in errors_in(other)


def test_a_refused_registration_does_not_use_up_the_code(client, make, caplog):
    activity = make.activity(capacity=1, waitlist_enabled=False)
    register(activity, OTHER_PHONE)
    activity.sms_verification = True
    db.session.commit()
    post_registration(client, activity, send_code="1")
    [code] = sms_codes(caplog)
    response = post_registration(client, activity, verification_code=code)
    assert response.status_code == 422
    assert "名额已满。" in response.get_data(as_text=True)
    db.session.expire_all()
    row = db.session.scalar(select(VerificationCode))
    assert row.consumed_at is None  # one transaction: no registration, the code unused


def test_the_service_refuses_a_registration_without_a_code(make):
    from sciweek.registration.services import RegistrationRefused

    activity = make.activity(sms_verification=True)
    with pytest.raises(RegistrationRefused, match="短信验证码"):
        register_for_activity(activity.id, RegistrationRequest(name="张三", phone=PHONE))
    db.session.rollback()
    # Walk-ins at the door are registered by staff: no code.
    register_for_activity(activity.id, RegistrationRequest(name="张三", phone=PHONE), walk_in=True)


def test_with_the_option_off_the_form_asks_for_no_code(client, make):
    activity = make.activity()
    page = client.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert 'name="verification_code"' not in page
    assert post_registration(client, activity).status_code == 303
    # The "发送验证码" button is not there, and posting it sends nothing.
    other = make.activity()
    post_registration(client, other, send_code="1")
    assert db.session.scalar(select(func.count()).select_from(VerificationCode)) == 0


def test_organizers_turn_the_option_on_and_off(client, make, auth):
    organizer = make.user("organizer")
    auth.login(organizer)
    form = activity_form([organizer.department_id], sms_verification="y")
    assert client.post("/manage/activities/new", data=form).status_code == 302
    activity = db.session.scalar(select(Activity))
    assert activity.sms_verification is True
    form.pop("sms_verification")
    response = client.post(f"/manage/activities/{activity.id}/edit", data=form)
    assert response.status_code == 302
    db.session.expire_all()
    assert activity.sms_verification is False
