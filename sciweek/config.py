"""Settings from ``SCIWEEK_*`` environment variables, with safe defaults for local use."""

from __future__ import annotations

import json
import math
import os
import secrets
from email.utils import parseaddr
from pathlib import Path


class ConfigError(RuntimeError):
    """Raised when the environment cannot give a safe configuration."""


# Per client address. Villages share one address behind carrier NAT, and a whole training
# room may share one village Wi-Fi address: generous per address.
DEFAULT_PER_ADDRESS_RATE_LIMIT = "30 per minute; 300 per hour"


def _text(name: str, default: str = "") -> str:
    """The one place that reads the environment: a variable's value as given, or
    ``default`` when it is unset or blank."""
    value = os.environ.get(name, "")
    return value if value.strip() else default


_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def _switch(name: str, default: bool) -> bool:
    """An on/off environment variable: 1/true/yes/on or 0/false/no/off, any case."""
    raw = _text(name).strip().lower()
    if not raw:
        return default
    if raw in _TRUE_WORDS:
        return True
    if raw in _FALSE_WORDS:
        return False
    # A typo must not silently leave the site without rate limits (or with them).
    raise ConfigError(f"{name} must be one of 1/true/yes/on or 0/false/no/off, not {raw!r}.")


def _number(name: str, default: int | float, *, minimum: int, whole: bool = True) -> int | float:
    """A number of at least ``minimum`` (a whole number unless ``whole=False``); anything
    else, including nan and inf, stops the start with a message naming the variable."""
    raw = _text(name).strip()
    if not raw:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < minimum:
        kind = "a whole number" if whole else "a number"
        raise ConfigError(f"{name} must be {kind} of at least {minimum} (got {raw!r}).")
    return value


SMS_BACKENDS = ("console", "http", "tencent")
DEFAULT_SMS_HTTP_TEMPLATE = '{"phone": "{phone}", "text": "{text}", "id": "{id}"}'


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = _text(name, default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)} (got {value!r}).")
    return value


def _quiet_hours(name: str, default: str) -> tuple[int, int] | None:
    """``21:00-08:00`` as minutes after midnight (start, end); ``off`` for none."""
    raw = _text(name, default).strip().lower()
    if raw in ("off", "none", "0"):
        return None
    try:
        start, end = (part.strip() for part in raw.split("-"))
        minutes = []
        for part in (start, end):
            hours, mins = part.split(":")
            if not (hours.isascii() and hours.isdigit() and mins.isascii() and mins.isdigit()):
                raise ValueError
            if not (0 <= int(hours) <= 23 and 0 <= int(mins) <= 59):
                raise ValueError
            minutes.append(int(hours) * 60 + int(mins))
    except ValueError:
        raise ConfigError(f"{name} must look like 21:00-08:00, or be off (got {raw!r}).") from None
    return minutes[0], minutes[1]


def _clock(name: str, default: str) -> tuple[int, int]:
    """``18:00`` as (hour, minute)."""
    raw = _text(name, default).strip()
    hours, _sep, mins = raw.partition(":")
    if not (
        hours.isascii()
        and hours.isdigit()
        and mins.isascii()
        and mins.isdigit()
        and 0 <= int(hours) <= 23
        and 0 <= int(mins) <= 59
    ):
        raise ConfigError(f"{name} must look like 18:00 (got {raw!r}).")
    return int(hours), int(mins)


def _template_ids(name: str) -> dict[str, str]:
    """``confirmed=1234567,changed=1234568``: a provider's approved template per event."""
    raw = _text(name).strip()
    found: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        event, _sep, template_id = (x.strip() for x in item.partition("="))
        if not event or not template_id:
            raise ConfigError(f"{name} must look like confirmed=1234567,changed=1234568.")
        found[event] = template_id
    return found


def _sms_config() -> dict:
    """Notifications (sciweek/notifications/): the SMS channel and the job engine."""
    backend = _choice("SCIWEEK_SMS_BACKEND", "console", SMS_BACKENDS)
    settings = {
        # Empty: no broker; messages are delivered in this process right after commit.
        "SCIWEEK_BROKER_URL": _text("SCIWEEK_BROKER_URL").strip(),
        "SCIWEEK_JOBS_QUEUE": _text("SCIWEEK_JOBS_QUEUE", "sciweek").strip(),
        "SCIWEEK_JOBS_SWEEP_SECONDS": _number("SCIWEEK_JOBS_SWEEP_SECONDS", 60, minimum=1),
        "SCIWEEK_SMS_BACKEND": backend,
        "SCIWEEK_SMS_SIGNATURE": _text("SCIWEEK_SMS_SIGNATURE", "科普报名").strip(),
        "SCIWEEK_SMS_DAILY_CAP": _number("SCIWEEK_SMS_DAILY_CAP", 10, minimum=0),
        "SCIWEEK_SMS_QUIET_HOURS": _quiet_hours("SCIWEEK_SMS_QUIET_HOURS", "21:00-08:00"),
        "SCIWEEK_SMS_REMINDER_AT": _clock("SCIWEEK_SMS_REMINDER_AT", "18:00"),
        "SCIWEEK_BROADCASTS_PER_HOUR": _number("SCIWEEK_BROADCASTS_PER_HOUR", 2, minimum=1),
        "SCIWEEK_SMS_MAX_ATTEMPTS": _number("SCIWEEK_SMS_MAX_ATTEMPTS", 5, minimum=1),
        "SCIWEEK_SMS_RETRY_SECONDS": _number("SCIWEEK_SMS_RETRY_SECONDS", 30, minimum=1),
        "SCIWEEK_SMS_TIMEOUT_SECONDS": _number("SCIWEEK_SMS_TIMEOUT_SECONDS", 10, minimum=1),
        "SCIWEEK_SMS_STALE_SECONDS": _number("SCIWEEK_SMS_STALE_SECONDS", 120, minimum=1),
        "SCIWEEK_SMS_HTTP_URL": _text("SCIWEEK_SMS_HTTP_URL").strip(),
        "SCIWEEK_SMS_HTTP_KEY": _text("SCIWEEK_SMS_HTTP_KEY").strip(),
        "SCIWEEK_SMS_HTTP_TEMPLATE": _text("SCIWEEK_SMS_HTTP_TEMPLATE", DEFAULT_SMS_HTTP_TEMPLATE),
        "SCIWEEK_SMS_TENCENT_SECRET_ID": _text("SCIWEEK_SMS_TENCENT_SECRET_ID").strip(),
        "SCIWEEK_SMS_TENCENT_SECRET_KEY": _text("SCIWEEK_SMS_TENCENT_SECRET_KEY").strip(),
        "SCIWEEK_SMS_TENCENT_APP_ID": _text("SCIWEEK_SMS_TENCENT_APP_ID").strip(),
        "SCIWEEK_SMS_TENCENT_REGION": _text("SCIWEEK_SMS_TENCENT_REGION", "ap-guangzhou").strip(),
        "SCIWEEK_SMS_TENCENT_ENDPOINT": _text(
            "SCIWEEK_SMS_TENCENT_ENDPOINT", "https://sms.tencentcloudapi.com"
        ).strip(),
        "SCIWEEK_SMS_TENCENT_TEMPLATES": _template_ids("SCIWEEK_SMS_TENCENT_TEMPLATES"),
    }
    required = {
        "http": ("SCIWEEK_SMS_HTTP_URL",),
        "tencent": (
            "SCIWEEK_SMS_TENCENT_SECRET_ID",
            "SCIWEEK_SMS_TENCENT_SECRET_KEY",
            "SCIWEEK_SMS_TENCENT_APP_ID",
        ),
    }.get(backend, ())
    try:
        json.loads(str(settings["SCIWEEK_SMS_HTTP_TEMPLATE"]))
    except ValueError:
        raise ConfigError("SCIWEEK_SMS_HTTP_TEMPLATE must be a JSON document.") from None
    missing = [name for name in required if not settings[name]]
    if missing:
        raise ConfigError(f"SCIWEEK_SMS_BACKEND={backend} needs {', '.join(missing)}.")
    return settings


MAIL_BACKENDS = ("console", "smtp")
DEFAULT_MAIL_FROM = "科普活动周 <noreply@localhost>"


def _mail_config() -> dict:
    """The e-mail channel for staff accounts (sciweek/notifications/mail.py): SMTP."""
    backend = _choice("SCIWEEK_MAIL_BACKEND", "console", MAIL_BACKENDS)
    ssl = _switch("SCIWEEK_SMTP_SSL", False)
    starttls = _switch("SCIWEEK_SMTP_STARTTLS", not ssl)
    if ssl and starttls:
        raise ConfigError("SCIWEEK_SMTP_SSL and SCIWEEK_SMTP_STARTTLS cannot both be on.")
    sender = _text("SCIWEEK_MAIL_FROM", DEFAULT_MAIL_FROM).strip()
    _name, address = parseaddr(sender)
    if "@" not in address or any(c in sender for c in "\r\n"):
        raise ConfigError(
            f"SCIWEEK_MAIL_FROM must be an address, e.g. 科普活动周 <noreply@example.gov.cn> "
            f"(got {sender!r})."
        )
    settings = {
        "SCIWEEK_MAIL_BACKEND": backend,
        "SCIWEEK_MAIL_FROM": sender,
        "SCIWEEK_SMTP_HOST": _text("SCIWEEK_SMTP_HOST").strip(),
        "SCIWEEK_SMTP_PORT": _number(
            "SCIWEEK_SMTP_PORT", 465 if ssl else 587 if starttls else 25, minimum=1
        ),
        "SCIWEEK_SMTP_USERNAME": _text("SCIWEEK_SMTP_USERNAME").strip(),
        "SCIWEEK_SMTP_PASSWORD": _text("SCIWEEK_SMTP_PASSWORD"),
        "SCIWEEK_SMTP_STARTTLS": starttls,
        "SCIWEEK_SMTP_SSL": ssl,
        "SCIWEEK_SMTP_TIMEOUT_SECONDS": _number("SCIWEEK_SMTP_TIMEOUT_SECONDS", 10, minimum=1),
    }
    if backend == "smtp" and not settings["SCIWEEK_SMTP_HOST"]:
        raise ConfigError("SCIWEEK_MAIL_BACKEND=smtp needs SCIWEEK_SMTP_HOST.")
    return settings


STORAGE_BACKENDS = ("local", "s3")
S3_ADDRESSING_STYLES = ("auto", "path", "virtual")


def _storage_config(instance: Path) -> dict:
    """File storage (sciweek/storage.py): summaries' photos and roster uploads."""
    backend = _choice("SCIWEEK_STORAGE_BACKEND", "local", STORAGE_BACKENDS)
    prefix = _text("SCIWEEK_S3_PREFIX").strip().strip("/")
    settings = {
        "SCIWEEK_STORAGE_BACKEND": backend,
        "SCIWEEK_STORAGE_PATH": _text("SCIWEEK_STORAGE_PATH", str(instance / "storage")).strip(),
        "SCIWEEK_S3_BUCKET": _text("SCIWEEK_S3_BUCKET").strip(),
        "SCIWEEK_S3_ENDPOINT_URL": _text("SCIWEEK_S3_ENDPOINT_URL").strip(),
        "SCIWEEK_S3_REGION": _text("SCIWEEK_S3_REGION", "us-east-1").strip(),
        "SCIWEEK_S3_ACCESS_KEY_ID": _text("SCIWEEK_S3_ACCESS_KEY_ID").strip(),
        "SCIWEEK_S3_SECRET_ACCESS_KEY": _text("SCIWEEK_S3_SECRET_ACCESS_KEY").strip(),
        "SCIWEEK_S3_PREFIX": f"{prefix}/" if prefix else "",
        "SCIWEEK_S3_ADDRESSING_STYLE": _choice(
            "SCIWEEK_S3_ADDRESSING_STYLE", "auto", S3_ADDRESSING_STYLES
        ),
    }
    if backend == "s3" and not settings["SCIWEEK_S3_BUCKET"]:
        raise ConfigError("SCIWEEK_STORAGE_BACKEND=s3 needs SCIWEEK_S3_BUCKET.")
    return settings


def instance_path(default: str) -> str:
    """The instance folder (secret key, SQLite database): ``SCIWEEK_INSTANCE_PATH``."""
    return _text("SCIWEEK_INSTANCE_PATH", default)


def _secret_key(instance_path: Path, production: bool) -> str:
    key = _text("SCIWEEK_SECRET_KEY")
    if key:
        return key
    if production:
        raise ConfigError(
            "SCIWEEK_SECRET_KEY must be set when SCIWEEK_ENV=production "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')."
        )
    # Local use: generate once and keep it in the instance folder, so sessions
    # survive restarts and every worker process shares the same key.
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return key_file.read_text().strip()


def _base_url(production: bool) -> str:
    url = _text("SCIWEEK_BASE_URL").strip().rstrip("/")
    if production and not url:
        raise ConfigError(
            "SCIWEEK_BASE_URL must be set when SCIWEEK_ENV=production "
            "(the address people open, e.g. https://kp.example.gov.cn): "
            "QR codes, SMS and calendar feeds carry it."
        )
    return url


def load_config(instance_path: str) -> dict:
    """Build the Flask config mapping from the environment."""
    instance = Path(instance_path)
    production = _text("SCIWEEK_ENV", "development") == "production"
    database_url = _text("SCIWEEK_DATABASE_URL", f"sqlite:///{instance / 'sciweek.sqlite3'}")
    if database_url.startswith("postgresql://"):
        # psycopg 3 is the PostgreSQL driver.
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]
    roster_file_mb = _number("SCIWEEK_ROSTER_MAX_FILE_MB", 10, minimum=1)
    pool_size = _number("SCIWEEK_DATABASE_POOL_SIZE", 10, minimum=1)
    return {
        "SCIWEEK_ENV": "production" if production else "development",
        "SECRET_KEY": _secret_key(instance, production),
        "SQLALCHEMY_DATABASE_URI": database_url,
        # Pooled connections are pinged only after being idle (database.py), not on every
        # checkout; the pool holds as many connections as a process has threads.
        "SQLALCHEMY_ENGINE_OPTIONS": (
            {"pool_size": pool_size, "max_overflow": 10}
            if database_url.startswith("postgresql")
            else {}
        ),
        "SCIWEEK_DATABASE_PING_IDLE_SECONDS": _number(
            "SCIWEEK_DATABASE_PING_IDLE_SECONDS", 10.0, minimum=0, whole=False
        ),
        # Empty (development only): links follow the request's host (sciweek/links.py).
        "SCIWEEK_BASE_URL": _base_url(production),
        "SCIWEEK_OTHER_BASE_URLS": tuple(
            url.strip().rstrip("/")
            for url in _text("SCIWEEK_OTHER_BASE_URLS").split(",")
            if url.strip()
        ),
        "RATELIMIT_STORAGE_URI": _text("SCIWEEK_RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_ENABLED": _switch("SCIWEEK_RATELIMIT_ENABLED", default=True),
        "SCIWEEK_REGISTRATION_RATE_LIMIT": _text(
            "SCIWEEK_REGISTRATION_RATE_LIMIT", DEFAULT_PER_ADDRESS_RATE_LIMIT
        ),
        "SCIWEEK_SELF_CHECKIN_RATE_LIMIT": _text(
            "SCIWEEK_SELF_CHECKIN_RATE_LIMIT", DEFAULT_PER_ADDRESS_RATE_LIMIT
        ),
        # SMS verification codes (notifications/verification.py): asking for and checking
        # codes, per client address, shared by 找回电子票 and 报名需短信验证.
        "SCIWEEK_VERIFICATION_RATE_LIMIT": _text(
            "SCIWEEK_VERIFICATION_RATE_LIMIT", "10 per minute; 30 per hour"
        ),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        "WTF_CSRF_TIME_LIMIT": None,
        # Request bodies; room for a roster file of the largest size allowed.
        "MAX_CONTENT_LENGTH": max(25, roster_file_mb + 1) * 1024 * 1024,
        "BABEL_DEFAULT_LOCALE": "zh",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
        "SCIWEEK_PROXY_COUNT": _number("SCIWEEK_PROXY_COUNT", 0, minimum=0),
        # Scan URL on PostgreSQL: how long a process trusts its cached token users and
        # door permissions (sciweek/checkin/fast.py); 0 turns the caches off.
        "SCIWEEK_CHECKIN_CACHE_SECONDS": _number(
            "SCIWEEK_CHECKIN_CACHE_SECONDS", 10.0, minimum=0, whole=False
        ),
        # Calendar feeds (sciweek/feed_changes.py): how long a process trusts the change
        # counters it read for a feed's ETag; 0 reads them for every request.
        "SCIWEEK_FEED_VERSION_CACHE_SECONDS": _number(
            "SCIWEEK_FEED_VERSION_CACHE_SECONDS", 5.0, minimum=0, whole=False
        ),
        # Roster uploads (sciweek/training/roster.py): the work one file may cause is bounded
        # before and while parsing. A district has up to ~2,500 cadres; 20,000 rows of
        # .xlsx are ~11 MB of sheet XML and ~10 s of parsing on one core.
        "SCIWEEK_ROSTER_MAX_FILE_MB": roster_file_mb,
        "SCIWEEK_ROSTER_MAX_UNZIPPED_MB": _number("SCIWEEK_ROSTER_MAX_UNZIPPED_MB", 30, minimum=1),
        "SCIWEEK_ROSTER_MAX_ZIP_RATIO": _number("SCIWEEK_ROSTER_MAX_ZIP_RATIO", 100, minimum=1),
        "SCIWEEK_ROSTER_MAX_ROWS": _number("SCIWEEK_ROSTER_MAX_ROWS", 20_000, minimum=1),
        "SCIWEEK_ROSTER_MAX_CELL_CHARS": _number("SCIWEEK_ROSTER_MAX_CELL_CHARS", 1_000, minimum=1),
        # Scan URL on PostgreSQL: one statement per scan with those caches
        # (sciweek/checkin/fast.py); off, every scan takes the general path as on SQLite.
        "SCIWEEK_CHECKIN_FAST_PATH": _switch("SCIWEEK_CHECKIN_FAST_PATH", True),
        # How long after a session ends its paper 签到表 may still be typed in
        # (sciweek/checkin/paper.py).
        "SCIWEEK_PAPER_ENTRY_DAYS": _number("SCIWEEK_PAPER_ENTRY_DAYS", 14, minimum=0),
        # A session's check-in window (sciweek/checkin/windows.py): scans and self check-in
        # count from this many minutes before its start to this many after its end.
        "SCIWEEK_CHECKIN_OPENS_BEFORE_MINUTES": _number(
            "SCIWEEK_CHECKIN_OPENS_BEFORE_MINUTES", 60, minimum=0
        ),
        "SCIWEEK_CHECKIN_CLOSES_AFTER_MINUTES": _number(
            "SCIWEEK_CHECKIN_CLOSES_AFTER_MINUTES", 30, minimum=0
        ),
        # The office's name on printed and exported reports (sciweek/reports): the
        # district (白沙区) before the title, the unit that files them (填报单位).
        "SCIWEEK_DISTRICT_NAME": _text("SCIWEEK_DISTRICT_NAME"),
        "SCIWEEK_REPORT_UNIT": _text("SCIWEEK_REPORT_UNIT"),
        **_sms_config(),
        **_mail_config(),
        **_storage_config(instance),
        # Not from the environment: tests turn off the in-process delivery after commit
        # (with no broker) to look at messages while they are still queued.
        "NOTIFICATIONS_DELIVER_AFTER_COMMIT": True,
    }
