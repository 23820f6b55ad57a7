"""Staff accounts and e-mail: set-password links and 忘记密码 reach an account's address
through the e-mail channel of the outbox (issue 14 point 1 with issue 12's staff e-mail)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from sciweek.extensions import db
from sciweek.models import Channel, OutboxMessage, SetPasswordToken

from .test_accounts_admin import NEW_PASSWORD, PHONE, fresh_get, issue_link, sealed_of, token_of

ADDRESS = "li.si@example.gov.cn"


def emails() -> list[OutboxMessage]:
    stmt = select(OutboxMessage).where(OutboxMessage.channel == Channel.EMAIL)
    return list(db.session.scalars(stmt.order_by(OutboxMessage.id)))


def test_a_set_password_link_goes_by_email_when_the_account_has_an_address(app, make):
    user = make.user("coordinator")
    user.email, user.phone = ADDRESS, PHONE
    db.session.commit()
    url = issue_link(user, send=True)
    [message] = emails()
    assert message.recipient == ADDRESS
    assert sealed_of("set_password") == [
        {"recipient": ADDRESS, "params": message.params, "link": url}
    ]
    assert url not in str(message.params)
    # E-mail is preferred over SMS (the link is long): no SMS was written.
    assert sealed_of("set_password_link") == []


def test_forgot_password_by_email_sends_a_reset_link_valid_an_hour(client, make):
    user = make.user("organizer", username="qianwu")
    user.email = ADDRESS  # no phone: only the e-mail can reach this account
    db.session.commit()
    pages = {}
    for identifier in ("qianwu", "nobody", "no.one@example.gov.cn"):
        response = client.post("/password/forgot", data={"identifier": identifier})
        assert response.status_code == 200
        pages[identifier] = response.get_data(as_text=True).replace(identifier, "X")
    assert pages["qianwu"] == pages["nobody"] == pages["no.one@example.gov.cn"]
    [sent] = sealed_of("password_reset_link")
    assert sent["recipient"] == ADDRESS
    row = db.session.scalar(select(SetPasswordToken).where(SetPasswordToken.user_id == user.id))
    assert row.expires_at - row.created_at == timedelta(hours=1)
    # Asked again by the address within the minute: quietly nothing more.
    client.post("/password/forgot", data={"identifier": ADDRESS.upper()})
    assert len(sealed_of("password_reset_link")) == 1
    page = fresh_get(client, f"/password/set/{token_of(sent['link'])}")
    assert page.status_code == 200
    response = client.post(
        f"/password/set/{token_of(sent['link'])}",
        data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert response.status_code == 302
    login = client.post("/login", data={"username": "qianwu", "password": NEW_PASSWORD})
    assert login.status_code == 302


def test_forgot_password_with_phone_and_address_sends_both(client, make):
    user = make.user("checker", username="zhao")
    user.email, user.phone = ADDRESS, PHONE
    db.session.commit()
    client.post("/password/forgot", data={"identifier": "zhao"})
    assert [m["recipient"] for m in sealed_of("password_reset_link")] == [ADDRESS]
    assert len(sealed_of("verification")) == 1  # the SMS code, as before
