"""What each notification says: one gettext text per template, Chinese first.

A message stores its parameters (``OutboxMessage.params``, never a secret) and, sealed,
its secret ones (the ticket link); the text is rendered when it is delivered, in the
site's default language. Providers that send only pre-approved templates (Tencent Cloud)
get the template's parameters in ``TEMPLATES[name].order``: register each text below
with {1}, {2}, ... in that order (docs/notifications.md lists them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..i18n import to_local
from ..models import Activity, NotificationEvent
from . import sms


@dataclass(frozen=True)
class Template:
    """One kind of text: its gettext message, its parameters in the provider's order,
    and which parameters may be shortened to fit one segment (in that order)."""

    name: str
    event: NotificationEvent
    text: object  # a lazy gettext string with %(name)s placeholders
    order: tuple[str, ...]
    shrinkable: tuple[str, ...] = ("title", "place", "reason")


TEMPLATES = {
    t.name: t
    for t in (
        Template(
            "confirmed",
            NotificationEvent.CONFIRMED,
            _l("报名成功：“%(title)s”，%(when)s，%(place)s。电子票：%(ticket)s"),
            ("title", "when", "place", "ticket"),
        ),
        Template(
            "waitlisted",
            NotificationEvent.WAITLISTED,
            _l("已登记候补：“%(title)s”，%(when)s。有空位将按顺序递补并短信通知。票码%(code)s"),
            ("title", "when", "code"),
        ),
        Template(
            "promoted",
            NotificationEvent.PROMOTED,
            _l("候补成功：您已获得“%(title)s”的名额，%(when)s，%(place)s。票码%(code)s"),
            ("title", "when", "place", "code"),
        ),
        Template(
            "changed",
            NotificationEvent.CHANGED,
            _l("活动变更：“%(title)s”改为%(when)s，地点%(place)s。请按新安排参加。"),
            ("title", "when", "place"),
        ),
        Template(
            "cancelled",
            NotificationEvent.CANCELLED,
            _l("活动取消：“%(title)s”（%(when)s）已取消，原因：%(reason)s。"),
            ("title", "when", "reason"),
            shrinkable=("title", "reason"),
        ),
        Template(
            "cancelled_by_staff",
            NotificationEvent.CANCELLED,
            _l("报名取消：您报名的“%(title)s”（%(when)s）已被主办方取消，如有疑问请联系主办方。"),
            ("title", "when"),
        ),
        # Reminders, broadcasts and invitations offer 退订 (a link: notifications/optout.py).
        Template(
            "reminder",
            NotificationEvent.REMINDER,
            _l("活动提醒：“%(title)s”%(when)s开始，地点%(place)s，请准时参加。退订：%(optout)s"),
            ("title", "when", "place", "optout"),
            shrinkable=("title", "place"),
        ),
        Template(
            "broadcast",
            NotificationEvent.BROADCAST,
            _l("“%(title)s”主办方通知：%(text)s 退订：%(optout)s"),
            ("title", "text", "optout"),
            shrinkable=("title",),  # the organizer's own words are sent as previewed
        ),
        Template(
            "invitation",
            NotificationEvent.INVITATION,
            _l("培训邀请：“%(title)s”，%(when)s，%(place)s。报名：%(link)s 退订：%(optout)s"),
            ("title", "when", "place", "link", "optout"),
            shrinkable=("title", "place"),
        ),
        Template(
            "verification",
            NotificationEvent.VERIFICATION,
            _l("验证码%(otp)s，%(minutes)s分钟内有效。如非本人操作，请忽略本短信。"),
            ("otp", "minutes"),
            shrinkable=(),
        ),
        # A staff account's one-time set-password link (accounts.links), sealed like a code.
        Template(
            "set_password_link",
            NotificationEvent.VERIFICATION,
            _l("您的工作账号%(username)s请在24小时内设置密码（仅可使用一次）：%(setup_link)s"),
            ("username", "setup_link"),
            shrinkable=(),
        ),
    )
}


def provider_template_text(name: str, locale: str = "zh") -> str:
    """The text to register with a template provider: parameters as {1}, {2}, ..."""
    template = TEMPLATES[name]
    with force_locale(locale):
        return str(template.text) % {
            param: f"{{{i + 1}}}" for i, param in enumerate(template.order)
        }


def activity_params(activity: Activity) -> dict[str, str]:
    """What the texts say about an activity, as it is now (stored with the message)."""
    starts = activity.starts_at
    town = activity.town.name if activity.town is not None else ""
    return {
        "title": activity.title,
        "starts_at": starts.isoformat() if starts else "",
        "place": activity.venue.strip() or town,
    }


def format_when(iso: str, locale: str) -> str:
    """12月10日09:00 (zh) or 10 Dec 09:00 (en), Asia/Shanghai; compact for SMS."""
    if not iso:
        return ""
    local = to_local(datetime.fromisoformat(iso))
    if locale == "en":
        return f"{local.day} {local.strftime('%b')} {local.strftime('%H:%M')}"
    return f"{local.month}月{local.day}日{local.strftime('%H:%M')}"


@dataclass(frozen=True)
class RenderedText:
    template: str
    text: str  # with the 【签名】
    params: tuple[str, ...]  # the template's parameters in the provider's order
    segments: int


def render(
    template_name: str,
    params: dict,
    secrets: dict[str, str],
    *,
    signature: str,
    locale: str = "zh",
) -> RenderedText:
    """The text of a message, fitted to one 70-character segment where the content
    allows (the title, then place and reason are shortened; a ticket link never is)."""
    template = TEMPLATES[template_name]
    with force_locale(locale):
        values = {
            "title": params.get("title", ""),
            "when": format_when(params.get("starts_at", ""), locale),
            "place": params.get("place", "") or "-",
            "reason": params.get("reason", ""),
            "code": params.get("code", ""),
            "text": params.get("text", ""),
            "link": params.get("link", ""),
            "optout": secrets.get("optout_url", ""),
        }
        # A verification code travels sealed, like the ticket link (notifications.verification).
        values["otp"] = secrets.get("otp", "")
        values["minutes"] = params.get("minutes", "")
        values["username"] = params.get("username", "")
        values["setup_link"] = secrets.get("setup_url", "")
        link = secrets.get("ticket_url")
        values["ticket"] = link or _("票码%(code)s", code=values["code"])

        def one(values: dict) -> str:
            return sms.signed(signature, str(template.text) % values)

        fitted = sms.fit_one_segment(one, values, template.shrinkable)
        text = one(fitted)
    return RenderedText(
        template=template_name,
        text=text,
        params=tuple(str(fitted[name]) for name in template.order),
        segments=sms.segment_count(text),
    )
