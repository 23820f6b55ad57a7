import ast
import os
import re
from pathlib import Path

import pytest

from sciweek import config, create_app
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
    monkeypatch.setenv("SCIWEEK_BASE_URL", "https://kp.example.gov.cn")
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


# --- One place for configuration -------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
CONFIG_PY = ROOT / "sciweek" / "config.py"
ENV_NAME = re.compile(r"SCIWEEK_[A-Z0-9_]+")


def _readme_variables() -> set[str]:
    """The first column of the markdown table under README's "## Configuration"."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and ENV_NAME.fullmatch(cells[0].strip("`")):
            names.add(cells[0].strip("`"))
    return names


class _RecordingEnviron(dict):
    """os.environ that remembers every name looked up."""

    def __init__(self, values):
        super().__init__(values)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)


def _variables_read_when_loading(monkeypatch, tmp_path, environment: dict) -> set[str]:
    recorder = _RecordingEnviron(environment)
    monkeypatch.setattr(os, "environ", recorder)
    config.load_config(config.instance_path(str(tmp_path)))
    monkeypatch.undo()
    return {name for name in recorder.read if name.startswith("SCIWEEK_")}


def _variables_named_in_config_py() -> set[str]:
    """Every call in config.py whose first argument is a whole SCIWEEK_* name."""
    tree = ast.parse(CONFIG_PY.read_text(encoding="utf-8"))
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
        and ENV_NAME.fullmatch(node.args[0].value)
    }


def test_readme_configuration_table_matches_what_the_app_reads(monkeypatch, tmp_path):
    """A variable read but not documented, or documented but never read, fails here.

    What is read is found twice: by running the loader with a recording os.environ (in
    development and in production, which read different branches), and by reading
    config.py's source (which also sees a read behind a condition not taken here).
    """
    documented = _readme_variables()
    assert "SCIWEEK_DATABASE_URL" in documented  # the table was found at all
    ran = _variables_read_when_loading(
        monkeypatch, tmp_path / "dev", {"SCIWEEK_INSTANCE_PATH": str(tmp_path / "dev")}
    ) | _variables_read_when_loading(
        monkeypatch,
        tmp_path / "prod",
        {
            "SCIWEEK_ENV": "production",
            "SCIWEEK_SECRET_KEY": "k" * 40,
            "SCIWEEK_BASE_URL": "https://kp.example.gov.cn",
        },
    )
    named = _variables_named_in_config_py()
    assert sorted(ran - documented) == [], "read but not in README's configuration table"
    assert sorted(documented - ran) == [], "in README's configuration table but never read"
    assert sorted(named - documented) == [], "named in config.py but not in README's table"
    assert sorted(documented - named) == [], "in README's table but not named in config.py"


def _environment_reads(path: Path) -> list[str]:
    """os.environ / os.getenv uses in one Python file, as 'file:line'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in {"environ", "environb", "getenv", "getenvb"}
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ) or (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and {a.name for a in node.names} & {"environ", "environb", "getenv", "getenvb"}
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_environment_is_read_only_in_config_py():
    files = [*sorted((ROOT / "sciweek").rglob("*.py")), ROOT / "wsgi.py", ROOT / "gunicorn.conf.py"]
    reads = [hit for path in files if path != CONFIG_PY for hit in _environment_reads(path)]
    assert reads == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SCIWEEK_PROXY_COUNT", "one"),
        ("SCIWEEK_PROXY_COUNT", "-1"),
        ("SCIWEEK_PROXY_COUNT", "1.5"),
        ("SCIWEEK_CHECKIN_CACHE_SECONDS", "ten"),
        ("SCIWEEK_CHECKIN_CACHE_SECONDS", "-1"),
        ("SCIWEEK_CHECKIN_CACHE_SECONDS", "nan"),
        ("SCIWEEK_ROSTER_MAX_FILE_MB", "0"),
        ("SCIWEEK_ROSTER_MAX_ZIP_RATIO", "1e3"),
    ],
)
def test_unclear_number_refuses_to_start_with_its_name(monkeypatch, tmp_path, name, value):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=rf"^{name} must be .*{re.escape(repr(value))}"):
        create_app()


def test_numbers_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SCIWEEK_PROXY_COUNT", " 2 ")
    monkeypatch.setenv("SCIWEEK_CHECKIN_CACHE_SECONDS", "0.5")
    app = create_app()
    assert app.config["SCIWEEK_PROXY_COUNT"] == 2
    assert app.config["SCIWEEK_CHECKIN_CACHE_SECONDS"] == 0.5
    monkeypatch.setenv("SCIWEEK_CHECKIN_CACHE_SECONDS", "0")
    assert create_app().config["SCIWEEK_CHECKIN_CACHE_SECONDS"] == 0


def test_defaults_without_environment(monkeypatch, tmp_path):
    for name in _readme_variables():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    app = create_app()
    assert app.instance_path == str(tmp_path)
    assert app.config["SCIWEEK_PROXY_COUNT"] == 0
    assert app.config["SCIWEEK_CHECKIN_CACHE_SECONDS"] == 10
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert app.config["SCIWEEK_REGISTRATION_RATE_LIMIT"] == "30 per minute; 300 per hour"
    assert app.config["SCIWEEK_SELF_CHECKIN_RATE_LIMIT"] == "30 per minute; 300 per hour"
    assert app.config["SCIWEEK_ROSTER_MAX_ROWS"] == 20_000


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


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"SCIWEEK_SMS_BACKEND": "aliyun"}, "SCIWEEK_SMS_BACKEND must be one of"),
        ({"SCIWEEK_SMS_BACKEND": "http"}, "needs SCIWEEK_SMS_HTTP_URL"),
        ({"SCIWEEK_SMS_BACKEND": "tencent"}, "needs SCIWEEK_SMS_TENCENT_SECRET_ID"),
        ({"SCIWEEK_SMS_QUIET_HOURS": "21-8"}, "SCIWEEK_SMS_QUIET_HOURS must look like"),
        ({"SCIWEEK_SMS_QUIET_HOURS": "２１:００-08:00"}, "SCIWEEK_SMS_QUIET_HOURS must look like"),
        ({"SCIWEEK_SMS_HTTP_TEMPLATE": "{phone}"}, "SCIWEEK_SMS_HTTP_TEMPLATE must be a JSON"),
        ({"SCIWEEK_SMS_TENCENT_TEMPLATES": "confirmed"}, "SCIWEEK_SMS_TENCENT_TEMPLATES must"),
        ({"SCIWEEK_SMS_DAILY_CAP": "-1"}, "SCIWEEK_SMS_DAILY_CAP"),
    ],
)
def test_unclear_notification_settings_refuse_to_start(monkeypatch, tmp_path, variables, message):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        create_app()


def test_notification_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SCIWEEK_SMS_QUIET_HOURS", "22:30-07:00")
    monkeypatch.setenv("SCIWEEK_SMS_TENCENT_TEMPLATES", "confirmed=101, changed = 102")
    app = create_app()
    assert app.config["SCIWEEK_SMS_QUIET_HOURS"] == (22 * 60 + 30, 7 * 60)
    assert app.config["SCIWEEK_SMS_TENCENT_TEMPLATES"] == {"confirmed": "101", "changed": "102"}
    assert app.config["SCIWEEK_SMS_BACKEND"] == "console"
    assert app.config["SCIWEEK_BROKER_URL"] == ""
    monkeypatch.setenv("SCIWEEK_SMS_QUIET_HOURS", "off")
    assert create_app().config["SCIWEEK_SMS_QUIET_HOURS"] is None
