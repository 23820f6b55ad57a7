import pytest

from sciweek import create_app
from sciweek.config import ConfigError


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


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, True),
        ("", True),
        ("0", False),
        ("false", False),
        ("No", False),
        (" off ", False),
        ("1", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
    ],
)
def test_checkin_fast_path_setting(monkeypatch, tmp_path, raw, expected):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    if raw is None:
        monkeypatch.delenv("SCIWEEK_CHECKIN_FAST_PATH", raising=False)
    else:
        monkeypatch.setenv("SCIWEEK_CHECKIN_FAST_PATH", raw)
    assert create_app().config["SCIWEEK_CHECKIN_FAST_PATH"] is expected


def test_a_misspelt_yes_no_setting_refuses_to_start(monkeypatch, tmp_path):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SCIWEEK_CHECKIN_FAST_PATH", "nope")
    with pytest.raises(ConfigError, match="SCIWEEK_CHECKIN_FAST_PATH"):
        create_app()
