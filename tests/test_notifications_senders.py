"""The senders on top of the outbox: reminders the day before, an organizer's broadcast,
a coordinator's invitations of untrained cadres, 退订 (opt-out) and their delivery logs.

Delivery runs in the test's process (``delivery.deliver_one``), as in
tests/test_notifications.py.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from sciweek import create_app, jobs
from sciweek.config import ConfigError
from sciweek.extensions import db
from sciweek.i18n import to_local
from sciweek.manage.services import cancel_activity
from sciweek.models import (
    Broadcast,
    InvitationBatch,
    NotificationEvent,
    OutboxMessage,
    OutboxStatus,
    SmsPreference,
    utcnow,
)
from sciweek.notifications import broadcasts, delivery, optout, tasks
from sciweek.notifications.reminders import enqueue_reminders
from sciweek.registration.services import (
    RegistrationRequest,
    cancel_registration,
    register_for_activity,
)

from .conftest import local
from .test_notifications import DAYTIME, PHONES, _move, outbox_rows, register
from .training_helpers import attend, cadre, training

OPT_OUT_LINK = re.compile(r"https://sciweek\.example\.cn/u/([A-Za-z0-9_-]{11})$")


def deliver(event=None, now=DAYTIME, status=OutboxStatus.QUEUED) -> list:
    """Deliver the messages (of ``event``) in ``status``, at ``now``."""
    stmt = select(OutboxMessage.id).where(OutboxMessage.status == status)
    if event is not None:
        stmt = stmt.where(OutboxMessage.event == event)
    ids = db.session.scalars(stmt.order_by(OutboxMessage.id)).all()
    db.session.rollback()
    return [delivery.deliver_one(i, now=now) for i in ids]


@pytest.fixture
def console_texts(caplog):
    """The texts the console backend delivered, by phone."""

    def texts() -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for record in caplog.records:
            if record.name == "sciweek.sms":
                match = re.match(r"SMS to (1[0-9]{10}) .*?: (【.*)$", record.getMessage())
                if match:
                    found.setdefault(match.group(1), []).append(match.group(2))
        return found

    caplog.set_level("WARNING", logger="sciweek.sms")
    return texts


def opt_out_by_link(client, text: str) -> str:
    token = OPT_OUT_LINK.search(text).group(1)
    page = client.get(f"/u/{token}")
    assert page.status_code == 200
    assert "退订" in page.get_data(as_text=True)
    response = client.post(f"/u/{token}", data={"choice": "out"})
    assert response.status_code == 302
    return token


# --- reminders the day before -------------------------------------------------------------


def test_reminders_go_to_confirmed_registrants_of_tomorrows_sessions_once(make, app):
    now = local(2026, 12, 9, 18)  # the job's hour, the day before 12月10日
    activity = make.activity(
        title="果树修剪",
        capacity=2,
        sessions=[
            (local(2026, 12, 10, 9), local(2026, 12, 10, 11)),
            (local(2026, 12, 11, 9), local(2026, 12, 11, 11)),  # the day after: not yet
        ],
    )
    confirmed = [register(activity, p) for p in PHONES[:2]]
    register(activity, PHONES[2])  # waitlisted: no reminder
    cancel_registration(confirmed[1].registration_id)  # PHONES[2] is promoted
    db.session.commit()
    late_evening = make.activity(
        sessions=[(local(2026, 12, 10, 23, 30), local(2026, 12, 10, 23, 59))]
    )
    register(late_evening, PHONES[3])
    cancelled = make.activity(status="cancelled")
    with_cancelled_session = make.activity()
    register(with_cancelled_session, PHONES[4])
    with_cancelled_session.sessions[0].cancelled_at = utcnow()
    db.session.commit()
    outbox_before = len(outbox_rows())
    db.session.rollback()  # SQLite: no read transaction held while the job writes

    # The job run twice (a repeat, a catch-up) writes each reminder once.
    assert jobs.run_now(app, tasks.REMINDERS_JOB, now.isoformat()) == 3
    assert jobs.run_now(app, tasks.REMINDERS_JOB, now.isoformat()) == 0
    rows = outbox_rows(event=NotificationEvent.REMINDER)
    assert len(outbox_rows()) == outbox_before + 3
    session = activity.sessions[0]
    by_phone = {m.recipient: m for m in rows}
    assert sorted(by_phone) == [PHONES[0], PHONES[2], PHONES[3]]
    reg = confirmed[0].registration_id
    assert by_phone[PHONES[0]].dedupe_key == f"reminder:s{session.id}:0:r{reg}"
    assert by_phone[PHONES[0]].params["starts_at"] == session.starts_at.isoformat()
    assert cancelled.id not in {m.activity_id for m in rows}


def test_without_beat_the_reminders_command_writes_them_once(runner, make):
    register(make.activity(), PHONES[0])  # its session: 12月10日09:00
    db.session.rollback()
    command = ["outbox-reminders", "--now", "2026-12-09T18:00"]
    first = runner.invoke(args=command)
    assert first.exit_code == 0, first.output
    assert first.output.strip() == '{"reminders": 1}'
    assert runner.invoke(args=command).output.strip() == '{"reminders": 0}'
    assert runner.invoke(args=["outbox-reminders", "--now", "2026-12-08T18:00"]).output.strip() == (
        '{"reminders": 0}'
    )
    [reminder] = outbox_rows(event=NotificationEvent.REMINDER)
    assert reminder.recipient == PHONES[0]


def test_a_reminder_says_when_and_where_and_offers_opt_out(make, console_texts):
    activity = make.activity(title="果树修剪", venue="文化礼堂")
    register(activity, PHONES[0])
    enqueue_reminders(local(2026, 12, 9, 18))
    db.session.commit()
    [outcome] = deliver(NotificationEvent.REMINDER)
    assert outcome.status == OutboxStatus.SENT
    [text] = console_texts()[PHONES[0]][-1:]
    assert text.startswith("【科普报名】活动提醒：“果树修剪”12月10日09:00开始，地点文化礼堂")
    assert OPT_OUT_LINK.search(text)


def test_reminders_wait_for_the_end_of_quiet_hours(make):
    activity = make.activity()
    register(activity, PHONES[0])
    enqueue_reminders(local(2026, 12, 9, 18))
    db.session.commit()
    [outcome] = deliver(NotificationEvent.REMINDER, now=local(2026, 12, 9, 22))
    assert outcome.status == OutboxStatus.DEFERRED
    [reminder] = outbox_rows(event=NotificationEvent.REMINDER)
    assert to_local(reminder.next_attempt_at) == local(2026, 12, 10, 8)


def test_the_reminder_job_runs_daily_at_the_configured_local_hour(tmp_path, monkeypatch):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    default = create_app({"TESTING": True}).extensions["celery"]
    entry = default.conf.beat_schedule[tasks.REMINDERS_JOB]
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({18}, {0})
    assert default.conf.timezone == "Asia/Shanghai"
    monkeypatch.setenv("SCIWEEK_SMS_REMINDER_AT", "07:30")
    early = create_app({"TESTING": True}).extensions["celery"]
    schedule = early.conf.beat_schedule[tasks.REMINDERS_JOB]["schedule"]
    assert (schedule.hour, schedule.minute) == ({7}, {30})
    # Beat's own arithmetic: after a run at 07:30 local the next is the next day at 07:30.
    last_run = local(2026, 12, 9, 7, 30)
    _last, step, _now = schedule.remaining_delta(last_run)
    assert last_run + step == local(2026, 12, 10, 7, 30)
    monkeypatch.setenv("SCIWEEK_SMS_REMINDER_AT", "25:00")
    with pytest.raises(ConfigError):
        create_app({"TESTING": True})


# --- opt-out --------------------------------------------------------------------------------


def test_opting_out_skips_reminders_but_never_changes_or_cancellations(
    client, make, auth, console_texts
):
    activity = make.activity(title="果树修剪")
    register(activity, PHONES[0])
    deliver()
    enqueue_reminders(local(2026, 12, 9, 18))
    db.session.commit()
    deliver()
    token = opt_out_by_link(client, console_texts()[PHONES[0]][-1])
    page = client.get(f"/u/{token}").get_data(as_text=True)
    assert "您已退订" in page
    assert PHONES[0] not in page
    assert "139****0000" in page
    # The next day's reminder is skipped; a change and a cancellation still reach the person.
    later = make.activity()
    register(later, PHONES[0])
    enqueue_reminders(local(2026, 12, 9, 18))
    db.session.commit()
    auth.login(make.user("admin"))
    assert _move(client, later, "2026-12-12T14:00", "2026-12-12T16:00").status_code == 302
    cancel_activity(activity, "暴雨红色预警")
    db.session.commit()
    outcomes = {o.message_id: o.status for o in deliver()}
    rows = {m.id: m for m in outbox_rows()}
    by_event = {rows[i].event: s for i, s in outcomes.items()}
    assert by_event == {
        NotificationEvent.CONFIRMED: OutboxStatus.SENT,
        NotificationEvent.REMINDER: OutboxStatus.SKIPPED,
        NotificationEvent.CHANGED: OutboxStatus.SENT,
        NotificationEvent.CANCELLED: OutboxStatus.SENT,
    }
    [skipped] = [rows[i] for i, s in outcomes.items() if s == OutboxStatus.SKIPPED]
    assert skipped.reason == "opted_out"
    # And back in: reminders are sent again.
    assert client.post(f"/u/{token}", data={"choice": "in"}).status_code == 302
    assert 'name="choice" value="out"' in client.get(f"/u/{token}").get_data(as_text=True)
    third = make.activity(sessions=[(local(2026, 12, 10, 14), local(2026, 12, 10, 16))])
    register(third, PHONES[0])
    enqueue_reminders(local(2026, 12, 9, 18))
    db.session.commit()
    assert {o.status for o in deliver(NotificationEvent.REMINDER)} == {OutboxStatus.SENT}


def test_an_unknown_opt_out_link_is_not_found(client, make):
    assert client.get("/u/nosuchtoken").status_code == 404
    assert client.post("/u/nosuchtoken", data={"choice": "out"}).status_code == 404
    assert db.session.scalar(select(func.count()).select_from(SmsPreference)) == 0


# --- an organizer's broadcast ---------------------------------------------------------------


@pytest.fixture
def organized(make, auth):
    department = make.department()
    activity = make.activity(title="果树修剪", departments=[department], capacity=2)
    for phone in PHONES[:4]:
        register(activity, phone)  # 2 confirmed, 2 waiting
    regs = outbox_rows(event=NotificationEvent.WAITLISTED)
    cancel_registration(regs[-1].registration_id)  # and one waiting cancels
    db.session.commit()
    organizer = make.user("organizer", department=department)
    auth.login(organizer)
    return activity


def post_broadcast(client, activity, text, step="preview"):
    return client.post(
        f"/manage/activities/{activity.id}/broadcasts", data={"text": text, "step": step}
    )


def test_a_broadcast_is_previewed_then_confirmed_and_written_at_once(client, organized):
    before = len(outbox_rows())
    page = post_broadcast(client, organized, "明天上午改在村委会二楼，请带好身份证。")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "【科普报名】“果树修剪”主办方通知：明天上午改在村委会二楼，请带好身份证。 退订：" in html
    assert "按 2 条短信计费；将发给 3 人" in html
    assert "确认发送给 3 人" in html
    assert len(outbox_rows()) == before  # a preview writes nothing
    response = post_broadcast(client, organized, "明天上午改在村委会二楼，请带好身份证。", "send")
    assert response.status_code == 302
    [sent] = db.session.scalars(select(Broadcast)).all()
    assert sent.recipients == 3
    assert sent.created_by.role == "organizer"
    rows = outbox_rows(event=NotificationEvent.BROADCAST)
    assert sorted(m.recipient for m in rows) == PHONES[:3]
    assert {m.broadcast_id for m in rows} == {sent.id}
    assert {m.dedupe_key for m in rows} == {
        f"broadcast:b{sent.id}:0:r{m.registration_id}" for m in rows
    }
    log = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-status="queued">3<' in log


def test_a_walk_in_without_a_phone_is_not_counted_as_a_recipient(client, organized, make):
    """An elderly villager admitted at the door without a phone gets no SMS: the preview and
    the confirmation must not promise one (they said 将发给 4 人 and wrote 3 messages)."""
    village = make.town(villages=["东村"]).villages[0]
    register_for_activity(
        organized.id,
        RegistrationRequest(name="王大爷", phone="", without_phone=True, village_id=village.id),
        walk_in=True,
        waitlist_when_full=True,
    )
    db.session.commit()
    html = post_broadcast(client, organized, "明天照常。").get_data(as_text=True)
    assert "确认发送给 3 人" in html
    post_broadcast(client, organized, "明天照常。", "send")
    [sent] = db.session.scalars(select(Broadcast)).all()
    assert sent.recipients == 3
    assert len(outbox_rows(event=NotificationEvent.BROADCAST)) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [("   ", "请填写要发送的内容。"), ("字" * 201, "内容最多 200 个字，现在 201 个字")],
)
def test_empty_or_long_broadcasts_are_refused_beside_the_field(client, organized, text, message):
    for step in ("preview", "send"):
        page = post_broadcast(client, organized, text, step)
        assert page.status_code == 200
        assert re.search(r'<p class="error" role="alert">' + message, page.get_data(as_text=True))
    assert db.session.scalar(select(func.count(Broadcast.id))) == 0


def test_broadcasts_are_rate_limited_per_activity_and_hour(client, organized, app):
    assert post_broadcast(client, organized, "第一条", "send").status_code == 302
    assert post_broadcast(client, organized, "第二条", "send").status_code == 302
    for step in ("preview", "send"):
        third = post_broadcast(client, organized, "第三条", step)
        assert third.status_code == 200
        assert "每个活动每小时最多群发 2 次，请稍后再发。" in third.get_data(as_text=True)
        assert "确认发送给" not in third.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Broadcast.id))) == 2
    # An hour later the organizer may send again.
    user = db.session.scalars(select(Broadcast)).first().created_by
    later = utcnow() + timedelta(hours=1, minutes=1)
    broadcasts.send_broadcast(organized, "第三条", user, now=later)
    db.session.commit()
    assert db.session.scalar(select(func.count(Broadcast.id))) == 3


def test_broadcasts_honour_opt_outs_and_quiet_hours_and_count_as_notified(
    client, organized, console_texts
):
    # Only broadcasts are delivered here: the registrations' own messages stay queued.
    post_broadcast(client, organized, "第一条", "send")
    deliver(NotificationEvent.BROADCAST)
    opt_out_by_link(client, console_texts()[PHONES[1]][-1])
    response = post_broadcast(client, organized, "第二条", "send")
    outcomes = deliver(NotificationEvent.BROADCAST, now=local(2026, 12, 1, 21, 30))
    assert {o.status for o in outcomes} == {OutboxStatus.DEFERRED, OutboxStatus.SKIPPED}
    [skipped] = outbox_rows(event=NotificationEvent.BROADCAST, status=OutboxStatus.SKIPPED)
    assert (skipped.recipient, skipped.reason) == (PHONES[1], "opted_out")
    log = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-status="deferred">2<' in log
    assert 'data-status="skipped">1<' in log
    assert "本人已退订：1" in log
    history = client.get(f"/manage/activities/{organized.id}/broadcasts").get_data(as_text=True)
    assert "第一条" in history
    assert "第二条" in history
    edit = client.get(f"/manage/activities/{organized.id}/edit").get_data(as_text=True)
    assert "已通知 3 人" in edit


def test_only_the_activitys_organizers_and_admins_may_broadcast(client, make, auth, organized):
    auth.logout()
    url = f"/manage/activities/{organized.id}/broadcasts"
    assert client.get(url).status_code == 302  # to the log-in page
    checker = make.user("checker")
    checker.assigned_activities.append(organized)
    db.session.commit()
    for user in (make.user("organizer"), checker, make.user("coordinator")):
        auth.login(user)
        assert client.get(url).status_code == 403
        assert post_broadcast(client, organized, "你好", "send").status_code == 403
        auth.logout()
    assert db.session.scalar(select(func.count(Broadcast.id))) == 0
    auth.login(make.user("admin"))
    assert post_broadcast(client, organized, "你好", "send").status_code == 302
    sent = db.session.scalars(select(Broadcast)).one()
    auth.logout()
    auth.login(make.user("organizer"))
    assert client.get(f"/manage/broadcasts/{sent.id}").status_code == 403


def test_a_cancelled_activity_is_not_broadcast_to(client, organized):
    cancel_activity(organized, "暴雨")
    db.session.commit()
    page = post_broadcast(client, organized, "你好", "send")
    assert "活动已取消，不能群发通知。" in page.get_data(as_text=True)


# --- a coordinator's invitations ------------------------------------------------------------


def _soon(days: int):
    today = to_local(utcnow()).date() + timedelta(days=days)
    return (today.year, today.month, today.day)


@pytest.fixture
def town_trainings(make):
    """Town 甲 with cadres (one trained this year, one without a phone, one left), a
    training for 甲, one for another town and one that has begun."""
    town = make.town(name="甲镇", villages=["东村", "西村"])
    other = make.town(name="乙镇", villages=["南村"])
    people = [cadre(town, "东村", name=f"干部{n}", phone=PHONES[n]) for n in range(3)]
    no_phone = cadre(town, "西村", name="无号码", phone=PHONES[8])
    no_phone.phone = None
    db.session.commit()
    cadre(other, name="乙镇干部", phone=PHONES[9])
    trained = cadre(town, "西村", name="已训干部", phone=PHONES[5])
    done = training(make, town, [_soon(-1)])
    done.roster_towns = [town]
    attend(done, trained.phone, cadre_id=trained.id)
    upcoming = training(make, town, [_soon(10), _soon(11)])
    upcoming.title = "果树修剪培训"
    upcoming.roster_towns = [town]
    elsewhere = training(make, other, [_soon(10)])
    elsewhere.roster_towns = [other]
    begun = training(make, town, [_soon(0)])
    # Begun five minutes ago, whatever the time of day (a 09:00-11:00 session moved to
    # "now - 5 min" would end before it starts after 11:00).
    begun.sessions[0].starts_at = utcnow() - timedelta(minutes=5)
    begun.sessions[0].ends_at = utcnow() + timedelta(hours=2)
    begun.roster_towns = [town]
    db.session.commit()
    return town, other, people, upcoming, elsewhere, begun


def post_invite(client, town, activity_id, step="preview"):
    return client.post(
        f"/manage/training/towns/{town.id}/invitations",
        data={"activity_id": str(activity_id), "step": step},
    )


def test_a_coordinator_invites_the_untrained_cadres_once(
    client, make, auth, town_trainings, console_texts
):
    town, _other, people, upcoming, _elsewhere, _begun = town_trainings
    auth.login(make.user("coordinator", town=town))
    page = client.get(f"/manage/training/towns/{town.id}/invitations").get_data(as_text=True)
    assert "果树修剪培训" in page
    preview = post_invite(client, town, upcoming.id).get_data(as_text=True)
    assert "将邀请 3 人。" in preview
    assert "1 人没有有效手机号。" in preview
    assert "已训干部" not in preview
    assert "乙镇干部" not in preview
    assert f"https://sciweek.example.cn/activities/{upcoming.id} 退订：" in preview
    assert outbox_rows(event=NotificationEvent.INVITATION) == []
    response = post_invite(client, town, upcoming.id, "send")
    assert response.status_code == 302
    rows = outbox_rows(event=NotificationEvent.INVITATION)
    assert sorted(m.recipient for m in rows) == PHONES[:3]
    assert {m.dedupe_key for m in rows} == {f"invitation:a{upcoming.id}:0:c{p.id}" for p in people}
    [batch] = db.session.scalars(select(InvitationBatch)).all()
    assert (batch.invited, batch.town_id) == (3, town.id)
    # Sent again (a second click, another coordinator): nobody is invited twice.
    again = post_invite(client, town, upcoming.id)
    assert "将邀请 0 人。" in again.get_data(as_text=True)
    assert "3 人此前已邀请" in again.get_data(as_text=True)
    refused = post_invite(client, town, upcoming.id, "send").get_data(as_text=True)
    assert "没有需要邀请的干部" in refused
    assert len(outbox_rows(event=NotificationEvent.INVITATION)) == 3
    # Delivered: the registration link, 退订; an opted-out cadre is skipped.
    deliver()
    texts = console_texts()
    assert (
        f"报名：https://sciweek.example.cn/activities/{upcoming.id} 退订：" in texts[PHONES[0]][0]
    )
    # A cadre added to the roster later, whose phone opted out (by an earlier link).
    cadre(town, "东村", name="新干部", phone=PHONES[7])
    optout.token_for(PHONES[7])
    optout.set_opted_out(db.session.get(SmsPreference, PHONES[7]), True)
    db.session.commit()
    auth.logout()
    auth.login(make.user("admin"))  # admins: any town
    preview = post_invite(client, town, upcoming.id).get_data(as_text=True)
    assert "将邀请 1 人。" in preview
    assert "其中 1 人已退订，不会收到。" in preview
    post_invite(client, town, upcoming.id, "send")
    [outcome] = deliver()
    assert outcome.status == OutboxStatus.SKIPPED
    second = db.session.scalars(select(InvitationBatch).order_by(InvitationBatch.id)).all()[-1]
    assert second.invited == 1
    log = client.get(f"/manage/invitations/{second.id}").get_data(as_text=True)
    assert 'data-status="skipped">1<' in log
    assert "本人已退订：1" in log


def test_only_trainings_for_the_town_that_have_not_begun_may_be_chosen(
    client, make, auth, town_trainings
):
    town, _other, _people, _upcoming, elsewhere, begun = town_trainings
    auth.login(make.user("coordinator", town=town))
    for activity_id in (elsewhere.id, begun.id, 0):
        page = post_invite(client, town, activity_id, "send")
        assert page.status_code == 200
        assert "请选择一个面向本镇街干部、尚未开始的培训。" in page.get_data(as_text=True)
    page = post_invite(client, town, "x", "send")
    assert page.status_code == 200
    assert re.findall(r'role="alert">([^<]*)', page.get_data(as_text=True)) == [
        "选择无效：无法转化类型。"
    ]
    assert outbox_rows(event=NotificationEvent.INVITATION) == []


def test_invitations_are_for_the_coordinators_own_town(client, make, auth, town_trainings):
    town, other, _people, upcoming, _elsewhere, _begun = town_trainings
    url = f"/manage/training/towns/{town.id}/invitations"
    checker = make.user("checker")
    for user in (make.user("coordinator", town=other), make.user("organizer"), checker):
        auth.login(user)
        assert client.get(url).status_code == 403
        assert post_invite(client, town, upcoming.id, "send").status_code == 403
        auth.logout()
    assert outbox_rows(event=NotificationEvent.INVITATION) == []
    auth.login(make.user("coordinator", town=town))
    post_invite(client, town, upcoming.id, "send")
    batch = db.session.scalars(select(InvitationBatch)).one()
    auth.logout()
    auth.login(make.user("coordinator", town=other))
    assert client.get(f"/manage/invitations/{batch.id}").status_code == 403


def test_invited_cadres_count_as_notified_on_the_training(client, make, auth, town_trainings):
    town, _other, _people, upcoming, _elsewhere, _begun = town_trainings
    auth.login(make.user("coordinator", town=town))
    post_invite(client, town, upcoming.id, "send")
    # Quiet hours hold invitations back until the morning, like every message.
    night = deliver(now=local(2026, 12, 1, 23))
    assert {o.status for o in night} == {OutboxStatus.DEFERRED}
    assert len(night) == 3
    assert {o.status for o in deliver(now=local(2026, 12, 2, 8), status=OutboxStatus.DEFERRED)} == {
        OutboxStatus.SENT
    }
    auth.logout()
    auth.login(make.user("admin"))
    edit = client.get(f"/manage/activities/{upcoming.id}/edit").get_data(as_text=True)
    assert "已通知 3 人" in edit
