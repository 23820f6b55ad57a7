"""Languages and local time: Simplified Chinese first, English selectable, Asia/Shanghai."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel import Locale
from flask import Flask, has_request_context, request
from flask_babel import get_locale

from .extensions import babel
from .identity import mask_name, mask_phone
from .kept_messages import list_separator

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
LANGUAGES = {"zh": "中文", "en": "English"}
LANG_COOKIE = "lang"


def select_locale() -> str:
    if not has_request_context():
        return "zh"  # command line: Chinese, like the site's default
    lang = request.args.get("lang") or request.cookies.get(LANG_COOKIE)
    return lang if lang in LANGUAGES else "zh"


# Parsed once: Flask-Babel parses the selector's answer on every request unless it is a Locale.
_LOCALES = {code: Locale.parse(code) for code in LANGUAGES}


def _request_locale() -> Locale:
    return _LOCALES[select_locale()]


def to_local(value: datetime) -> datetime:
    return value.astimezone(LOCAL_TZ)


def local_today() -> date:
    """Today in Asia/Shanghai, whatever the server's own time zone."""
    return datetime.now(LOCAL_TZ).date()


def _is_english() -> bool:
    return str(get_locale()) == "en"


def format_date(value: date | datetime | None) -> str:
    """2026年5月17日 (Chinese) or 17 May 2026 (English)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = to_local(value).date()
    if _is_english():
        return f"{value.day} {value.strftime('%b')} {value.year}"
    return f"{value.year}年{value.month}月{value.day}日"


def format_time(value: datetime | None) -> str:
    return to_local(value).strftime("%H:%M") if value else ""


def format_datetime(value: datetime | None) -> str:
    """2026年5月17日 09:30 in Asia/Shanghai."""
    if value is None:
        return ""
    return f"{format_date(value)} {format_time(value)}"


def format_day_time(value: datetime, *, reference: datetime) -> str:
    """12月6日 09:30 (English: 6 Dec 09:30) in Asia/Shanghai; with the year
    (2027年12月6日 09:30) when it is not the year of ``reference``."""
    local = to_local(value)
    if local.year != to_local(reference).year:
        return format_datetime(value)
    if _is_english():
        return f"{local.day} {local.strftime('%b')} {format_time(value)}"
    return f"{local.month}月{local.day}日 {format_time(value)}"


def format_span(starts: datetime, ends: datetime) -> str:
    """A session's time: one date when it starts and ends the same local day."""
    if to_local(starts).date() == to_local(ends).date():
        return f"{format_datetime(starts)}–{format_time(ends)}"
    return f"{format_datetime(starts)} – {format_datetime(ends)}"


def colon() -> str:
    """After a label: full-width in Chinese, ": " in English."""
    return ": " if _is_english() else "："


def join_names(names) -> str:
    """Names in a list: 区科技局、区科协 (Chinese) or 区科技局, 区科协 (English)."""
    return list_separator().join(str(name) for name in names)


def format_hours(value) -> str:
    """Credit hours without a useless decimal: 2, 2.5."""
    if value is None:
        return ""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def init_app(app: Flask) -> None:
    babel.init_app(
        app,
        locale_selector=_request_locale,
        default_translation_directories="translations",
    )
    app.jinja_env.filters.update(
        local_date=format_date,
        local_time=format_time,
        local_datetime=format_datetime,
        hours=format_hours,
        mask_phone=mask_phone,
        mask_name=mask_name,
        join_names=join_names,
    )
    app.jinja_env.globals.update(
        format_span=format_span,
        colon=colon,
        LANGUAGES=LANGUAGES,
        get_locale=get_locale,
        mask_phone=mask_phone,
    )

    @app.after_request
    def remember_language(response):
        lang = request.args.get("lang")
        if lang in LANGUAGES:
            response.set_cookie(
                LANG_COOKIE,
                lang,
                max_age=365 * 86400,
                samesite="Lax",
                httponly=True,  # read by the server only
                secure=app.config["SESSION_COOKIE_SECURE"],  # production: HTTPS only
            )
        return response
