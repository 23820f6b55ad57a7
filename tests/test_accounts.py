import pytest
from sqlalchemy import select

from sciweek import create_app
from sciweek.accounts.auth import safe_next_url
from sciweek.accounts.services import create_user
from sciweek.extensions import db
from sciweek.models import Town, User


def test_login_with_good_password_goes_to_back_office(client, make, auth):
    user = make.user("organizer")
    response = auth.login(user)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/manage/")
    assert "管理后台" in client.get("/manage/").get_data(as_text=True)


def test_login_with_bad_password_shows_message_beside_field(client, make, auth):
    user = make.user("admin")
    response = auth.login(user, password="wrong-password")
    assert response.status_code == 200
    assert "用户名或密码不正确" in response.get_data(as_text=True)
    assert client.get("/manage/").status_code == 302


def test_passwords_are_stored_hashed_with_scrypt(app, make):
    """The test factory's cheap hash must not leak into the application's own accounts."""
    department = make.department(code="kjj")
    user = create_user("zhang", "organizer", "plain-secret-123", department_code=department.code)
    db.session.commit()
    assert "plain-secret-123" not in user.password_hash
    assert user.password_hash.startswith("scrypt:32768:8:1$")
    assert user.check_password("plain-secret-123")
    assert not user.check_password("plain-secret-124")


def test_citizen_signup_hashes_with_scrypt(client):
    response = client.post(
        "/account/signup",
        data={
            "phone": "13800138000",
            "password": "plain-secret-123",
            "confirm": "plain-secret-123",
        },
    )
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.username == "13800138000"))
    assert user.password_hash.startswith("scrypt:32768:8:1$")


def test_factory_users_log_in_with_their_cheap_hash(make, auth, client):
    user = make.user("admin")
    assert user.password_hash.startswith("pbkdf2:sha256:1$")
    assert auth.login(user).status_code == 302
    assert client.get("/manage/").status_code == 200


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/manage/", "/manage/"),
        ("//evil.example/", None),
        ("https://evil.example/", None),
        ("/\\evil.example", None),
        ("javascript:alert(1)", None),
        ("", None),
    ],
)
def test_next_is_validated(target, expected):
    assert safe_next_url(target) == expected


def test_login_redirects_only_to_local_next(client, make):
    user = make.user("admin")
    response = client.post(
        "/login",
        data={"username": user.username, "password": "correct-horse-9", "next": "//evil.example/"},
    )
    assert response.headers["Location"] == "/manage/"


def test_logout_is_a_post(client, make, auth):
    auth.login(make.user("admin"))
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 302
    assert client.get("/manage/").status_code == 302


def test_login_is_rate_limited(app_config, tmp_path, monkeypatch, backend):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "rl"))
    app = create_app({**app_config, "RATELIMIT_ENABLED": True})
    with app.app_context():
        if backend == "sqlite":
            db.create_all()
        client = app.test_client()
        codes = [
            client.post("/login", data={"username": "x", "password": "y"}).status_code
            for _ in range(12)
        ]
        db.session.remove()  # returns its connection, which dispose() then closes
        db.engine.dispose()
    assert codes[:10] == [200] * 10
    assert codes[10] == 429


def test_csrf_is_enforced_on_login(app_config, tmp_path, monkeypatch, backend):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "csrf"))
    app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    with app.app_context():
        if backend == "sqlite":
            db.create_all()
        response = app.test_client().post("/login", data={"username": "x", "password": "y"})
        db.session.remove()
        db.engine.dispose()
    assert response.status_code == 400
    assert "表单已过期" in response.get_data(as_text=True)


def test_cli_create_user_and_town(runner, make):
    department = make.department(code="kjj")
    result = runner.invoke(args=["town", "add", "城关镇", "--code", "chengguan"])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(Town).where(Town.code == "chengguan")).name == "城关镇"
    result = runner.invoke(
        args=[
            "create-user",
            "zhang",
            "--role",
            "organizer",
            "--department",
            "kjj",
            "--password",
            "long-enough-pw",
        ]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.username == "zhang"))
    assert user.department_id == department.id
    assert user.check_password("long-enough-pw")
    result = runner.invoke(
        args=["create-user", "li", "--role", "coordinator", "--town", "chengguan"]
    )
    assert result.exit_code == 0
    assert "Password:" in result.output


def test_cli_refuses_bad_scopes(runner, make):
    result = runner.invoke(args=["create-user", "a", "--role", "organizer", "--password", "x" * 9])
    assert result.exit_code != 0
    assert "部门" in result.output
    result = runner.invoke(
        args=[
            "create-user",
            "b",
            "--role",
            "coordinator",
            "--town",
            "nosuch",
            "--password",
            "x" * 9,
        ]
    )
    assert result.exit_code != 0
    assert "nosuch" in result.output
    runner.invoke(args=["town", "add", "甲镇", "--code", "jia"])
    result = runner.invoke(args=["town", "add", "甲镇", "--code", "jia"])
    assert result.exit_code != 0
