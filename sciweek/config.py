"""Settings from ``SCIWEEK_*`` environment variables, with safe defaults for local use."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


class ConfigError(RuntimeError):
    """Raised when the environment cannot give a safe configuration."""


def _secret_key(instance_path: Path, production: bool) -> str:
    key = os.environ.get("SCIWEEK_SECRET_KEY")
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


_FLAG_VALUES = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _flag(name: str, default: bool) -> bool:
    """A yes/no setting: 0/1, false/true, no/yes or off/on (any case); unset or empty is
    ``default``."""
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in _FLAG_VALUES:
        raise ConfigError(f"{name} must be one of {'/'.join(_FLAG_VALUES)}, not {raw!r}.")
    return _FLAG_VALUES[raw]


def load_config(instance_path: str) -> dict:
    """Build the Flask config mapping from the environment."""
    instance = Path(instance_path)
    production = os.environ.get("SCIWEEK_ENV", "development") == "production"
    database_url = os.environ.get("SCIWEEK_DATABASE_URL") or (
        f"sqlite:///{instance / 'sciweek.sqlite3'}"
    )
    if database_url.startswith("postgresql://"):
        # psycopg 3 is the PostgreSQL driver.
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]
    return {
        "SCIWEEK_ENV": "production" if production else "development",
        "SECRET_KEY": _secret_key(instance, production),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "SCIWEEK_BASE_URL": os.environ.get("SCIWEEK_BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        "RATELIMIT_STORAGE_URI": os.environ.get("SCIWEEK_RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_ENABLED": os.environ.get("SCIWEEK_RATELIMIT_ENABLED", "1") != "0",
        # Per client address. Villages share one address behind carrier NAT, so be generous.
        "SCIWEEK_REGISTRATION_RATE_LIMIT": os.environ.get(
            "SCIWEEK_REGISTRATION_RATE_LIMIT", "30 per minute; 300 per hour"
        ),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        "PREFERRED_URL_SCHEME": "https" if production else "http",
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": 25 * 1024 * 1024,
        "BABEL_DEFAULT_LOCALE": "zh",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
        "SCIWEEK_PROXY_COUNT": int(os.environ.get("SCIWEEK_PROXY_COUNT", "0")),
        # Scan URL on PostgreSQL: how long a process trusts its cached token users and
        # door permissions (sciweek/checkin/fast.py); 0 turns the caches off.
        "SCIWEEK_CHECKIN_CACHE_SECONDS": float(
            os.environ.get("SCIWEEK_CHECKIN_CACHE_SECONDS", "10")
        ),
        # Scan URL on PostgreSQL: one statement per scan with those caches
        # (sciweek/checkin/fast.py); off, every scan takes the general path as on SQLite.
        "SCIWEEK_CHECKIN_FAST_PATH": _flag("SCIWEEK_CHECKIN_FAST_PATH", True),
    }
