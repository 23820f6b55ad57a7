"""E-mail to staff accounts: the interface for the accounts feature, and the texts.

Only staff accounts (``User.is_staff``) with an address (``User.email``) get e-mail; the
public only ever gets SMS. An e-mail is an outbox message like an SMS (``Channel.EMAIL``,
the address in ``recipient``, the account in ``user_id``): written in the transaction of
the change, delivered by the same jobs with the same retries and final ``failed`` state.
Quiet hours and the daily cap are the SMS's own and do not apply.

* ``enqueue_set_password_email(user, link, version=...)`` — a new account's link to choose
  its password, valid ``SET_PASSWORD_LINK_HOURS`` hours;
* ``enqueue_password_reset_email(user, version=..., link=... or code=...)`` — 忘记密码;
* ``enqueue_staff_email(user, subject, body, key=..., secret_url=...)`` — anything else.

Links and codes are stored only sealed (``sealing``) and cleared once the message is
done; a newer set-password or reset e-mail replaces one of the account's still waiting
(``superseded``). The texts are rendered when the message is delivered, in the site's
default language (Chinese), like the SMS texts. Each function only flushes: the caller's
transaction commits the message with the change, and delivery starts after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from ..models import Channel, NotificationEvent, User
from . import outbox

SET_PASSWORD_LINK_HOURS = 24
PASSWORD_RESET_MINUTES = 30
# Events of which the newest replaces a waiting older one of the same account.
ACCOUNT_LINK_EVENTS = (NotificationEvent.SET_PASSWORD, NotificationEvent.PASSWORD_RESET)
SUPERSEDED = "superseded"


@dataclass(frozen=True)
class MailTemplate:
    """One kind of e-mail: subject and body as gettext messages with %(name)s
    placeholders (``params`` and the sealed ``secrets`` of the message)."""

    name: str
    event: NotificationEvent
    subject: object
    body: object


TEMPLATES = {
    t.name: t
    for t in (
        MailTemplate(
            "set_password",
            NotificationEvent.SET_PASSWORD,
            _l("请设置您的账号密码"),
            _l(
                "%(name)s，您好：\n\n"
                "已为您开通科普活动管理系统的工作账号，用户名：%(username)s。\n"
                "请在%(hours)s小时内打开下面的链接设置密码：\n\n"
                "%(link)s\n\n"
                "链接只能使用一次，过期后请联系管理员重新发送。"
                "如果您不知道此事，请忽略本邮件。"
            ),
        ),
        MailTemplate(
            "password_reset_link",
            NotificationEvent.PASSWORD_RESET,
            _l("重置密码"),
            _l(
                "%(name)s，您好：\n\n"
                "有人为账号 %(username)s 申请了重置密码。"
                "请在%(minutes)s分钟内打开下面的链接设置新密码：\n\n"
                "%(link)s\n\n"
                "如果不是您本人申请，请忽略本邮件，您的密码不会改变。"
            ),
        ),
        MailTemplate(
            "password_reset_code",
            NotificationEvent.PASSWORD_RESET,
            _l("重置密码验证码：%(code)s"),
            _l(
                "%(name)s，您好：\n\n"
                "有人为账号 %(username)s 申请了重置密码。验证码：\n\n"
                "%(code)s\n\n"
                "%(minutes)s分钟内有效，请勿告诉他人。"
                "如果不是您本人申请，请忽略本邮件，您的密码不会改变。"
            ),
        ),
        # Subject and body given by the sender (already in words); a secret link, if
        # any, follows the body on a line of its own.
        MailTemplate("staff_email", NotificationEvent.STAFF_EMAIL, "%(subject)s", "%(body)s"),
    )
}


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    body: str


def render_email(
    template_name: str, params: dict, secrets: dict[str, str], *, locale: str = "zh"
) -> RenderedEmail:
    """Subject and body of an e-mail, in ``locale``."""
    template = TEMPLATES[template_name]
    values = {
        "name": params.get("name", ""),
        "username": params.get("username", ""),
        "hours": params.get("hours", ""),
        "minutes": params.get("minutes", ""),
        "subject": params.get("subject", ""),
        "body": params.get("body", ""),
        "link": secrets.get("link", ""),
        "code": secrets.get("code", ""),
    }
    with force_locale(locale):
        subject = str(template.subject) % values
        body = str(template.body) % values
    if template_name == "staff_email" and values["link"]:
        body = f"{body.rstrip()}\n\n{values['link']}"
    # One line: a line break in a subject would end the header.
    return RenderedEmail(subject=" ".join(subject.split()), body=body)


def _account_params(user: User) -> dict[str, str]:
    return {"name": user.display_name or user.username, "username": user.username}


def _check_recipient(user: User) -> str:
    if not user.is_staff:
        raise ValueError(f"e-mail goes to staff accounts only, not to {user!r}")
    if not user.email:
        raise ValueError(f"{user!r} has no e-mail address")
    return user.email


def _enqueue(
    user: User,
    event: NotificationEvent,
    *,
    version: object,
    template: str,
    params: dict,
    secrets: dict[str, str],
) -> bool:
    address = _check_recipient(user)
    key = outbox.dedupe_key(event, f"u{user.id}", version=version)
    if event in ACCOUNT_LINK_EVENTS:
        # The account's newest link is the one that works: an older one still waiting
        # is not sent.
        outbox.supersede_for_user(user.id, ACCOUNT_LINK_EVENTS, reason=SUPERSEDED, newer_key=key)
    return outbox.enqueue(
        event,
        key=key,
        recipient=address,
        channel=Channel.EMAIL,
        template=template,
        params=params,
        secret_params=secrets or None,
        user_id=user.id,
    )


def enqueue_set_password_email(user: User, link: str, *, version: object) -> bool:
    """The e-mail with a new staff account's link to set its password (the link valid
    ``SET_PASSWORD_LINK_HOURS`` hours: the accounts feature enforces that). ``version``
    tells this link from an earlier one of the account (the token's id, its issue
    time): the same version twice writes one e-mail. Returns whether it was written.
    Raises ValueError for an account that is not staff or has no address. Flushes only.
    """
    return _enqueue(
        user,
        NotificationEvent.SET_PASSWORD,
        version=version,
        template="set_password",
        params={**_account_params(user), "hours": str(SET_PASSWORD_LINK_HOURS)},
        secrets={"link": link},
    )


def enqueue_password_reset_email(
    user: User,
    *,
    version: object,
    link: str | None = None,
    code: str | None = None,
    minutes: int = PASSWORD_RESET_MINUTES,
) -> bool:
    """忘记密码: the e-mail with a reset ``link`` or a ``code`` (exactly one), valid
    ``minutes``. ``version`` as for ``enqueue_set_password_email``. Flushes only."""
    if (link is None) == (code is None):
        raise ValueError("a password reset e-mail carries a link or a code (one of them)")
    return _enqueue(
        user,
        NotificationEvent.PASSWORD_RESET,
        version=version,
        template="password_reset_link" if link is not None else "password_reset_code",
        params={**_account_params(user), "minutes": str(minutes)},
        secrets={"link": link} if link is not None else {"code": str(code)},
    )


def enqueue_staff_email(
    user: User, subject: str, body: str, *, key: str, secret_url: str | None = None
) -> bool:
    """Any other e-mail to a staff member: ``subject`` and ``body`` as they will read
    (translate them first; they are stored as given, so never put a secret in them),
    ``secret_url`` (stored sealed) on its own line after the body. ``key`` names this
    message among the account's (``role-changed-3``): the same key twice writes one
    e-mail. Flushes only."""
    return _enqueue(
        user,
        NotificationEvent.STAFF_EMAIL,
        version=key,
        template="staff_email",
        params={"subject": subject, "body": body},
        secrets={"link": secret_url} if secret_url else {},
    )
