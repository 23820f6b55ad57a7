"""One commit point: services flush, the request (or command) commits once at its end."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from werkzeug.exceptions import Conflict

from sciweek.checkin import fast
from sciweek.checkin import services as checkin_services
from sciweek.extensions import db
from sciweek.models import ApiToken, Registration, User

from .checkin_support import token_for
from .live_server import LiveServer, csrf_session
from .test_registration_live import make_open_activity, rush


def _seen_by_another_connection(sql: str):
    """What a second connection reads (committed rows only), without taking any lock."""
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(sql)
        return cursor.fetchone()[0]
    finally:
        raw.close()


def _committed_tokens() -> int:
    return _seen_by_another_connection("SELECT count(*) FROM api_tokens")


@pytest.mark.parametrize(
    ("failure", "status"), [(RuntimeError("boom"), 500), (Conflict(), 409)], ids=["500", "409"]
)
def test_a_request_failing_after_a_service_flushed_writes_nothing(
    app, client, make, auth, monkeypatch, failure, status
):
    """The token is flushed by the service; the request then fails: nothing is committed."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer the 500 as in production
    user = make.user("checker")
    auth.login(user)
    real = checkin_services.create_api_token

    def create_then_fail(*args, **kwargs):
        real(*args, **kwargs)  # flushes the new token
        raise failure

    monkeypatch.setattr(checkin_services, "create_api_token", create_then_fail)
    response = client.post("/manage/tokens", data={"name": "扫码枪"})
    assert response.status_code == status
    assert _committed_tokens() == 0
    assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_an_unhandled_exception_rolls_back_too(app, client, make, auth, monkeypatch):
    """With exceptions propagated (tests, debug mode) no response passes after_request."""
    user = make.user("checker")
    auth.login(user)
    real = checkin_services.create_api_token

    def create_then_fail(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("boom")

    monkeypatch.setattr(checkin_services, "create_api_token", create_then_fail)
    with pytest.raises(RuntimeError):
        client.post("/manage/tokens", data={"name": "扫码枪"})
    assert _committed_tokens() == 0
    assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_a_successful_request_commits_the_service_changes(app, client, make, auth):
    user = make.user("checker")
    auth.login(user)
    response = client.post("/manage/tokens", data={"name": "扫码枪"})
    assert response.status_code == 200
    assert _committed_tokens() == 1


def test_a_post_is_committed_before_its_redirect_arrives(live_database, tmp_path):
    """A client that follows the redirect at once (or another server) sees the change."""
    app, url = live_database
    activity_id = make_open_activity(waitlist=False, places=5)
    with LiveServer(url, tmp_path / "server", workers=1) as server:
        # Registration: 303 to the ticket.
        (registered,) = rush(server, activity_id, ["13912345678"])
        assert registered.status_code == 303
        assert db.session.scalar(select(Registration.id).where(Registration.phone == "13912345678"))
        db.session.remove()
        # Sign-up: a redirect after creating the account.
        session, token = csrf_session(server.url + "/account/signup")
        response = session.post(
            server.url + "/account/signup",
            data={
                "csrf_token": token,
                "phone": "13912345679",
                "password": "a-long-password",
                "confirm": "a-long-password",
            },
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code in (302, 303)
        assert db.session.scalar(select(User.id).where(User.username == "13912345679"))
        db.session.remove()


def _cached_users() -> int:
    return len(fast._caches().users)


def test_scan_caches_forget_a_revoked_token_only_once_the_revocation_commits(app, make):
    """Forgetting before the commit would let a scan in between cache the token again."""
    checker = make.user("checker")
    raw = token_for(checker)
    token = db.session.scalar(select(ApiToken))

    assert fast.door_user_for_token(raw, checker_services_user_for_token) is not None
    assert _cached_users() == 1
    checkin_services.revoke_api_token(token)  # flushed, not committed
    assert _cached_users() == 1
    db.session.rollback()  # the revocation is undone: the cache stays right
    assert _cached_users() == 1
    assert fast.door_user_for_token(raw, checker_services_user_for_token) is not None

    token = db.session.scalar(select(ApiToken))
    checkin_services.revoke_api_token(token)
    db.session.commit()
    assert _cached_users() == 0
    assert fast.door_user_for_token(raw, checker_services_user_for_token) is None


def checker_services_user_for_token(raw: str):
    return checkin_services.user_for_token(raw)


def test_authentication_commits_nothing(app, make):
    """Noting a token's use is written with the request's own changes, not by itself."""
    checker = make.user("checker")
    raw = token_for(checker)
    assert checkin_services.user_for_token(raw) is not None
    assert _seen_by_another_connection("SELECT last_used_at FROM api_tokens") is None
    db.session.commit()
    assert _seen_by_another_connection("SELECT last_used_at FROM api_tokens") is not None
