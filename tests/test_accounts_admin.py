"""Accounts in the web UI (issue 14.1): the admins' pages, set-password links, the
forced change, one's own password, 忘记密码 by SMS code, the lockout and the audit log."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import func, select

from sciweek.accounts import links, passwords, reset, services
from sciweek.accounts.services import AccountData, AccountError
from sciweek.extensions import db
from sciweek.models import (
    AuditAction,
    AuditLog,
    OutboxMessage,
    Role,
    SetPasswordToken,
    User,
    utcnow,
)
from sciweek.notifications import sealing

from .conftest import DEFAULT_PASSWORD
from .test_manage import errors_in

NEW_PASSWORD = "tea-garden-417"
PHONE = "13900007777"


def audit_actions(user: User | None = None) -> list[str]:
    stmt = select(AuditLog.action).order_by(AuditLog.id)
    if user is not None:
        stmt = stmt.where(AuditLog.target_user_id == user.id)
    return [str(a) for a in db.session.scalars(stmt)]


def sealed_of(template: str) -> list[dict]:
    """The secret parameters of the waiting messages of ``template``, as the phone sees."""
    rows = db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    key = current_app.config["SECRET_KEY"]
    return [
        {"recipient": m.recipient, "params": m.params, **sealing.unseal(key, m.sealed)}
        for m in rows
        if m.params.get("template") == template
    ]


def issue_link(user, actor=None, send=False, now=None) -> str:
    with current_app.test_request_context():
        url = links.issue_set_password_link(user, actor=actor, send=send, now=now).url
    db.session.commit()
    return url


def fresh_get(client, url: str):
    """GET in an app context of its own, as every request is outside the tests (the test
    app's context would keep the last request's user in ``g``)."""
    with client.application.app_context():
        return client.get(url)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


# --- common passwords ------------------------------------------------------------------


def test_the_vendored_list_holds_the_10000_most_common_passwords():
    common = passwords.common_passwords()
    assert len(common) == 10_000
    assert "password" in common
    assert "123456" in common
    assert passwords.password_problem("PassWord") is not None  # case-insensitive
    assert passwords.password_problem("Qwerty123") is not None
    assert passwords.password_problem("short1") is not None
    assert passwords.password_problem("x" * 201) is not None
    assert passwords.password_problem(NEW_PASSWORD) is None


# --- service: create, edit, disable ----------------------------------------------------


def test_create_user_shares_the_cli_scope_rules_and_audits_in_the_same_transaction(app, make):
    admin = make.user("admin")
    with pytest.raises(AccountError) as refused:
        services.create_user("wang", "organizer", None, actor=admin)
    assert refused.value.field == "department"
    with pytest.raises(AccountError) as refused:
        services.create_user("wang", "coordinator", None, actor=admin)
    assert refused.value.field == "town"
    db.session.rollback()
    assert audit_actions() == []
    town = make.town(code="baisha")
    user = services.create_user(
        "wang", "coordinator", None, town_code="baisha", phone="139 0000 7777", actor=admin
    )
    db.session.rollback()  # the change and its audit entry go together
    assert audit_actions() == []
    user = services.create_user(
        "wang", "coordinator", None, town_code="baisha", phone="139 0000 7777", actor=admin
    )
    db.session.commit()
    assert user.town_id == town.id
    assert user.phone == PHONE
    entry = db.session.scalar(select(AuditLog))
    assert (entry.action, entry.actor_id, entry.target_user_id) == ("created", admin.id, user.id)
    assert entry.details["role"] == "coordinator"
    assert entry.details["phone"] == "139****7777"  # masked even in the log


@pytest.mark.parametrize(
    ("field", "kwargs", "message"),
    [
        ("username", {"username": "taken"}, "用户名已存在"),
        ("email", {"email": "Li@Example.CN"}, "邮箱已被"),
        ("phone", {"phone": "+86 139-0000-7777"}, "手机号已被"),
        ("phone", {"phone": "12345"}, "手机号格式不正确"),
        ("email", {"email": "not-an-address"}, "邮箱格式不正确"),
        ("username", {"username": "u" * 65}, "用户名不能超过"),
        ("password", {"password": "iloveyou"}, "常见密码"),
    ],
)
def test_duplicates_and_bad_values_are_refused_beside_their_field(
    app, make, field, kwargs, message
):
    services.create_user("taken", "checker", None, email="li@example.cn", phone=PHONE)
    db.session.commit()
    values = {"username": "new", "password": None, **kwargs}
    with pytest.raises(AccountError) as refused:
        services.create_user(values.pop("username"), "checker", values.pop("password"), **values)
    assert refused.value.field == field
    assert message in refused.value.message


def test_an_unknown_role_is_refused_beside_the_role_field(app):
    with pytest.raises(AccountError) as refused:
        services.create_user("new", "superuser", None)
    assert refused.value.field == "role"
    assert "未知角色：superuser" in refused.value.message


def test_the_last_enabled_admin_can_be_neither_disabled_nor_demoted(app, make):
    first = make.user("admin")
    with pytest.raises(AccountError, match="最后一位"):
        services.set_user_enabled(first, False, actor=None)
    with pytest.raises(AccountError, match="最后一位"):
        services.update_user(first, AccountData(role="checker"), actor=None)
    db.session.rollback()
    second = make.user("admin")
    with pytest.raises(AccountError, match="自己"):
        services.set_user_enabled(second, False, actor=second)
    services.set_user_enabled(first, False, actor=second)
    db.session.commit()
    with pytest.raises(AccountError, match="最后一位"):
        services.update_user(second, AccountData(role="checker"), actor=second)
    db.session.rollback()
    assert db.session.get(User, second.id).role == Role.ADMIN
    assert audit_actions() == ["disabled"]


def test_edits_are_audited_with_old_and_new_values(app, make):
    admin = make.user("admin")
    department = make.department(code="kjj")
    make.town(code="baisha")
    user = make.user("checker")
    changes = services.update_user(
        user,
        AccountData(role="organizer", display_name="李四", department_code="kjj", phone=PHONE),
        actor=admin,
    )
    db.session.commit()
    assert changes["role"] == ["checker", "organizer"]
    assert user.department_id == department.id
    with pytest.raises(AccountError) as refused:
        services.update_user(user, AccountData(role="coordinator"), actor=admin)
    assert refused.value.field == "town"
    db.session.rollback()
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == AuditAction.UPDATED))
    assert entry.details["changes"]["department"] == [None, "kjj"]
    assert entry.details["changes"]["phone"] == [None, "139****7777"]


# --- log-in: disabled accounts, sessions, lockout --------------------------------------


def test_a_disabled_user_cannot_log_in_and_their_sessions_end(client, make, auth):
    admin = make.user("admin")
    organizer = make.user("organizer")
    assert auth.login(organizer).status_code == 302
    assert client.get("/manage/").status_code == 200
    services.set_user_enabled(organizer, False, actor=admin)
    db.session.commit()
    response = fresh_get(client, "/manage/")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    response = auth.login(organizer)
    assert response.status_code == 200
    assert "用户名或密码不正确" in response.get_data(as_text=True)
    services.set_user_enabled(organizer, True, actor=admin)
    db.session.commit()
    assert auth.login(organizer).status_code == 302


def test_five_failed_log_ins_lock_the_account_until_an_admin_unlocks_it(client, make, auth):
    admin = make.user("admin")
    checker = make.user("checker")
    for _ in range(services.LOCKOUT_AFTER - 1):
        assert "用户名或密码不正确" in auth.login(checker, "wrong-one").get_data(as_text=True)
    text = auth.login(checker, "wrong-one").get_data(as_text=True)
    assert "账号已锁定至" in text
    db.session.expire_all()
    assert checker.failed_logins == services.LOCKOUT_AFTER
    assert checker.is_locked(utcnow())
    # Even the right password waits for the lock to end.
    assert "账号已锁定至" in auth.login(checker).get_data(as_text=True)
    # The admins see it, and unlock.
    auth.login(admin)
    listing = client.get("/manage/users/?role=checker").get_data(as_text=True)
    assert "已锁定至" in listing
    assert "连续登录失败 5 次" in listing
    assert client.post(f"/manage/users/{checker.id}/unlock").status_code == 302
    auth.logout()
    assert auth.login(checker).headers["Location"].endswith("/manage/checkin")
    assert audit_actions(checker) == ["locked", "unlocked"]


def test_a_successful_log_in_forgets_earlier_failures(client, make, auth):
    user = make.user("organizer")
    auth.login(user, "wrong-one")
    auth.login(user, "wrong-one")
    assert auth.login(user).status_code == 302
    db.session.expire_all()
    assert user.failed_logins == 0


# --- set-password links ----------------------------------------------------------------


def test_a_set_password_link_works_once_within_24_hours_and_is_stored_hashed(client, make):
    admin = make.user("admin")
    user = services.create_user("zhao", "checker", None, actor=admin)
    db.session.commit()
    url = issue_link(user, actor=admin)
    token = token_of(url)
    assert url.startswith("https://sciweek.example.cn/password/set/")
    stored = db.session.scalars(select(SetPasswordToken.token_hash)).all()
    assert token not in stored
    assert len(stored) == 1
    page = client.get(f"/password/set/{token}")
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    refused = client.post(f"/password/set/{token}", data={"password": "abc", "confirm": "abc"})
    assert "密码至少 8 位。" in errors_in(refused)
    refused = client.post(
        f"/password/set/{token}", data={"password": "qwertyuiop", "confirm": "qwertyuiop"}
    )
    assert "常见密码" in " ".join(errors_in(refused))
    done = client.post(
        f"/password/set/{token}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert done.status_code == 302
    assert done.headers["Location"].endswith("/login")
    again = client.post(
        f"/password/set/{token}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert again.status_code == 404
    assert "链接无效" in again.get_data(as_text=True)
    assert (
        client.post("/login", data={"username": "zhao", "password": NEW_PASSWORD}).status_code
        == 302
    )
    assert audit_actions(user) == ["created", "link_issued", "password_set_by_link"]


def test_a_newer_link_voids_the_older_and_links_expire(app, make):
    user = make.user("checker")
    older = token_of(issue_link(user))
    newer = token_of(issue_link(user))
    assert links.user_of_link(older) is None
    assert links.user_of_link(newer).id == user.id
    later = utcnow() + timedelta(hours=24, minutes=1)
    assert links.user_of_link(newer, now=later) is None
    with pytest.raises(AccountError, match="链接无效"):
        links.use_set_password_link(newer, NEW_PASSWORD, now=later)
    assert links.user_of_link("x" * 500) is None


def test_a_link_sent_by_sms_travels_sealed(app, make):
    user = make.user("coordinator")
    with pytest.raises(AccountError) as refused:
        issue_link(user, send=True)  # no phone yet
    assert refused.value.field == "send"
    db.session.rollback()
    user.phone = PHONE
    db.session.commit()
    url = issue_link(user, send=True)
    (message,) = sealed_of("set_password_link")
    assert message["recipient"] == PHONE
    assert message["setup_url"] == url
    assert url not in str(message["params"])


def test_setting_a_password_by_link_ends_the_accounts_sessions(client, make, auth):
    user = make.user("organizer")
    auth.login(user)
    assert client.get("/manage/").status_code == 200
    links.use_set_password_link(token_of(issue_link(user)), NEW_PASSWORD)
    db.session.commit()
    assert fresh_get(client, "/manage/").status_code == 302


# --- the forced change and one's own password -------------------------------------------


def test_a_password_chosen_by_someone_else_must_be_changed_before_anything_else(
    client, runner, make
):
    make.department(code="kjj")
    result = runner.invoke(
        args=[
            "create-user",
            "qian",
            "--role",
            "organizer",
            "--department",
            "kjj",
            "--password",
            "given-by-admin-1",
        ]
    )
    assert result.exit_code == 0, result.output
    login = client.post("/login", data={"username": "qian", "password": "given-by-admin-1"})
    assert login.headers["Location"].endswith("/account/password")
    for url in ("/manage/", "/manage/activities/new", "/my/registrations"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].endswith("/account/password"), url
    page = client.get("/account/password").get_data(as_text=True)
    assert "请先设置自己的新密码" in page
    changed = client.post(
        "/account/password",
        data={"current": "given-by-admin-1", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert changed.status_code == 302
    assert client.get("/manage/").status_code == 200
    assert audit_actions() == ["created", "password_changed"]


def test_everyone_changes_their_own_password_with_the_current_one(client, make, auth):
    citizen = make.user("citizen", username="13800001234")
    auth.login(citizen)
    refused = client.post(
        "/account/password",
        data={"current": "not-mine-at-all", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert "当前密码不正确。" in errors_in(refused)
    refused = client.post(
        "/account/password",
        data={"current": DEFAULT_PASSWORD, "password": "password1", "confirm": "password1"},
    )
    assert "常见密码" in " ".join(errors_in(refused))
    refused = client.post(
        "/account/password",
        data={"current": DEFAULT_PASSWORD, "password": NEW_PASSWORD, "confirm": "other-one-22"},
    )
    assert "两次输入的密码不一致。" in errors_in(refused)
    other = db.session.get(User, citizen.id)
    other_client = client.application.test_client()
    with client.application.app_context():
        other_client.post("/login", data={"username": other.username, "password": DEFAULT_PASSWORD})
    assert fresh_get(other_client, "/my/registrations").status_code == 200
    done = client.post(
        "/account/password",
        data={"current": DEFAULT_PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert done.status_code == 302
    assert fresh_get(client, "/my/registrations").status_code == 200  # this one goes on
    assert fresh_get(other_client, "/my/registrations").status_code == 302  # others end
    auth.logout()
    assert auth.login(citizen, NEW_PASSWORD).status_code == 302


# --- 忘记密码 ---------------------------------------------------------------------------


def test_forgot_password_sends_a_code_and_answers_alike_for_unknown_accounts(client, make):
    user = make.user("coordinator", username="sun")
    user.phone = PHONE
    db.session.commit()
    pages = {}
    for identifier in ("sun", "nobody", "13900009999", "139 0000 7777"):
        response = client.post("/password/forgot", data={"identifier": identifier})
        assert response.status_code == 200
        pages[identifier] = response.get_data(as_text=True).replace(identifier, "X")
    assert pages["sun"] == pages["nobody"] == pages["13900009999"]
    codes = [m["otp"] for m in sealed_of("verification")]
    assert len(codes) == 1  # the second ask (by phone) was within the minute: quietly nothing
    wrong = f"{(int(codes[0]) + 1) % 1_000_000:06d}"
    response = client.post(
        "/password/reset",
        data={
            "identifier": "sun",
            "code": wrong,
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert "验证码不正确，还可以再试 4 次。" in errors_in(response)
    response = client.post(
        "/password/reset",
        data={
            "identifier": "nobody",
            "code": codes[0],
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert "验证码无效或已过期，请重新获取。" in errors_in(response)
    response = client.post(
        "/password/reset",
        data={
            "identifier": "sun",
            "code": codes[0],
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302
    assert (
        client.post("/login", data={"username": "sun", "password": NEW_PASSWORD}).status_code == 302
    )
    assert audit_actions(user) == ["password_reset_by_code"]


def test_forgot_password_is_for_enabled_staff_with_a_phone(app, make):
    citizen = make.user("citizen", username=PHONE)
    disabled = make.user("checker", username="zhou")
    disabled.phone, disabled.is_enabled = "13900008888", False
    db.session.commit()
    assert reset.account_for_reset(PHONE) is None
    assert reset.account_for_reset("zhou") is None
    assert reset.account_for_reset("13900008888") is None
    assert reset.account_for_reset("x" * 65) is None
    assert citizen.id  # (a citizen's account name is a phone: not a staff account)


# --- the admins' pages -----------------------------------------------------------------


def test_admin_creates_a_coordinator_and_sees_the_link_once(client, make, auth):
    admin = make.user("admin")
    make.town(name="白沙镇", code="baisha")
    auth.login(admin)
    form = client.get("/manage/users/new").get_data(as_text=True)
    assert "白沙镇" in form
    response = client.post(
        "/manage/users/new",
        data={
            "username": "zhang",
            "display_name": "张联络",
            "role": "coordinator",
            "town": "baisha",
            "department": "",
            "phone": PHONE,
            "email": "",
            "send": "show",
        },
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    url = re.search(
        r'value="(https://sciweek\.example\.cn/password/set/[^"]+)"',
        response.get_data(as_text=True),
    ).group(1)
    user = db.session.scalar(select(User).where(User.username == "zhang"))
    assert user.town.code == "baisha"
    assert user.role == Role.COORDINATOR
    assert links.user_of_link(token_of(url)).id == user.id
    listing = client.get("/manage/users/").get_data(as_text=True)
    assert "139****7777" in listing
    assert PHONE not in listing
    audit_page = client.get("/manage/users/audit").get_data(as_text=True)
    assert "创建账号" in audit_page
    assert "发出设置密码链接" in audit_page


def test_admin_sends_the_link_by_sms(client, make, auth):
    auth.login(make.user("admin"))
    response = client.post(
        "/manage/users/new",
        data={"username": "wu", "role": "checker", "phone": PHONE, "send": "send"},
    )
    assert response.status_code == 302
    (message,) = sealed_of("set_password_link")
    assert "/password/set/" in message["setup_url"]
    refused = client.post(
        "/manage/users/new", data={"username": "wu2", "role": "checker", "send": "send"}
    )
    assert "没有可接收链接的邮箱或手机号" in " ".join(errors_in(refused))
    assert db.session.scalar(select(User.id).where(User.username == "wu2")) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "a\x00b"}, "不能包含控制字符"),
        ({"username": "u" * 65}, "64"),
        ({"phone": "1390000"}, "手机号格式不正确"),
        ({"phone": "١٣٩٠٠٠٠٧٧٧٧"}, "手机号只能使用数字"),
        ({"email": "x@" + "e" * 260 + ".cn"}, "254"),
        ({"role": "organizer"}, "组织者必须指定部门"),
        ({"role": "superuser"}, ""),
        ({"town": "nosuch", "role": "coordinator"}, ""),
    ],
)
def test_bad_input_on_the_create_form_is_answered_beside_the_field(
    client, make, auth, data, message
):
    auth.login(make.user("admin"))
    make.user("checker", username="taken")
    response = client.post(
        "/manage/users/new", data={"username": "new", "role": "checker", "send": "show", **data}
    )
    assert response.status_code == 200
    errors = errors_in(response)
    assert errors
    assert message in " ".join(errors)
    assert db.session.scalar(select(func.count(User.id))) == 2


def test_duplicate_name_and_phone_are_refused_on_the_form(client, make, auth):
    auth.login(make.user("admin"))
    taken = make.user("checker", username="taken")
    taken.phone = PHONE
    db.session.commit()
    response = client.post(
        "/manage/users/new", data={"username": "taken", "role": "checker", "send": "show"}
    )
    assert "用户名已存在：taken" in errors_in(response)
    response = client.post(
        "/manage/users/new",
        data={"username": "new", "role": "checker", "phone": PHONE, "send": "show"},
    )
    assert "此手机号已被其他账号使用。" in errors_in(response)


def test_admin_edits_disables_and_cannot_disable_the_last_admin_on_the_pages(client, make, auth):
    admin = make.user("admin")
    checker = make.user("checker")
    auth.login(admin)
    page = client.get(f"/manage/users/{checker.id}").get_data(as_text=True)
    assert "停用账号" in page
    response = client.post(
        f"/manage/users/{checker.id}",
        data={"display_name": "新名字", "role": "checker", "must_change_password": "y"},
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert checker.display_name == "新名字"
    assert checker.must_change_password
    assert client.post(f"/manage/users/{checker.id}/disable").status_code == 302
    db.session.expire_all()
    assert not checker.is_enabled
    response = client.post(f"/manage/users/{admin.id}/disable", follow_redirects=True)
    assert "不能停用自己的账号" in response.get_data(as_text=True)
    make.department(code="kjj")
    response = client.post(
        f"/manage/users/{admin.id}",
        data={"display_name": "", "role": "organizer", "department": "kjj"},
    )
    assert "最后一位启用的管理员" in " ".join(errors_in(response))
    db.session.expire_all()
    assert admin.role == Role.ADMIN
    assert admin.is_enabled


def field_html(page: str, name: str) -> str:
    """The form field (label, input, hint, errors) whose input is named ``name``."""
    (chunk,) = [c for c in page.split('<div class="field') if f'name="{name}"' in c]
    return chunk


def test_the_edit_form_never_shows_an_accounts_full_phone_number(client, make, auth):
    auth.login(make.user("admin"))
    checker = make.user("checker")
    checker.phone = PHONE
    citizen = make.user("citizen", username="13800001234")  # named by their phone
    db.session.commit()
    page = client.get(f"/manage/users/{checker.id}").get_data(as_text=True)
    assert PHONE not in page
    phone = field_html(page, "phone")
    assert 'placeholder="139****7777"' in phone  # which number the account has, masked
    assert 'value=""' in phone
    page = client.get(f"/manage/users/{citizen.id}").get_data(as_text=True)
    assert "13800001234" not in page
    assert "138****1234" in page


def test_a_citizens_account_named_by_their_phone_is_listed_and_linked_masked(client, make, auth):
    auth.login(make.user("admin"))
    citizen = make.user("citizen", username="13800001234")
    listing = client.get("/manage/users/?role=citizen").get_data(as_text=True)
    assert "138****1234" in listing
    assert "13800001234" not in listing
    page = client.post(f"/manage/users/{citizen.id}/link", data={"send": "show"})
    assert "/password/set/" in page.get_data(as_text=True)
    assert "13800001234" not in page.get_data(as_text=True)


def test_the_edit_form_keeps_replaces_or_removes_the_phone_number(client, make, auth):
    auth.login(make.user("admin"))
    checker = make.user("checker")
    checker.phone = PHONE
    db.session.commit()
    url = f"/manage/users/{checker.id}"
    kept = client.post(url, data={"display_name": "新名字", "role": "checker", "phone": ""})
    assert kept.status_code == 302
    db.session.expire_all()
    assert (checker.display_name, checker.phone) == ("新名字", PHONE)
    refused = client.post(url, data={"role": "checker", "phone": "1390000"})
    assert refused.status_code == 200
    assert "手机号格式不正确" in " ".join(errors_in(refused))
    assert "手机号格式不正确" in field_html(refused.get_data(as_text=True), "phone")
    replaced = client.post(url, data={"role": "checker", "phone": "138 0000 5678"})
    assert replaced.status_code == 302
    db.session.expire_all()
    assert checker.phone == "13800005678"
    removed = client.post(url, data={"role": "checker", "phone": "", "remove_phone": "y"})
    assert removed.status_code == 302
    db.session.expire_all()
    assert checker.phone is None
    entries = db.session.scalars(
        select(AuditLog)
        .where(AuditLog.action == AuditAction.UPDATED, AuditLog.target_user_id == checker.id)
        .order_by(AuditLog.id)
    ).all()
    assert [e.details["changes"].get("phone") for e in entries] == [
        None,  # left empty: the number was kept
        ["139****7777", "138****5678"],
        ["138****5678", None],
    ]


def test_the_audit_log_is_paginated_newest_first(client, make, auth):
    admin = make.user("admin")
    user = make.user("checker")
    for n in range(55):
        services.update_user(user, AccountData(role="checker", display_name=f"名{n}"), actor=admin)
    db.session.commit()
    auth.login(admin)
    first = client.get("/manage/users/audit").get_data(as_text=True)
    assert "名54" in first
    assert "第 1 / 2 页" in first
    second = client.get("/manage/users/audit?page=2").get_data(as_text=True)
    assert "名0 → 名1" not in first
    assert "名0 → 名1" in second


@pytest.mark.parametrize("role", ["organizer", "coordinator", "checker", "citizen"])
def test_only_admins_reach_the_account_pages(client, make, auth, role):
    user = make.user(role)
    auth.login(user)
    for method, url in [
        ("GET", "/manage/users/"),
        ("GET", "/manage/users/new"),
        ("POST", "/manage/users/new"),
        ("GET", f"/manage/users/{user.id}"),
        ("POST", f"/manage/users/{user.id}"),
        ("POST", f"/manage/users/{user.id}/link"),
        ("POST", f"/manage/users/{user.id}/disable"),
        ("POST", f"/manage/users/{user.id}/enable"),
        ("POST", f"/manage/users/{user.id}/unlock"),
        ("GET", "/manage/users/audit"),
    ]:
        assert client.open(url, method=method).status_code == 403, (method, url)
    assert "账号管理" not in client.get("/account/password").get_data(as_text=True)


def test_admins_find_the_account_pages_in_the_navigation(client, make, auth):
    auth.login(make.user("admin"))
    page = client.get("/manage/").get_data(as_text=True)
    assert 'href="/manage/users/"' in page


def test_asking_for_a_code_takes_as_long_with_or_without_an_account(client, make):
    user = make.user("checker", username="zheng")
    user.phone = PHONE
    db.session.commit()
    took = {}
    for identifier in ("zheng", "nobody"):
        started = time.monotonic()
        assert client.post("/password/forgot", data={"identifier": identifier}).status_code == 200
        took[identifier] = time.monotonic() - started
    assert len(sealed_of("verification")) == 1
    assert min(took.values()) >= reset.ANSWER_FLOOR_SECONDS


def test_two_admins_disabling_each_other_at_once_leave_one_enabled(app, make):
    """The second decision waits for the first (the admins' rows are locked) and then
    sees it: one of the two disables is refused."""
    first_id, second_id = make.user("admin").id, make.user("admin").id
    db.session.remove()
    flushed = threading.Event()
    outcomes: dict[str, str] = {}

    def disable(target_id: int, actor_id: int, name: str, wait: bool) -> None:
        with app.app_context():
            try:
                if wait:
                    flushed.wait(10)
                target = db.session.get(User, target_id)
                services.set_user_enabled(target, False, actor=db.session.get(User, actor_id))
                if not wait:
                    flushed.set()
                    time.sleep(0.5)  # the other one now waits for these rows
                db.session.commit()
                outcomes[name] = "disabled"
            except AccountError as exc:
                db.session.rollback()
                outcomes[name] = exc.message
            finally:
                flushed.set()
                db.session.remove()

    threads = [
        threading.Thread(target=disable, args=(first_id, second_id, "a", False)),
        threading.Thread(target=disable, args=(second_id, first_id, "b", True)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert outcomes == {"a": "disabled", "b": "不能停用最后一位启用的管理员。"}
    enabled = db.session.scalars(select(User.id).where(User.is_enabled.is_(True))).all()
    assert enabled == [second_id]
