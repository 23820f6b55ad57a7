"""E-mail to staff accounts: the SMTP backend against a real SMTP server (aiosmtpd on
127.0.0.1), the outbox path (sealed links, dedupe keys, retries, failed), the console
backend, the texts and the settings. The live Celery worker delivering an e-mail is in
tests/test_notifications_worker.py."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from sciweek import config
from sciweek.config import ConfigError
from sciweek.extensions import db
from sciweek.models import (
    Channel,
    NotificationEvent,
    OutboxMessage,
    OutboxStatus,
    SmsDailyCount,
)
from sciweek.notifications import delivery, outbox, sealing, staff_mail
from sciweek.notifications.backends import GatewayError
from sciweek.notifications.mail import Email, SmtpBackend, mask_email
from sciweek.notifications.services import log_rows

from .conftest import local
from .fake_smtp import FakeSmtpServer, free_port
from .waiting import wait_until

SENDER = "科普活动周 <noreply@kp.example.gov.cn>"
LINK = "https://sciweek.example.cn/account/set-password/Zm9vYmFyLXNlY3JldC10b2tlbg"
DAYTIME = local(2026, 12, 1, 10)
NIGHT = local(2026, 12, 1, 23, 30)  # inside the SMS quiet hours


@pytest.fixture
def smtp():
    server = FakeSmtpServer().start()
    yield server
    server.stop()


def smtp_settings(port: int, **overrides) -> dict:
    return {
        "SCIWEEK_SMTP_HOST": "127.0.0.1",
        "SCIWEEK_SMTP_PORT": port,
        "SCIWEEK_SMTP_USERNAME": "",
        "SCIWEEK_SMTP_PASSWORD": "",
        "SCIWEEK_SMTP_STARTTLS": False,
        "SCIWEEK_SMTP_SSL": False,
        "SCIWEEK_SMTP_TIMEOUT_SECONDS": 5,
        "SCIWEEK_MAIL_FROM": SENDER,
        **overrides,
    }


def use_smtp(app, port: int, **overrides) -> None:
    """Switch the app's e-mail channel to SMTP on ``port`` (the backend is made anew)."""
    app.config.update(SCIWEEK_MAIL_BACKEND="smtp", **smtp_settings(port, **overrides))
    app.extensions.pop("sciweek_mail", None)


def text_of(message) -> str:
    """The body as the reader sees it (line ends as in the code)."""
    return message.get_content().replace("\r\n", "\n")


def email(key="set_password::1:u7", to="zhang.san@example.gov.cn") -> Email:
    return Email(
        key=key,
        to=to,
        subject="请设置您的账号密码",
        body=f"张三，您好：\n\n请打开下面的链接设置密码：\n\n{LINK}\n",
        date=DAYTIME,
    )


# --- the SMTP backend against a real server ---------------------------------------------


def test_smtp_delivers_utf8_subject_sender_name_and_body(smtp):
    receipt = SmtpBackend(smtp_settings(smtp.port)).send(email())
    [got] = smtp.received
    assert got.mail_from == "noreply@kp.example.gov.cn"
    assert got.rcpt_tos == ["zhang.san@example.gov.cn"]
    message = got.message
    assert message["Subject"] == "请设置您的账号密码"
    assert message["From"].addresses[0].display_name == "科普活动周"
    assert message["From"].addresses[0].addr_spec == "noreply@kp.example.gov.cn"
    assert message["To"] == "zhang.san@example.gov.cn"
    assert message.get_content_charset() == "utf-8"
    assert text_of(message) == email().body
    assert message["Date"].datetime == DAYTIME
    assert message["Message-ID"].endswith("@kp.example.gov.cn>")
    assert receipt.ref == message["Message-ID"]
    # On the wire all is ASCII (RFC 2047 encoded words, a base64 body): every server takes it.
    assert got.raw.isascii()
    assert b"\r\nSubject: =?utf-8?" in got.raw
    # A retry of the same outbox message carries the same Message-ID; another does not.
    SmtpBackend(smtp_settings(smtp.port)).send(email())
    SmtpBackend(smtp_settings(smtp.port)).send(email(key="set_password::2:u7"))
    ids = [m["Message-ID"] for m in smtp.messages()]
    assert ids[0] == ids[1] != ids[2]


def test_smtp_logs_in_when_a_user_name_is_set():
    server = FakeSmtpServer(users={"mailer": "s3cret-pass"}).start()
    try:
        settings = smtp_settings(
            server.port, SCIWEEK_SMTP_USERNAME="mailer", SCIWEEK_SMTP_PASSWORD="s3cret-pass"
        )
        SmtpBackend(settings).send(email())
        assert [r.login for r in server.received] == ["mailer"]
        with pytest.raises(GatewayError) as caught:
            SmtpBackend({**settings, "SCIWEEK_SMTP_PASSWORD": "wrong"}).send(email())
        assert caught.value.answer.startswith("SMTP 535")
        assert caught.value.retryable is False
        assert len(server.received) == 1
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("stage", "answer", "retryable"),
    [
        ("DATA", "451 4.7.1 Greylisted, please try again later", True),
        ("RCPT", "452 4.2.2 Mailbox full", True),
        ("RCPT", "550 5.1.1 No such user here", False),
        ("DATA", "554 5.7.1 Message rejected as spam", False),
    ],
)
def test_smtp_answers_4xx_retry_and_5xx_fail_with_the_answer(smtp, stage, answer, retryable):
    smtp.fail_next, smtp.fail_at, smtp.fail_answer = 1, stage, answer
    with pytest.raises(GatewayError) as caught:
        SmtpBackend(smtp_settings(smtp.port)).send(email())
    assert caught.value.answer == f"SMTP {answer[:3]}: {answer[4:]}"
    assert caught.value.retryable is retryable
    assert smtp.received == []


def test_smtp_refused_connection_is_retried():
    with pytest.raises(GatewayError) as caught:
        SmtpBackend(smtp_settings(free_port())).send(email())
    assert caught.value.retryable is True
    assert "ConnectionRefusedError" in caught.value.answer


def test_smtp_starttls_asked_of_a_server_without_it_fails_without_sending(smtp):
    with pytest.raises(GatewayError) as caught:
        SmtpBackend(smtp_settings(smtp.port, SCIWEEK_SMTP_STARTTLS=True)).send(email())
    assert caught.value.retryable is False
    assert "STARTTLS" in caught.value.answer
    assert smtp.received == []


# --- the outbox path ---------------------------------------------------------------------


def staff(make, email_address="zhang.san@example.gov.cn", role="organizer"):
    user = make.user(role)
    user.display_name = "张三"
    user.email = email_address
    db.session.commit()
    return user


def rows() -> list[OutboxMessage]:
    db.session.expire_all()
    found = list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    return found


def deliver_due(now=DAYTIME) -> list:
    ids = db.session.scalars(
        select(OutboxMessage.id)
        .where(OutboxMessage.status.in_([OutboxStatus.QUEUED, OutboxStatus.DEFERRED]))
        .order_by(OutboxMessage.id)
    ).all()
    db.session.rollback()
    return delivery.deliver(list(ids), now=now)


def test_set_password_email_goes_through_the_outbox_with_its_link_sealed(app, make, smtp):
    use_smtp(app, smtp.port)
    user = staff(make)
    assert staff_mail.enqueue_set_password_email(user, LINK, version=1) is True
    db.session.commit()
    [message] = rows()
    assert message.channel == Channel.EMAIL
    assert message.event == NotificationEvent.SET_PASSWORD
    assert message.recipient == "zhang.san@example.gov.cn"
    assert message.user_id == user.id
    assert message.dedupe_key == f"set_password::1:u{user.id}"
    # The link is nowhere in clear, only sealed with the app's key.
    stored = json.dumps(message.params) + message.dedupe_key + (message.sealed or "")
    assert "Zm9vYmFyLXNlY3JldC10b2tlbg" not in stored
    assert sealing.unseal(app.config["SECRET_KEY"], message.sealed) == {"link": LINK}

    [outcome] = deliver_due()
    assert outcome.status == OutboxStatus.SENT
    [got] = smtp.received
    assert got.rcpt_tos == ["zhang.san@example.gov.cn"]
    assert got.message["Subject"] == "请设置您的账号密码"
    body = text_of(got.message)
    assert body.startswith("张三，您好")
    assert f"用户名：{user.username}" in body
    assert "请在24小时内" in body
    assert LINK in body
    [message] = rows()
    assert message.status == OutboxStatus.SENT
    assert message.sealed is None  # the link is not kept once sent
    assert message.provider_ref == got.message["Message-ID"]
    assert message.attempts == 1


def test_the_same_email_is_never_written_or_sent_twice(app, make, smtp):
    use_smtp(app, smtp.port)
    user = staff(make)
    assert staff_mail.enqueue_set_password_email(user, LINK, version=5) is True
    assert staff_mail.enqueue_set_password_email(user, LINK, version=5) is False
    db.session.commit()
    # A retried request: still the one message, still waiting (not replaced by itself).
    assert staff_mail.enqueue_set_password_email(user, LINK, version=5) is False
    db.session.commit()
    [message] = rows()
    assert message.status == OutboxStatus.QUEUED
    assert delivery.deliver_one(message.id, now=DAYTIME).status == OutboxStatus.SENT
    assert deliver_due() == []
    assert delivery.deliver_one(message.id, now=DAYTIME).status is None  # done: not again
    assert len(smtp.received) == 1


def test_a_newer_link_replaces_a_waiting_older_one(app, make, smtp):
    use_smtp(app, smtp.port)
    user, other = staff(make), staff(make, "li.si@example.gov.cn")
    staff_mail.enqueue_set_password_email(user, LINK + "-old", version=1)
    staff_mail.enqueue_set_password_email(other, LINK + "-other", version=1)
    db.session.commit()
    staff_mail.enqueue_password_reset_email(user, version=2, link=LINK + "-new")
    db.session.commit()
    statuses = [(m.recipient, m.status, m.reason, m.sealed is None) for m in rows()]
    assert statuses == [
        ("zhang.san@example.gov.cn", OutboxStatus.SKIPPED, "superseded", True),
        ("li.si@example.gov.cn", OutboxStatus.QUEUED, "", False),
        ("zhang.san@example.gov.cn", OutboxStatus.QUEUED, "", False),
    ]
    deliver_due()
    bodies = {m["To"]: text_of(m) for m in smtp.messages()}
    assert LINK + "-new" in bodies["zhang.san@example.gov.cn"]
    assert LINK + "-old" not in bodies["zhang.san@example.gov.cn"]
    assert LINK + "-other" in bodies["li.si@example.gov.cn"]


def test_a_temporary_answer_is_retried_then_sent(app, make, smtp):
    use_smtp(app, smtp.port)
    staff_mail.enqueue_set_password_email(staff(make), LINK, version=1)
    db.session.commit()
    smtp.fail_next = 1  # 451 greylisting
    [outcome] = deliver_due()
    assert outcome.status == OutboxStatus.QUEUED
    assert outcome.retry_in >= app.config["SCIWEEK_SMS_RETRY_SECONDS"]
    [message] = rows()
    assert message.last_error == "SMTP 451: 4.7.1 Greylisted, please try again later"
    assert message.sealed is not None  # kept for the retry
    assert deliver_due(DAYTIME)[0].status is None  # not claimed before its time
    assert smtp.received == []
    [outcome] = deliver_due(DAYTIME + timedelta(seconds=outcome.retry_in + 1))
    assert outcome.status == OutboxStatus.SENT
    assert rows()[0].attempts == 2
    assert len(smtp.received) == 1
    assert LINK in text_of(smtp.messages()[0])


def test_a_permanent_answer_fails_the_message_with_the_servers_words(app, make, smtp):
    use_smtp(app, smtp.port)
    staff_mail.enqueue_set_password_email(staff(make), LINK, version=1)
    db.session.commit()
    smtp.fail_next, smtp.fail_at = 1, "RCPT"
    smtp.fail_answer = "550 5.1.1 <zhang.san@example.gov.cn>: Recipient address rejected"
    [outcome] = deliver_due()
    assert outcome.status == OutboxStatus.FAILED
    [message] = rows()
    assert message.reason == "mail_server"
    assert message.last_error == (
        "SMTP 550: 5.1.1 <zhang.san@example.gov.cn>: Recipient address rejected"
    )
    assert message.sealed is None
    assert message.attempts == 1
    assert smtp.received == []


def test_a_refused_connection_is_retried_until_the_last_attempt(app, make):
    use_smtp(app, free_port())  # nobody listens
    app.config["SCIWEEK_SMS_MAX_ATTEMPTS"] = 2
    staff_mail.enqueue_set_password_email(staff(make), LINK, version=1)
    db.session.commit()
    [first] = deliver_due()
    assert first.status == OutboxStatus.QUEUED
    assert "ConnectionRefusedError" in rows()[0].last_error
    [second] = deliver_due(DAYTIME + timedelta(hours=2))
    assert second.status == OutboxStatus.FAILED
    [message] = rows()
    assert (message.attempts, message.reason) == (2, "mail_server")


def test_quiet_hours_and_the_daily_cap_are_for_sms_only(app, make, smtp):
    use_smtp(app, smtp.port)
    app.config["SCIWEEK_SMS_DAILY_CAP"] = 1
    user = staff(make)
    staff_mail.enqueue_set_password_email(user, LINK, version=1)
    staff_mail.enqueue_staff_email(user, "角色已变更", "您的角色已改为组织者。", key="role-1")
    staff_mail.enqueue_staff_email(user, "账号提醒", "请及时登录。", key="note-1")
    db.session.commit()
    outcomes = deliver_due(NIGHT)  # 23:30: an SMS would wait until 08:00
    assert [o.status for o in outcomes] == [OutboxStatus.SENT] * 3
    assert len(smtp.received) == 3
    assert db.session.scalars(select(SmsDailyCount)).all() == []


def test_a_staff_email_of_the_sender_words_carries_its_link_sealed(app, make, smtp):
    use_smtp(app, smtp.port)
    user = staff(make)
    url = "https://sciweek.example.cn/account/confirm/c2VjcmV0"
    staff_mail.enqueue_staff_email(
        user, "请确认新邮箱", "请打开下面的链接确认。", key="confirm-3", secret_url=url
    )
    db.session.commit()
    [message] = rows()
    assert message.event == NotificationEvent.STAFF_EMAIL
    assert "c2VjcmV0" not in json.dumps(message.params) + message.dedupe_key
    deliver_due()
    [got] = smtp.messages()
    assert got["Subject"] == "请确认新邮箱"
    assert text_of(got) == f"请打开下面的链接确认。\n\n{url}\n"


def test_a_reset_code_email_in_chinese_and_in_english(app, make, smtp):
    use_smtp(app, smtp.port)
    user = staff(make)
    staff_mail.enqueue_password_reset_email(user, version="r1", code="482913", minutes=15)
    db.session.commit()
    [message] = rows()
    assert "482913" not in json.dumps(message.params) + message.dedupe_key
    deliver_due()
    [zh] = smtp.messages()
    assert zh["Subject"] == "重置密码验证码：482913"
    assert "15分钟内有效" in text_of(zh)
    # A site whose default language is English sends it in English.
    app.config["BABEL_DEFAULT_LOCALE"] = "en"
    staff_mail.enqueue_password_reset_email(user, version="r2", link=LINK)
    staff_mail.enqueue_set_password_email(staff(make, "wang@example.gov.cn"), LINK, version=1)
    db.session.commit()
    deliver_due()
    reset, welcome = smtp.messages()[1:]
    assert reset["Subject"] == "Reset your password"
    assert "within 30 minutes" in text_of(reset)
    assert LINK in text_of(reset)
    assert welcome["Subject"] == "Set your account password"
    assert "within 24 hours" in text_of(welcome)


def test_email_goes_to_staff_accounts_with_an_address_only(make):
    citizen = make.user("citizen")
    citizen.email = "someone@example.com"
    no_address = make.user("checker")
    db.session.commit()
    with pytest.raises(ValueError, match="staff"):
        staff_mail.enqueue_set_password_email(citizen, LINK, version=1)
    with pytest.raises(ValueError, match="no e-mail address"):
        staff_mail.enqueue_password_reset_email(no_address, version=1, code="123456")
    with pytest.raises(ValueError, match="link or a code"):
        staff_mail.enqueue_password_reset_email(staff(make), version=1)
    db.session.rollback()
    assert rows() == []


def test_an_unusable_address_is_skipped_not_sent(app, make, smtp):
    use_smtp(app, smtp.port)
    outbox.enqueue(
        NotificationEvent.STAFF_EMAIL,
        key="staff_email::x:u1",
        recipient="zhang san@example.gov.cn\r\nBcc: all@example.gov.cn",
        channel=Channel.EMAIL,
        template="staff_email",
        params={"subject": "x", "body": "y"},
    )
    db.session.commit()
    [outcome] = deliver_due()
    assert outcome.status == OutboxStatus.SKIPPED
    assert rows()[0].reason == "invalid_email"
    assert smtp.received == []


def test_console_backend_logs_the_email(app, make, caplog):
    assert app.config["SCIWEEK_MAIL_BACKEND"] == "console"
    staff_mail.enqueue_set_password_email(staff(make), LINK, version=1)
    db.session.commit()
    with caplog.at_level(logging.WARNING, logger="sciweek.mail"):
        [outcome] = deliver_due()
    assert outcome.status == OutboxStatus.SENT
    [record] = [r.getMessage() for r in caplog.records if r.name == "sciweek.mail"]
    assert "zhang.san@example.gov.cn" in record
    assert "请设置您的账号密码" in record
    assert LINK in record
    assert rows()[0].sealed is None


def test_without_a_broker_an_email_goes_out_right_after_commit(app, make, smtp):
    """``make run``: no worker; the web process delivers in a thread after the commit."""
    use_smtp(app, smtp.port)
    app.config["NOTIFICATIONS_DELIVER_AFTER_COMMIT"] = True
    staff_mail.enqueue_password_reset_email(staff(make), version=1, link=LINK)
    assert smtp.received == []  # nothing inside the transaction
    db.session.commit()
    wait_until(lambda: smtp.received, what="the in-process delivery")
    wait_until(lambda: [m.status for m in rows()] == [OutboxStatus.SENT], what="recorded")
    db.session.rollback()
    assert LINK in text_of(smtp.messages()[0])


def test_an_interrupted_smtp_send_is_failed_not_repeated_while_sms_is_resent(app, make):
    """SMTP is not idempotent (a repeat is a second copy); the console SMS backend is."""
    use_smtp(app, free_port())
    user = staff(make)
    staff_mail.enqueue_set_password_email(user, LINK, version=1)
    outbox.enqueue(
        NotificationEvent.VERIFICATION, key="verification::1:p1", recipient="13800138000"
    )
    db.session.commit()
    long_ago = DAYTIME - timedelta(hours=1)
    db.session.execute(
        update(OutboxMessage).values(status=OutboxStatus.SENDING, claimed_at=long_ago)
    )
    db.session.commit()
    assert delivery.recover_interrupted(DAYTIME) == 2
    mail, sms = rows()
    assert (mail.channel, mail.status, mail.reason) == (
        Channel.EMAIL,
        OutboxStatus.FAILED,
        "interrupted",
    )
    assert mail.sealed is None
    assert (sms.channel, sms.status) == (Channel.SMS, OutboxStatus.QUEUED)


def test_the_delivery_log_masks_addresses(make):
    staff_mail.enqueue_set_password_email(staff(make), LINK, version=1)
    db.session.commit()
    [row] = log_rows()
    assert (row.channel, row.to, row.event) == ("email", "z***@example.gov.cn", "set_password")
    assert mask_email("not-an-address") == ""


# --- settings ------------------------------------------------------------------------------


def load(monkeypatch, tmp_path, **environment) -> dict:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return config.load_config(str(tmp_path))


def test_mail_settings_default_to_the_console(monkeypatch, tmp_path):
    settings = load(monkeypatch, tmp_path)
    assert settings["SCIWEEK_MAIL_BACKEND"] == "console"
    assert settings["SCIWEEK_SMTP_STARTTLS"] is True
    assert settings["SCIWEEK_SMTP_PORT"] == 587


def test_smtp_settings_from_the_environment(monkeypatch, tmp_path):
    settings = load(
        monkeypatch,
        tmp_path,
        SCIWEEK_MAIL_BACKEND="smtp",
        SCIWEEK_SMTP_HOST="smtp.example.gov.cn",
        SCIWEEK_SMTP_SSL="yes",
        SCIWEEK_SMTP_USERNAME="noreply",
        SCIWEEK_SMTP_PASSWORD="pw",
        SCIWEEK_MAIL_FROM=SENDER,
    )
    assert settings["SCIWEEK_SMTP_SSL"] is True
    assert settings["SCIWEEK_SMTP_STARTTLS"] is False  # SMTPS instead
    assert settings["SCIWEEK_SMTP_PORT"] == 465
    assert settings["SCIWEEK_MAIL_FROM"] == SENDER


@pytest.mark.parametrize(
    ("environment", "named"),
    [
        ({"SCIWEEK_MAIL_BACKEND": "smtp"}, "SCIWEEK_SMTP_HOST"),
        ({"SCIWEEK_MAIL_BACKEND": "sendmail"}, "SCIWEEK_MAIL_BACKEND"),
        ({"SCIWEEK_SMTP_SSL": "1", "SCIWEEK_SMTP_STARTTLS": "1"}, "SCIWEEK_SMTP_SSL"),
        ({"SCIWEEK_SMTP_STARTTLS": "maybe"}, "SCIWEEK_SMTP_STARTTLS"),
        ({"SCIWEEK_MAIL_FROM": "科普活动周"}, "SCIWEEK_MAIL_FROM"),
        ({"SCIWEEK_SMTP_PORT": "0"}, "SCIWEEK_SMTP_PORT"),
    ],
)
def test_unclear_mail_settings_refuse_to_start(monkeypatch, tmp_path, environment, named):
    with pytest.raises(ConfigError, match=named):
        load(monkeypatch, tmp_path, **environment)
