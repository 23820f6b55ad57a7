"""SMS codes under simultaneous requests against a real multi-process server, on both
databases: one phone asking for codes at once gets one, and guesses fired together never
get more than the code's 5 tries."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import func, select

from sciweek import create_app
from sciweek.extensions import db
from sciweek.models import VerificationCode
from sciweek.registration.services import RegistrationRequest, register_for_activity

from .conftest import Factory, local
from .fake_sms import FakeGateway
from .live_server import LiveServer, csrf_session
from .waiting import wait_until

PHONE = "13800138000"
SECRET_KEY = "live-test-secret-key-0123456789abcdef"  # the live server's (live_server.py)
TOGETHER = 8


@pytest.fixture
def seeded(empty_database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": empty_database_url,
            "TESTING": True,
            "SECRET_KEY": SECRET_KEY,
            "NOTIFICATIONS_DELIVER_AFTER_COMMIT": False,
        }
    )
    with app.app_context():
        db.create_all()
        activity = Factory().activity(sessions=[(local(2099, 6, 1, 9), local(2099, 6, 1, 11))])
        register_for_activity(activity.id, RegistrationRequest(name="张三", phone=PHONE))
        db.session.commit()
        db.session.remove()
        yield app
        db.session.remove()
        db.engine.dispose()


def fire_together(url: str, posts: list[dict]) -> list[tuple[int, str]]:
    """POST each form body from its own browser-like session, all at the same moment."""
    form_page = url.split("/tickets/")[0] + "/tickets/recover"
    sessions = [csrf_session(form_page) for _ in posts]
    barrier = threading.Barrier(len(posts))
    results: list = [None] * len(posts)

    def fire(i: int) -> None:
        http, token = sessions[i]
        barrier.wait()
        response = http.post(url, data={**posts[i], "csrf_token": token}, timeout=30)
        results[i] = (response.status_code, response.text)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(len(posts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for http, _token in sessions:
        http.close()
    return results


def test_simultaneous_requests_get_one_code_and_five_tries(seeded, tmp_path):
    app = seeded
    gateway = FakeGateway().start()
    env = {
        "SCIWEEK_SMS_BACKEND": "http",
        "SCIWEEK_SMS_HTTP_URL": gateway.url + "/send",
        "SCIWEEK_SMS_HTTP_KEY": gateway.key,
        "SCIWEEK_VERIFICATION_RATE_LIMIT": "1000 per minute",
    }
    with LiveServer(
        app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "server", workers=3, threads=2, env=env
    ) as server:
        asked = fire_together(server.url + "/tickets/recover", [{"phone": PHONE}] * TOGETHER)
        assert sorted(status for status, _ in asked) == [200] + [429] * (TOGETHER - 1), asked
        [text] = wait_until(
            lambda: [t for t in gateway.sent_texts() if "验证码" in t], what="the code's SMS"
        )
        code = re.search(r"验证码([0-9]{6})，", text).group(1)
        guesses = [
            {"phone": PHONE, "code": f"{(int(code) + n) % 1_000_000:06d}"}
            for n in range(1, TOGETHER + 1)
        ]
        guessed = fire_together(server.url + "/tickets/recover/code", guesses)
        right = fire_together(
            server.url + "/tickets/recover/code", [{"phone": PHONE, "code": code}]
        )
    gateway.stop()
    assert [status for status, _ in guessed] == [200] * TOGETHER, guessed
    left = sorted(int(m) for _, html in guessed for m in re.findall(r"还可以再试 ([0-9]) 次", html))
    assert left == [1, 2, 3, 4]
    assert sum("输错次数过多" in html for _, html in guessed) == TOGETHER - 4
    [(status, html)] = right
    assert status == 200
    assert "输错次数过多" in html
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(VerificationCode)) == 1
        assert db.session.scalar(select(VerificationCode.tries)) == 5
        assert db.session.scalar(select(VerificationCode.consumed_at)) is None
        db.session.remove()
