import pytest

from sciweek import create_app
from sciweek.config import ConfigError
from sciweek.extensions import db


def test_production_refuses_to_start_without_secret_key(monkeypatch, tmp_path):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SCIWEEK_ENV", "production")
    monkeypatch.delenv("SCIWEEK_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SCIWEEK_SECRET_KEY"):
        create_app()


def test_production_uses_given_secret_and_secure_cookies(monkeypatch, tmp_path):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SCIWEEK_ENV", "production")
    monkeypatch.setenv("SCIWEEK_SECRET_KEY", "s" * 40)
    app = create_app()
    assert app.config["SECRET_KEY"] == "s" * 40
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert not (tmp_path / "secret_key").exists()


def test_local_secret_key_generated_once_and_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("SCIWEEK_ENV", raising=False)
    monkeypatch.delenv("SCIWEEK_SECRET_KEY", raising=False)
    first = create_app().config["SECRET_KEY"]
    second = create_app().config["SECRET_KEY"]
    assert first == second
    assert len(first) >= 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_database_and_base_url_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SCIWEEK_DATABASE_URL", "postgresql://u@db.internal/sciweek")
    monkeypatch.setenv("SCIWEEK_BASE_URL", "https://kp.example.gov.cn/")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.internal/sciweek"
    assert app.config["SCIWEEK_BASE_URL"] == "https://kp.example.gov.cn"


def test_default_database_is_sqlite_in_instance_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("SCIWEEK_DATABASE_URL", raising=False)
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'sciweek.sqlite3'}"


def _login_statuses(app, n: int) -> list[int]:
    client = app.test_client()
    return [
        client.post("/login", data={"username": "x", "password": "y"}).status_code for _ in range(n)
    ]


@pytest.mark.parametrize("value", ["0", "false", "no", "off", "OFF", " False "])
def test_rate_limits_can_be_switched_off_in_words(monkeypatch, tmp_path, value):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SCIWEEK_DATABASE_URL", f"sqlite:///{tmp_path / 'off.sqlite3'}")
    monkeypatch.setenv("SCIWEEK_RATELIMIT_ENABLED", value)
    app = create_app({"WTF_CSRF_ENABLED": False})
    assert app.config["RATELIMIT_ENABLED"] is False
    with app.app_context():
        db.create_all()
        # Log-in allows 10 a minute when limits are on.
        assert 429 not in _login_statuses(app, 12)
        db.engine.dispose()


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "On", None])
def test_rate_limits_on_by_default_and_in_words(monkeypatch, tmp_path, value):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SCIWEEK_DATABASE_URL", f"sqlite:///{tmp_path / 'on.sqlite3'}")
    if value is None:
        monkeypatch.delenv("SCIWEEK_RATELIMIT_ENABLED", raising=False)
    else:
        monkeypatch.setenv("SCIWEEK_RATELIMIT_ENABLED", value)
    app = create_app({"WTF_CSRF_ENABLED": False})
    assert app.config["RATELIMIT_ENABLED"] is True
    with app.app_context():
        db.create_all()
        assert _login_statuses(app, 11)[-1] == 429
        db.engine.dispose()


def test_unclear_rate_limit_switch_refuses_to_start(monkeypatch, tmp_path):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SCIWEEK_RATELIMIT_ENABLED", "disabled")
    with pytest.raises(ConfigError, match="SCIWEEK_RATELIMIT_ENABLED"):
        create_app()


def test_self_checkin_rate_limit_from_environment(monkeypatch, tmp_path):
    """README documents SCIWEEK_SELF_CHECKIN_RATE_LIMIT as an environment variable."""
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SCIWEEK_SELF_CHECKIN_RATE_LIMIT", "5 per minute")
    assert create_app().config["SCIWEEK_SELF_CHECKIN_RATE_LIMIT"] == "5 per minute"
