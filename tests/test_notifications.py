"""Notifications: the outbox written with each change, texts, delivery rules, the log.

Delivery here runs in the test's process (``deliver_one``); the job engine with a real
worker on Redis is tests/test_notifications_worker.py, the gateways
tests/test_notifications_gateways.py.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from sciweek.extensions import db
from sciweek.models import (
    NotificationEvent,
    OutboxMessage,
    OutboxStatus,
    Registration,
    RegistrationStatus,
    SmsDailyCount,
    utcnow,
)
from sciweek.notifications import delivery, messages, outbox, sealing, sms
from sciweek.notifications.backends import sms_backend
from sciweek.registration.services import (
    RegistrationRequest,
    cancel_registration,
    register_for_activity,
)

from .conftest import local
from .fake_sms import FakeGateway
from .test_manage import activity_form
from .waiting import wait_until

PHONES = [f"1390000{n:04d}" for n in range(20)]
DAYTIME = local(2026, 12, 1, 10)  # inside no quiet hours


def outbox_rows(**filters) -> list[OutboxMessage]:
    db.session.expire_all()
    stmt = select(OutboxMessage).order_by(OutboxMessage.id)
    for name, value in filters.items():
        stmt = stmt.where(getattr(OutboxMessage, name) == value)
    return list(db.session.scalars(stmt))


def statuses() -> list[str]:
    """The messages' statuses, read in a transaction ended at once (SQLite: no lock kept
    from a worker)."""
    found = list(db.session.scalars(select(OutboxMessage.status).order_by(OutboxMessage.id)))
    db.session.rollback()
    return found


def register(activity, phone, name="张三"):
    issued = register_for_activity(activity.id, RegistrationRequest(name=name, phone=phone))
    db.session.commit()
    return issued


def post_registration(client, activity, phone, name="李四"):
    return client.post(f"/activities/{activity.id}/register", data={"name": name, "phone": phone})


def deliver_all(now=DAYTIME) -> list:
    ids = db.session.scalars(
        select(OutboxMessage.id).where(OutboxMessage.status == OutboxStatus.QUEUED)
    ).all()
    db.session.rollback()
    return [delivery.deliver_one(i, now=now) for i in ids]


# --- the outbox is written in the transaction of the change ------------------------


def test_registration_writes_its_confirmation_with_the_link_sealed(client, make, app):
    activity = make.activity(title="果树修剪", capacity=5)
    response = post_registration(client, activity, "13800138000")
    assert response.status_code == 303
    secret = response.headers["Location"].rsplit("/", 1)[-1]
    [message] = outbox_rows()
    assert message.event == NotificationEvent.CONFIRMED
    assert message.status == OutboxStatus.QUEUED
    assert message.recipient == "13800138000"
    registration = db.session.get(Registration, message.registration_id)
    assert message.params["code"] == registration.short_code
    # The ticket secret is nowhere in clear, only sealed with the app's key.
    stored = json.dumps(message.params) + (message.sealed or "") + message.dedupe_key
    assert secret not in stored
    opened = sealing.unseal(app.config["SECRET_KEY"], message.sealed)
    assert opened == {"ticket_url": f"https://sciweek.example.cn/t/{secret}"}
    assert sealing.unseal("another key", message.sealed) == {}


def test_a_refused_registration_writes_nothing(client, make):
    activity = make.activity(capacity=1, waitlist_enabled=False)
    assert post_registration(client, activity, "13800138000").status_code == 303
    assert post_registration(client, activity, "13800138001").status_code == 422
    assert [m.recipient for m in outbox_rows()] == ["13800138000"]


def test_a_rolled_back_change_leaves_no_message(make):
    activity = make.activity()
    register_for_activity(activity.id, RegistrationRequest(name="王五", phone="13800138000"))
    db.session.rollback()
    assert outbox_rows() == []


def test_walk_ins_are_not_told(make):
    activity = make.activity()
    register_for_activity(
        activity.id, RegistrationRequest(name="王五", phone="13800138000"), walk_in=True
    )
    db.session.commit()
    assert outbox_rows() == []


def test_waitlisted_then_promoted_when_staff_cancel(client, make, auth):
    activity = make.activity(capacity=1)
    first = register(activity, PHONES[0])
    second = register(activity, PHONES[1])
    assert second.status == RegistrationStatus.WAITLISTED
    auth.login(make.user("admin"))
    response = client.post(f"/manage/registrations/{first.registration_id}/cancel")
    assert response.status_code == 302
    events = [(m.recipient, m.event, m.params["template"]) for m in outbox_rows()]
    assert events == [
        (PHONES[0], NotificationEvent.CONFIRMED, "confirmed"),
        (PHONES[1], NotificationEvent.WAITLISTED, "waitlisted"),
        (PHONES[0], NotificationEvent.CANCELLED, "cancelled_by_staff"),
        (PHONES[1], NotificationEvent.PROMOTED, "promoted"),
    ]


def test_cancelling_ones_own_registration_tells_only_the_promoted(make):
    activity = make.activity(capacity=1)
    first = register(activity, PHONES[0])
    register(activity, PHONES[1])
    cancel_registration(first.registration_id)
    db.session.commit()
    assert [(m.recipient, m.event) for m in outbox_rows()][2:] == [
        (PHONES[1], NotificationEvent.PROMOTED)
    ]


def test_raising_capacity_tells_each_promoted_person(client, make, auth):
    activity = make.activity(capacity=1)
    for phone in PHONES[:3]:
        register(activity, phone)
    auth.login(make.user("admin"))
    data = activity_form(
        [activity.departments[0].id],
        title=activity.title,
        venue=activity.venue,
        capacity="3",
        **{
            "sessions-0-id": str(activity.sessions[0].id),
            "sessions-0-starts_at": "2026-12-10T09:00",
            "sessions-0-ends_at": "2026-12-10T11:00",
        },
    )
    assert client.post(f"/manage/activities/{activity.id}/edit", data=data).status_code == 302
    promoted = outbox_rows(event=NotificationEvent.PROMOTED)
    assert sorted(m.recipient for m in promoted) == PHONES[1:3]
    assert outbox_rows(event=NotificationEvent.CHANGED) == []  # same time and place


def _move(client, activity, starts, ends, venue=None):
    data = activity_form(
        [activity.departments[0].id],
        title=activity.title,
        venue=venue or activity.venue,
        **{
            "sessions-0-id": str(activity.sessions[0].id),
            "sessions-0-starts_at": starts,
            "sessions-0-ends_at": ends,
        },
    )
    return client.post(f"/manage/activities/{activity.id}/edit", data=data)


def test_a_change_of_time_tells_every_active_registrant_once(client, make, auth):
    activity = make.activity(capacity=2)
    regs = [register(activity, phone) for phone in PHONES[:4]]  # 2 confirmed, 2 waiting
    cancel_registration(regs[3].registration_id)
    db.session.commit()
    auth.login(make.user("admin"))
    assert _move(client, activity, "2026-12-11T14:00", "2026-12-11T16:00").status_code == 302
    changed = outbox_rows(event=NotificationEvent.CHANGED)
    assert sorted(m.recipient for m in changed) == PHONES[:3]
    assert {m.params["starts_at"] for m in changed} == {local(2026, 12, 11, 14).isoformat()}
    # Saving the same details again raises nothing and writes nothing.
    _move(client, activity, "2026-12-11T14:00", "2026-12-11T16:00")
    assert len(outbox_rows(event=NotificationEvent.CHANGED)) == 3
    # A second change before the first went out replaces it: one text with the latest.
    _move(client, activity, "2026-12-12T14:00", "2026-12-12T16:00", venue="镇文化站")
    rows = outbox_rows(event=NotificationEvent.CHANGED)
    assert [m.status for m in rows] == [OutboxStatus.SKIPPED] * 3 + [OutboxStatus.QUEUED] * 3
    assert {m.reason for m in rows[:3]} == {"superseded"}
    assert {m.params["place"] for m in rows[3:]} == {"镇文化站"}


def test_cancelling_an_activity_tells_everyone_the_reason(client, make, auth):
    activity = make.activity(capacity=1)
    for phone in PHONES[:3]:
        register(activity, phone)
    auth.login(make.user("admin"))
    response = client.post(
        f"/manage/activities/{activity.id}/cancel", data={"reason": "暴雨红色预警"}
    )
    assert response.status_code == 302
    cancelled = outbox_rows(event=NotificationEvent.CANCELLED)
    assert sorted(m.recipient for m in cancelled) == PHONES[:3]
    assert {m.params["reason"] for m in cancelled} == {"暴雨红色预警"}
    # What was still waiting about the activity is not sent any more.
    earlier = [m for m in outbox_rows() if m.event != NotificationEvent.CANCELLED]
    assert {(m.status, m.reason) for m in earlier} == {(OutboxStatus.SKIPPED, "superseded")}
    assert all(m.sealed is None for m in earlier)


def test_the_same_key_twice_is_one_message(make):
    activity = make.activity()
    for _ in range(2):
        outbox.enqueue(
            NotificationEvent.CHANGED,
            key=outbox.dedupe_key(NotificationEvent.CHANGED, "r1", scope="a1", version="v1"),
            recipient=PHONES[0],
            activity_id=activity.id,
            params=messages.activity_params(activity),
        )
        n = outbox.enqueue_for_registrants(
            NotificationEvent.CANCELLED, activity.id, scope="a1", version="v1", params={}
        )
        assert n == 0
    db.session.commit()
    assert len(outbox_rows()) == 1


def test_demo_data_tells_nobody(app):
    from sciweek.demo import seed_demo

    seed_demo()
    db.session.commit()
    assert db.session.scalar(select(func.count(Registration.id))) > 0
    assert outbox_rows() == []


# --- texts --------------------------------------------------------------------------


def _render(name, **params):
    base = {
        "title": "果树修剪",
        "starts_at": local(2026, 12, 10, 9).isoformat(),
        "place": "文化礼堂",
    }
    return messages.render(name, {**base, **params}, {}, signature="区科协")


def test_texts_are_chinese_signed_and_one_segment():
    texts = {name: _render(name, code="ABC234", reason="暴雨预警") for name in messages.TEMPLATES}
    assert texts["confirmed"].text == (
        "【区科协】报名成功：“果树修剪”，12月10日09:00，文化礼堂。电子票：票码ABC234"
    )
    assert texts["cancelled"].text == (
        "【区科协】活动取消：“果树修剪”（12月10日09:00）已取消，原因：暴雨预警。"
    )
    assert "改为12月10日09:00，地点文化礼堂" in texts["changed"].text
    assert "ABC234" in texts["promoted"].text
    assert "ABC234" in texts["waitlisted"].text
    for rendered in texts.values():
        assert rendered.text.startswith("【区科协】")
        assert len(rendered.text) <= 70
        assert rendered.segments == 1


def test_long_titles_are_shortened_to_stay_in_one_segment():
    long_title = "2026年全国科普日暨科技活动周农村基层干部普及型科技培训第三期现代农业技术专题"
    rendered = _render("cancelled", title=long_title, reason="场地临时维修，改期另行通知")
    assert len(rendered.text) == 70
    assert rendered.segments == 1
    assert "…" in rendered.params[0]
    assert "场地临时维修，改期另行通知" in rendered.text


def test_the_confirmation_link_is_never_cut_and_costs_two_segments():
    url = "https://kp.example.gov.cn/t/" + "A" * 32
    rendered = messages.render(
        "confirmed",
        {"title": "果树修剪", "starts_at": local(2026, 12, 10, 9).isoformat(), "place": "礼堂"},
        {"ticket_url": url},
        signature="区科协",
    )
    assert rendered.text.endswith(url)
    assert rendered.params[-1] == url
    assert rendered.segments == 2


def test_texts_have_english_translations(app):
    base = {"title": "Pruning", "starts_at": local(2026, 12, 10, 9).isoformat(), "place": "Hall"}
    rendered = messages.render(
        "cancelled", {**base, "reason": "storm"}, {}, signature="SciWeek", locale="en"
    )
    assert rendered.text.startswith("【SciWeek】")
    assert "10 Dec 09:00" in rendered.text
    assert "取消" not in rendered.text
    assert "storm" in rendered.text


def test_segment_counting():
    assert sms.segment_count("字" * 70) == 1
    assert sms.segment_count("字" * 71) == 2
    assert sms.segment_count("字" * 134) == 2
    assert sms.segment_count("字" * 135) == 3


def test_provider_templates_number_the_parameters():
    assert messages.provider_template_text("cancelled") == (
        "活动取消：“{1}”（{2}）已取消，原因：{3}。"
    )


# --- delivery rules -------------------------------------------------------------------


def test_console_delivery_logs_the_text_and_clears_the_link(make, caplog):
    activity = make.activity(title="果树修剪")
    register(activity, PHONES[0])
    with caplog.at_level(logging.WARNING, logger="sciweek.sms"):
        [outcome] = deliver_all()
    assert outcome.status == OutboxStatus.SENT
    [message] = outbox_rows()
    assert message.status == OutboxStatus.SENT
    assert message.sent_at is not None
    assert message.sealed is None
    assert message.attempts == 1
    assert message.segments == 2
    [record] = [r.getMessage() for r in caplog.records if r.name == "sciweek.sms"]
    assert "2 segment(s)" in record
    assert "【科普报名】报名成功：“果树修剪”" in record
    assert "https://sciweek.example.cn/t/" in record
    # Delivering again changes nothing: it is no longer due.
    assert delivery.deliver_one(message.id, now=DAYTIME).status is None


@pytest.mark.parametrize(
    ("now", "until"),
    [
        (local(2026, 12, 1, 21, 0), local(2026, 12, 2, 8, 0)),
        (local(2026, 12, 1, 23, 59), local(2026, 12, 2, 8, 0)),
        (local(2026, 12, 2, 3, 0), local(2026, 12, 2, 8, 0)),
        (local(2026, 12, 2, 7, 59), local(2026, 12, 2, 8, 0)),
        (local(2026, 12, 2, 8, 0), None),
        (local(2026, 12, 2, 20, 59), None),
    ],
)
def test_quiet_hours_window(now, until):
    assert delivery.quiet_until(now, (21 * 60, 8 * 60)) == until


def test_messages_at_night_are_deferred_until_morning_not_dropped(make):
    activity = make.activity()
    register(activity, PHONES[0])
    [outcome] = deliver_all(now=local(2026, 12, 1, 22, 30))
    assert outcome.status == OutboxStatus.DEFERRED
    [message] = outbox_rows()
    assert message.next_attempt_at == local(2026, 12, 2, 8)
    assert message.attempts == 0
    assert delivery.deliver_one(message.id, now=local(2026, 12, 2, 7, 59)).status is None
    assert delivery.deliver_one(message.id, now=local(2026, 12, 2, 8, 1)).status == "sent"


def test_daily_cap_per_phone_skips_with_the_reason(make, app):
    app.config["SCIWEEK_SMS_DAILY_CAP"] = 2
    for _ in range(3):
        register(make.activity(), PHONES[0])
    register(make.activity(), PHONES[1])
    outcomes = deliver_all()
    assert [o.status for o in outcomes] == ["sent", "sent", "skipped", "sent"]
    assert outbox_rows()[2].reason == "daily_cap"
    # A new local day, a new allowance.
    assert db.session.scalar(select(func.sum(SmsDailyCount.sent))) == 3


def test_an_invalid_phone_is_skipped_with_the_reason(make):
    activity = make.activity()
    issued = register(activity, PHONES[0])
    db.session.get(Registration, issued.registration_id)  # purged later: phone replaced
    message = outbox_rows()[0]
    message.recipient = "x0000000001"
    db.session.commit()
    [outcome] = deliver_all()
    assert outcome.status == OutboxStatus.SKIPPED
    assert outbox_rows()[0].reason == "invalid_phone"


@pytest.fixture
def gateway(app):
    fake = FakeGateway().start()
    app.config.update(
        SCIWEEK_SMS_BACKEND="http",
        SCIWEEK_SMS_HTTP_URL=fake.url + "/send",
        SCIWEEK_SMS_HTTP_KEY=fake.key,
        SCIWEEK_SMS_TIMEOUT_SECONDS=2,
        SCIWEEK_SMS_MAX_ATTEMPTS=3,
    )
    app.extensions.pop("sciweek_sms", None)
    yield fake
    fake.stop()


def test_gateway_errors_are_retried_with_backoff_then_failed(make, gateway):
    activity = make.activity()
    register(activity, PHONES[0])
    gateway.fail_next = 5
    [first] = deliver_all()
    assert first.status == OutboxStatus.QUEUED
    assert 30 <= first.retry_in <= 33
    [message] = outbox_rows()
    assert message.attempts == 1
    assert "HTTP 500" in message.last_error
    assert message.next_attempt_at > DAYTIME + timedelta(seconds=29)
    second = delivery.deliver_one(message.id, now=message.next_attempt_at)
    assert second.status == OutboxStatus.QUEUED
    assert 60 <= second.retry_in <= 66
    message = outbox_rows()[0]
    third = delivery.deliver_one(message.id, now=message.next_attempt_at)
    assert third.status == OutboxStatus.FAILED
    message = outbox_rows()[0]
    assert message.reason == "gateway"
    assert message.last_error.startswith("HTTP 500")
    assert message.sealed is None
    assert gateway.delivered == {}
    # The failed tries gave their places back to the daily cap.
    assert db.session.scalar(select(func.sum(SmsDailyCount.sent))) == 0


def test_a_gateway_that_is_down_is_retried_and_nothing_is_lost(make, gateway):
    activity = make.activity()
    register(activity, PHONES[0])
    gateway.stop()  # connection refused
    [outcome] = deliver_all()
    assert outcome.status == OutboxStatus.QUEUED
    assert "ConnectionError" in outbox_rows()[0].last_error


def test_a_refusal_by_the_gateway_fails_at_once(make, gateway, app):
    app.config["SCIWEEK_SMS_HTTP_KEY"] = "wrong"
    app.extensions.pop("sciweek_sms", None)
    register(make.activity(), PHONES[0])
    [outcome] = deliver_all()
    assert outcome.status == OutboxStatus.FAILED
    assert outbox_rows()[0].last_error.startswith("HTTP 401")


def test_the_page_never_waits_for_a_broker_that_is_down(client, make, app):
    app.config["SCIWEEK_BROKER_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    activity = make.activity()
    started = time.monotonic()
    assert post_registration(client, activity, PHONES[0]).status_code == 303
    assert time.monotonic() - started < 3
    [message] = outbox_rows()
    assert message.status == OutboxStatus.QUEUED
    assert message.dispatched_at is None


def test_without_a_broker_messages_go_out_right_after_commit(client, make, app, caplog):
    app.config["NOTIFICATIONS_DELIVER_AFTER_COMMIT"] = True
    app.config["SCIWEEK_SMS_QUIET_HOURS"] = None
    activity = make.activity(title="果树修剪")
    with caplog.at_level(logging.WARNING, logger="sciweek.sms"):
        assert post_registration(client, activity, PHONES[0]).status_code == 303
        wait_until(lambda: statuses() == [OutboxStatus.SENT], what="the in-process delivery")
    assert any("果树修剪" in r.getMessage() for r in caplog.records if r.name == "sciweek.sms")


def test_interrupted_sends_are_repeated_only_through_an_idempotent_backend(make, app):
    register(make.activity(), PHONES[0])
    message = outbox_rows()[0]
    message.status = OutboxStatus.SENDING
    message.claimed_at = utcnow() - timedelta(seconds=3600)
    db.session.commit()
    assert delivery.recover_interrupted() == 1  # console: idempotent
    assert outbox_rows()[0].status == OutboxStatus.QUEUED
    message = outbox_rows()[0]
    message.status = OutboxStatus.SENDING
    db.session.commit()
    app.config.update(
        SCIWEEK_SMS_BACKEND="tencent",
        SCIWEEK_SMS_TENCENT_SECRET_ID="id",
        SCIWEEK_SMS_TENCENT_SECRET_KEY="key",
        SCIWEEK_SMS_TENCENT_APP_ID="1400000000",
    )
    app.extensions.pop("sciweek_sms", None)
    assert delivery.recover_interrupted() == 1
    message = outbox_rows()[0]
    assert (message.status, message.reason) == (OutboxStatus.FAILED, "interrupted")


# --- the delivery log -----------------------------------------------------------------


def test_outbox_command_prints_the_json_contract(runner, make):
    activity = make.activity()
    other = make.activity()
    register(activity, "13800138000")
    register(other, "13800138001")
    deliver_all()
    result = runner.invoke(args=["outbox", "--activity", str(activity.id), "--format", "json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert set(row) == {
        "id", "event", "channel", "to", "activity_id", "registration_id",
        "status", "created_at", "sent_at",
    }  # fmt: skip
    assert row["to"] == "138****8000"
    assert row["event"] == "confirmed"
    assert row["channel"] == "sms"
    assert row["status"] == "sent"
    assert row["sent_at"]
    result = runner.invoke(args=["outbox", "--status", "queued", "--format", "json"])
    assert json.loads(result.output) == []
    result = runner.invoke(args=["outbox", "--status", "bogus", "--format", "json"])
    assert result.exit_code == 2


def test_outbox_deliver_command_sends_what_is_due(runner, make, app):
    app.config["SCIWEEK_SMS_QUIET_HOURS"] = None
    register(make.activity(), PHONES[0])
    result = runner.invoke(args=["outbox-deliver"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {"sent": 1}
    assert outbox_rows()[0].status == OutboxStatus.SENT


def test_organizers_see_counts_and_people_notified(client, make, auth):
    department = make.department()
    activity = make.activity(departments=[department], capacity=1)
    for phone in PHONES[:3]:
        register(activity, phone)
    outbox_rows()[1].recipient = "bad"
    db.session.commit()
    deliver_all()
    organizer = make.user("organizer", department=department)
    auth.login(organizer)
    page = client.get(f"/manage/activities/{activity.id}/notifications")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "已通知 2 人" in html
    assert 'data-status="sent">2<' in html
    assert 'data-status="skipped">1<' in html
    assert "手机号无效" in html
    assert "139****0000" in html
    assert PHONES[0] not in html
    edit = client.get(f"/manage/activities/{activity.id}/edit").get_data(as_text=True)
    assert "已通知 2 人" in edit
    auth.logout()
    auth.login(make.user("organizer"))  # another department
    assert client.get(f"/manage/activities/{activity.id}/notifications").status_code == 403


def test_an_answer_does_not_overwrite_a_claim_the_sweep_gave_up(make, app, monkeypatch):
    register(make.activity(), PHONES[0])
    register(make.activity(), PHONES[1])
    backend = sms_backend(app)
    send = backend.send

    def slow_send(sms):
        # While the gateway takes its time, the sweep recovers the first claim as stale.
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.recipient == PHONES[0])
            .values(status=OutboxStatus.QUEUED, claimed_at=None)
        )
        db.session.commit()
        return send(sms)

    monkeypatch.setattr(backend, "send", slow_send)
    ids = [m.id for m in outbox_rows()]
    db.session.rollback()
    outcomes = delivery.deliver(ids, now=DAYTIME)
    assert [o.status for o in outcomes] == [None, OutboxStatus.SENT]
    assert [m.status for m in outbox_rows()] == [OutboxStatus.QUEUED, OutboxStatus.SENT]
