"""Registering, waitlist, tickets and their QR codes, cancellation, the organizer's list."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import timedelta

import openpyxl
import pytest
from sqlalchemy import func, select

from sciweek import create_app
from sciweek.extensions import db
from sciweek.models import Registration, utcnow
from sciweek.registration import services
from sciweek.registration.tickets import SHORT_CODE_ALPHABET
from sciweek.tokens import hash_secret
from sciweek.training.periods import add_to_roster

from .conftest import local, require_or_skip

TICKET_RE = re.compile(r"^/t/([A-Za-z0-9_-]{32})$")


def register(client, activity, name="张三", phone="13800138000", **extra):
    return client.post(
        f"/activities/{activity.id}/register", data={"name": name, "phone": phone, **extra}
    )


def ticket_secret(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    match = TICKET_RE.match(response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


@pytest.fixture
def open_activity(make):
    return make.activity(
        title="果树修剪", capacity=2, sessions=[(local(2099, 6, 1, 9), local(2099, 6, 1, 11))]
    )


def test_register_confirms_and_shows_ticket(client, open_activity):
    response = register(client, open_activity, phone="138 0013 8000")
    secret = ticket_secret(response)
    registration = db.session.scalar(select(Registration))
    assert registration.phone == "13800138000"
    assert registration.status == "confirmed"
    # Only the hash is stored.
    assert registration.secret_hash == hash_secret(secret)
    assert secret not in {registration.secret_hash, registration.short_code}
    assert len(set(registration.short_code) - set(SHORT_CODE_ALPHABET)) == 0
    page = client.get(f"/t/{secret}")
    text = page.get_data(as_text=True)
    assert "报名成功" in text
    assert "果树修剪" in text
    assert registration.short_code in text
    assert "2099年6月1日 09:00–11:00" in text
    assert f"/activities/{open_activity.id}.ics" in text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "no-store" in page.headers["Cache-Control"]
    db.session.refresh(open_activity)
    assert open_activity.confirmed_count == 1


def test_full_activity_waitlists_with_visible_position(client, open_activity):
    register(client, open_activity, phone="13800000001")
    register(client, open_activity, phone="13800000002")
    third = ticket_secret(register(client, open_activity, phone="13800000003"))
    fourth = ticket_secret(register(client, open_activity, phone="13800000004"))
    assert "候补中：第 1 位" in client.get(f"/t/{third}").get_data(as_text=True)
    assert "候补中：第 2 位" in client.get(f"/t/{fourth}").get_data(as_text=True)
    assert "名额已满，现在报名将进入候补" in client.get(f"/activities/{open_activity.id}").get_data(
        as_text=True
    )


def test_cancel_promotes_first_waitlisted_in_same_transaction(client, open_activity):
    first = ticket_secret(register(client, open_activity, phone="13800000001"))
    register(client, open_activity, phone="13800000002")
    waiting = ticket_secret(register(client, open_activity, phone="13800000003"))
    later = ticket_secret(register(client, open_activity, phone="13800000004"))
    # A confirmation step first: GET shows the question, nothing changes.
    confirm = client.get(f"/t/{first}/cancel")
    assert "确定要取消" in confirm.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).where(Registration.status == "cancelled")) == 0
    client.post(f"/t/{first}/cancel")
    assert "已取消" in client.get(f"/t/{first}").get_data(as_text=True)
    assert "报名成功" in client.get(f"/t/{waiting}").get_data(as_text=True)
    assert "候补中：第 1 位" in client.get(f"/t/{later}").get_data(as_text=True)
    db.session.refresh(open_activity)
    assert open_activity.confirmed_count == 2


def test_cancel_without_waitlist_frees_the_place(client, open_activity):
    first = ticket_secret(register(client, open_activity, phone="13800000001"))
    client.post(f"/t/{first}/cancel")
    db.session.refresh(open_activity)
    assert open_activity.confirmed_count == 0
    # Cancelling twice changes nothing.
    client.post(f"/t/{first}/cancel")
    db.session.refresh(open_activity)
    assert open_activity.confirmed_count == 0


def test_full_without_waitlist_refuses(client, make):
    activity = make.activity(
        capacity=1, waitlist_enabled=False, sessions=[(local(2099, 6, 1), local(2099, 6, 1, 12))]
    )
    ticket_secret(register(client, activity, phone="13800000001"))
    response = register(client, activity, phone="13800000002")
    assert response.status_code == 422
    assert "名额已满" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Registration)) == 1


def test_one_active_registration_per_phone(client, open_activity):
    ticket_secret(register(client, open_activity, phone="13800138000"))
    again = register(client, open_activity, phone="+86 138-0013-8000")
    assert again.status_code == 409
    text = again.get_data(as_text=True)
    assert "该手机号已报名此活动" in text
    assert "/tickets/find" in text
    assert db.session.scalar(select(func.count()).select_from(Registration)) == 1


def test_database_refuses_second_active_registration(app, open_activity):
    from sqlalchemy.exc import IntegrityError

    for code in ("AAAAAA", "BBBBBB"):
        db.session.add(
            Registration(
                activity_id=open_activity.id,
                name="x",
                phone="13800138000",
                status="waitlisted",
                secret_hash=code * 10,
                short_code=code,
            )
        )
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_cancelled_registration_allows_registering_again(client, open_activity):
    secret = ticket_secret(register(client, open_activity))
    client.post(f"/t/{secret}/cancel")
    ticket_secret(register(client, open_activity))


def test_double_submit_gives_one_registration_and_the_ticket(client, open_activity):
    form = {"submission": "same-form-instance-123"}
    first = ticket_secret(register(client, open_activity, **form))
    second = ticket_secret(register(client, open_activity, **form))
    assert db.session.scalar(select(func.count()).select_from(Registration)) == 1
    # The latest ticket link works (the browser shows the second response).
    assert "报名成功" in client.get(f"/t/{second}").get_data(as_text=True)
    assert first != second


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "请填写姓名"),
        ({"name": "长" * 51}, "50"),
        ({"phone": "12345"}, "手机号格式不正确"),
        ({"phone": "1.38001E+10"}, "手机号格式不正确"),
        ({"phone": ""}, "请填写手机号"),
    ],
)
def test_bad_input_gets_message_beside_field(client, open_activity, fields, message):
    data = {"name": "张三", "phone": "13800138000", **fields}
    response = client.post(f"/activities/{open_activity.id}/register", data=data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Registration)) == 0


def test_html_and_emoji_in_name_are_escaped(client, open_activity, make, auth):
    secret = ticket_secret(register(client, open_activity, name="<img src=x onerror=alert(1)>🎉"))
    text = client.get(f"/t/{secret}").get_data(as_text=True)
    assert "<img src=x" not in text
    assert "&lt;img src=x" in text
    assert "🎉" in text


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ({"status": "cancelled"}, "活动已取消"),
        ({"registration_opens_at": utcnow() + timedelta(days=1)}, "报名尚未开始"),
        ({"registration_closes_at": utcnow() - timedelta(minutes=1)}, "报名已截止"),
    ],
)
def test_registration_only_inside_window_of_published(client, make, setup, message):
    activity = make.activity(sessions=[(local(2099, 6, 1), local(2099, 6, 1, 12))], **setup)
    response = register(client, activity)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Registration)) == 0


def test_draft_activity_cannot_be_registered(client, make):
    activity = make.activity(status="draft")
    assert register(client, activity).status_code == 404


def test_cancelled_activity_shows_registrations_cancelled(client, open_activity, make, auth):
    secret = ticket_secret(register(client, open_activity))
    organizer = make.user("organizer", department=open_activity.departments[0])
    auth.login(organizer)
    client.post(f"/manage/activities/{open_activity.id}/cancel", data={"reason": "暴雨"})
    text = client.get(f"/t/{secret}").get_data(as_text=True)
    assert "已取消" in text
    assert "暴雨" in text
    assert "报名成功" not in text


@pytest.mark.parametrize(
    "path",
    ["/t/abc", "/t/" + "A" * 32, "/t/" + "A" * 31, "/t/../etc/passwd", "/t/%00" + "A" * 31],
)
def test_forged_or_truncated_tickets_are_404(client, open_activity, path):
    ticket_secret(register(client, open_activity))
    expected = 400 if "%00" in path else 404  # NUL anywhere in a URL is a 400 (sciweek.inputs)
    assert client.get(path).status_code == expected
    assert client.get(path + "/qr.png").status_code == expected


def test_truncated_real_secret_is_404(client, open_activity):
    secret = ticket_secret(register(client, open_activity))
    assert client.get(f"/t/{secret[:-1]}").status_code == 404
    other_last = "A" if secret[-1] != "A" else "B"
    assert client.get(f"/t/{secret[:-1]}{other_last}").status_code == 404


def zbar_decode_png(png: bytes) -> str:
    from PIL import Image
    from pyzbar.pyzbar import decode

    symbols = decode(Image.open(io.BytesIO(png)))
    assert len(symbols) == 1
    return symbols[0].data.decode()


def zbar_available() -> bool:
    try:
        from pyzbar.pyzbar import decode  # noqa: F401
    except ImportError:
        return False
    return True


def test_qr_png_and_svg_decode_to_absolute_ticket_url(client, open_activity):
    require_or_skip(zbar_available(), "zbar library (Debian libzbar0) not installed")
    require_or_skip(shutil.which("rsvg-convert") is not None, "rsvg-convert (librsvg2-bin) missing")
    secret = ticket_secret(register(client, open_activity))
    expected = f"https://sciweek.example.cn/t/{secret}"
    png = client.get(f"/t/{secret}/qr.png")
    assert png.mimetype == "image/png"
    assert zbar_decode_png(png.data) == expected
    svg = client.get(f"/t/{secret}/qr.svg")
    assert svg.mimetype == "image/svg+xml"
    rendered = subprocess.run(
        ["rsvg-convert", "--width", "400", "--background-color", "white", "--format", "png"],
        input=svg.data,
        capture_output=True,
        check=True,
    ).stdout
    assert zbar_decode_png(rendered) == expected


def test_find_ticket_by_phone_and_short_code_reissues(client, open_activity):
    old = ticket_secret(register(client, open_activity))
    code = db.session.scalar(select(Registration.short_code))
    wrong = client.post("/tickets/find", data={"phone": "13800138000", "short_code": "ZZZZZ2"})
    assert "没有找到" in wrong.get_data(as_text=True)
    new = ticket_secret(
        client.post("/tickets/find", data={"phone": "13800138000", "short_code": code.lower()})
    )
    assert new != old
    # The old link no longer shows the ticket; it says that it was replaced.
    replaced = client.get(f"/t/{old}")
    assert replaced.status_code == 410
    assert "此电子票已更换" in replaced.get_data(as_text=True)
    assert client.get(f"/t/{old}/qr.png").status_code == 410
    assert client.get(f"/t/{new}").status_code == 200
    # A secret that never was stays "not found".
    assert client.get(f"/t/{'A' * 32}").status_code == 404


def test_citizen_account_lists_own_registrations(client, make, open_activity):
    other = make.activity(title="另一个活动", sessions=[(local(2099, 7, 1), local(2099, 7, 1, 12))])
    response = client.post(
        "/account/signup",
        data={"phone": "13900139000", "password": "long-password", "confirm": "long-password"},
    )
    assert response.status_code == 302
    register(client, open_activity, phone="13900139000")
    register(client, other, phone="13900139000")
    page = client.get("/my/registrations").get_data(as_text=True)
    assert "果树修剪" in page
    assert "另一个活动" in page
    registration = db.session.scalar(
        select(Registration).where(Registration.activity_id == other.id)
    )
    secret = ticket_secret(client.post(f"/my/registrations/{registration.id}/ticket"))
    assert "另一个活动" in client.get(f"/t/{secret}").get_data(as_text=True)
    # Someone else's registration is not theirs to show.
    client.post("/logout")
    client.post(
        "/account/signup",
        data={"phone": "13700137000", "password": "long-password", "confirm": "long-password"},
    )
    assert client.post(f"/my/registrations/{registration.id}/ticket").status_code == 404
    assert "果树修剪" not in client.get("/my/registrations").get_data(as_text=True)


def test_signup_rejects_duplicate_and_mismatch(client):
    data = {"phone": "13900139000", "password": "long-password", "confirm": "long-password"}
    client.post("/account/signup", data=data)
    client.post("/logout")
    again = client.post("/account/signup", data=data)
    assert "已注册" in again.get_data(as_text=True)
    bad = client.post("/account/signup", data={**data, "phone": "13900139001", "confirm": "x"})
    assert "不一致" in bad.get_data(as_text=True)


def test_organizer_list_search_counts_and_exports(client, make, auth, open_activity):
    register(client, open_activity, name='=HYPERLINK("http://x")', phone="13800000001")
    register(client, open_activity, name="李四", phone="13800000002")
    register(client, open_activity, name="王五", phone="13800000003")
    organizer = make.user("organizer", department=open_activity.departments[0])
    auth.login(organizer)
    base = f"/manage/activities/{open_activity.id}/registrations"
    page = client.get(base).get_data(as_text=True)
    assert "已确认 2" in page
    assert "候补 1" in page
    assert "138****0002" in page
    assert "13800000002" not in page
    assert "李四" in client.get(base + "?q=0002").get_data(as_text=True)
    assert "王五" not in client.get(base + "?q=0002").get_data(as_text=True)
    assert "王五" in client.get(base + "?q=王").get_data(as_text=True)
    csv_text = client.get(base + ".csv").data.decode("utf-8-sig")
    assert "'=HYPERLINK" in csv_text
    assert "138****0001" in csv_text
    assert "13800000001" not in csv_text
    workbook = openpyxl.load_workbook(io.BytesIO(client.get(base + ".xlsx").data))
    values = [c.value for row in workbook.active.iter_rows() for c in row]
    assert '\'=HYPERLINK("http://x")' in values
    assert not any(isinstance(v, str) and v.startswith("=") for v in values)
    assert "138****0002" in values
    assert "13800000002" not in values
    # Full phones are for admins only.
    values = [
        c.value
        for row in openpyxl.load_workbook(
            io.BytesIO(client.get(base + ".xlsx?full_phone=1").data)
        ).active.iter_rows()
        for c in row
    ]
    assert "13800000002" not in values
    client.post("/logout")
    auth.login(make.user("admin"))
    values = [
        c.value
        for row in openpyxl.load_workbook(
            io.BytesIO(client.get(base + ".xlsx?full_phone=1").data)
        ).active.iter_rows()
        for c in row
    ]
    assert "13800000002" in values


def test_masked_phone_cannot_be_recovered_by_searching_tails(client, make, auth, open_activity):
    """The list shows 138****8000; ever longer tail searches must not reveal the middle.

    Before the fix an organizer recovered the whole number in at most 40 requests.
    """
    register(client, open_activity, name="李四", phone="13812348000")
    auth.login(make.user("organizer", department=open_activity.departments[0]))
    base = f"/manage/activities/{open_activity.id}/registrations"

    def found(q: str) -> bool:
        return "李四" in client.get(base, query_string={"q": q}).get_data(as_text=True)

    assert "138****8000" in client.get(base).get_data(as_text=True)
    known, requests = "8000", 0
    while len(known) < 11:
        for digit in "0123456789":
            requests += 1
            if found(digit + known):
                known = digit + known
                break
        else:
            break
    assert known == "8000", f"recovered {known} in {requests} requests"
    # Neither prefixes, nor middles, nor the full number are matched against phones.
    for q in ("138", "1381234", "1234", "12348000", "13812348000", "800", "8"):
        assert not found(q), q
    hint = client.get(base, query_string={"q": "13812348000"}).get_data(as_text=True)
    assert "手机号只能按后 4 位查找。" in hint
    assert "手机号只能按后 4 位查找。" not in client.get(base, query_string={"q": "8000"}).get_data(
        as_text=True
    )
    # The last four digits (also typed full-width) and names still find the person.
    assert found("8000")
    assert found("８０００")
    assert found(" 8000 ")
    assert found("李")


def test_registrant_search_service_matches_only_phone_tails(make, open_activity):
    activity_id = open_activity.id
    for name, phone in [("李四", "13812348000"), ("王五", "13900008000"), ("赵六", "13512340001")]:
        services.register_for_activity(
            activity_id, services.RegistrationRequest(name=name, phone=phone)
        )

    def names(q: str) -> list[str]:
        return [r.registration.name for r in services.list_registrants(activity_id, query=q)]

    assert names("8000") == ["李四", "王五"]
    assert names("0001") == ["赵六"]
    assert names("1234") == []  # a middle is not a tail
    assert names("48000") == []
    assert names("13812348000") == []
    assert names("138") == []
    assert names("٨٠٠٠") == []  # Arabic-Indic digits are not a phone tail
    assert names("王") == ["王五"]


def test_other_department_cannot_see_registrants(client, make, auth, open_activity):
    auth.login(make.user("organizer"))
    base = f"/manage/activities/{open_activity.id}/registrations"
    assert client.get(base).status_code == 403
    assert client.get(base + ".csv").status_code == 403
    auth.logout()
    auth.login(make.user("checker"))
    assert client.get(base).status_code == 403


def test_organizer_cancel_promotes(client, make, auth, open_activity):
    register(client, open_activity, phone="13800000001")
    register(client, open_activity, phone="13800000002")
    register(client, open_activity, name="候补人", phone="13800000003")
    first = db.session.scalar(select(Registration).order_by(Registration.id))
    auth.login(make.user("organizer", department=open_activity.departments[0]))
    response = client.post(f"/manage/registrations/{first.id}/cancel", follow_redirects=True)
    assert "候补人 已转为正式报名" in response.get_data(as_text=True)


def test_raising_capacity_promotes_waitlist(app, make):
    activity = make.activity(capacity=1, sessions=[(local(2099, 6, 1), local(2099, 6, 1, 12))])
    for n in range(3):
        services.register_for_activity(
            activity.id, services.RegistrationRequest(name="x", phone=f"1380000000{n}")
        )
    activity.capacity = 2
    assert services.fill_from_waitlist(activity.id) == 1
    db.session.commit()
    db.session.refresh(activity)
    assert activity.confirmed_count == 2


def test_registration_posts_are_rate_limited(app_config, tmp_path, monkeypatch, backend, make):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "rl"))
    activity_id = make.activity(sessions=[(local(2099, 6, 1), local(2099, 6, 1, 12))]).id
    db.session.commit()  # end the read transaction (SQLite: it would hold the write lock)
    limited = create_app(
        {**app_config, "RATELIMIT_ENABLED": True, "SCIWEEK_REGISTRATION_RATE_LIMIT": "3 per minute"}
    )
    with limited.app_context():
        client = limited.test_client()
        codes = [
            client.post(
                f"/activities/{activity_id}/register", data={"name": "a", "phone": f"1380000001{n}"}
            ).status_code
            for n in range(5)
        ]
        db.session.remove()
        db.engine.dispose()  # closes the pool's connections (a warning if left to the GC)
    assert codes == [303, 303, 303, 429, 429]


def test_rate_limit_is_shared_between_processes_through_redis(
    app_config, tmp_path, monkeypatch, backend, make
):
    """With SCIWEEK_RATELIMIT_STORAGE_URI on Redis, every worker counts the same limit."""
    import os

    redis_url = os.environ.get("SCIWEEK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        import redis

        client = redis.Redis.from_url(redis_url, socket_connect_timeout=1)
        # The test database (15 by default) belongs to the tests: start from zero.
        client.flushdb()
        reachable = True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        reachable = False
    require_or_skip(reachable, f"Redis not reachable at {redis_url}")
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "redis"))
    activity_id = make.activity(sessions=[(local(2099, 6, 1), local(2099, 6, 1, 12))]).id
    db.session.commit()
    config = {
        **app_config,
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": redis_url,
        "SCIWEEK_REGISTRATION_RATE_LIMIT": "4 per minute",
    }
    # Two application objects stand for two gunicorn workers.
    workers = [create_app(config), create_app(config)]
    codes = []
    for n in range(6):
        worker = workers[n % 2]
        with worker.app_context():
            codes.append(
                worker.test_client()
                .post(
                    f"/activities/{activity_id}/register",
                    data={"name": "a", "phone": f"1380000002{n}"},
                )
                .status_code
            )
            db.session.remove()
            db.engine.dispose()
    assert codes == [303, 303, 303, 303, 429, 429]


def test_purge_removes_personal_data_after_a_year_but_keeps_cadre_links(app, make, runner):
    from sciweek.models import Cadre, Village

    town = make.town(villages=["一村"])
    village = db.session.scalar(select(Village))
    cadre = Cadre(
        name="老干部",
        town_id=town.id,
        village_id=village.id,
        phone="13800000001",
        active_from=local(2020, 1, 1).date(),
    )
    add_to_roster(cadre)
    old = make.activity(sessions=[(local(2024, 3, 1, 9), local(2024, 3, 1, 11))])
    recent = make.activity(sessions=[(local(2099, 3, 1, 9), local(2099, 3, 1, 11))])
    db.session.commit()
    for activity in (old, recent):
        for n, phone in enumerate(("13800000001", "13800000002")):
            # Registering stores the roster cadre of a phone on the roster.
            services.register_for_activity(
                activity.id, services.RegistrationRequest(name=f"人{n}", phone=phone), walk_in=True
            )
    db.session.commit()
    result = runner.invoke(args=["purge-registrations"])
    assert "Anonymised 2" in result.output
    db.session.expire_all()
    old_rows = db.session.scalars(
        select(Registration).where(Registration.activity_id == old.id).order_by(Registration.id)
    ).all()
    assert [r.name for r in old_rows] == ["（已删除）", "（已删除）"]
    assert all(r.phone.startswith("x") for r in old_rows)
    assert old_rows[0].cadre_id == cadre.id
    assert old_rows[1].cadre_id is None
    recent_phones = db.session.scalars(
        select(Registration.phone).where(Registration.activity_id == recent.id)
    ).all()
    assert sorted(recent_phones) == ["13800000001", "13800000002"]
    assert "Anonymised 0" in runner.invoke(args=["purge-registrations"]).output


def test_a_registration_that_checked_in_cannot_be_cancelled(client, open_activity):
    from sciweek.models import CheckIn

    secret = ticket_secret(register(client, open_activity))
    registration = db.session.scalar(select(Registration))
    db.session.add(
        CheckIn(registration_id=registration.id, session_id=open_activity.sessions[0].id)
    )
    db.session.commit()
    page = client.post(f"/t/{secret}/cancel", follow_redirects=True).get_data(as_text=True)
    assert "已签到的报名不能取消" in page
    db.session.expire_all()
    assert db.session.get(Registration, registration.id).status == "confirmed"
