# ruff: noqa: E501  (the table of cases reads best one case a line)
"""One error vocabulary for every /api/ URL: each error status a URL can produce answers
JSON ``{"error": "<snake_case kind>", "message": "<non-empty, in the visitor's language>"}``
(docs/checkin_api.md, "Errors"), whether the route, Flask, Flask-Limiter or the CSRF check
answers it."""

from __future__ import annotations

import re

import pytest
from flask_babel import refresh

from sciweek import create_app
from sciweek.extensions import db, limiter

from .checkin_support import assert_api_error, bearer, issue_ticket, sessions_now, token_for
from .conftest import DEFAULT_PASSWORD

BIG = "A" * 5000  # over the API's 4 KB body limit


@pytest.fixture
def door(make):
    activity = make.activity(capacity=2, sessions=sessions_now())
    organizer = make.user("admin")
    checker = make.user("checker")
    checker.assigned_activities.append(activity)
    stranger = make.user("checker")
    db.session.commit()
    ticket = issue_ticket(activity)
    ids = {
        "ACT": activity.id,
        "OTHER": 999_999,
        "SESSION": activity.sessions[0].id,
        "REG": ticket.registration_id,
    }
    tokens = {
        "admin": token_for(organizer),
        "checker": token_for(checker),
        "stranger": token_for(stranger),
    }
    return ids, tokens, ticket


def _checkin(client, ids, tokens, ticket) -> int:
    body = {"code": ticket.secret, "activity_id": ids["ACT"]}
    answer = client.post("/api/v1/checkins", json=body, headers=bearer(tokens["checker"]))
    return answer.get_json()["checkin_id"]


# (rule, method, url, who, body, status, kind); ACT, OTHER, CHECKIN are filled in.
# body: a dict is sent as JSON, a str as the raw body of an application/json request.
SCAN = "/api/v1/checkins"
UNDO = "/api/v1/checkins/<int:checkin_id>/undo"
ROSTER = "/api/v1/activities/<int:activity_id>/roster"
WALK_IN = "/api/v1/activities/<int:activity_id>/walk-ins"
OVER = "/api/v1/activities/<int:activity_id>/over-capacity"
PERSON = {"name": "王五", "phone": "13900000009"}
SEARCH = "/api/v1/activities/<int:activity_id>/roster/search"
ROSTER_CHECKIN = "/api/v1/activities/<int:activity_id>/roster-checkins"
CASES = [
    # scan
    (SCAN, "POST", "/api/v1/checkins", None, {"code": "X", "activity_id": "ACT"}, 401, "unauthorized"),
    (SCAN, "POST", "/api/v1/checkins", "nope", {"code": "X", "activity_id": "ACT"}, 401, "unauthorized"),
    (SCAN, "POST", "/api/v1/checkins", "stranger", {"code": "X", "activity_id": "ACT"}, 403, "forbidden"),
    (SCAN, "POST", "/api/v1/checkins", "checker", {"code": "X", "activity_id": "OTHER"}, 404, "not_found"),
    (SCAN, "GET", "/api/v1/checkins", "checker", None, 405, "method_not_allowed"),
    (SCAN, "POST", "/api/v1/checkins", "checker", {"code": BIG, "activity_id": "ACT"}, 413, "too_large"),
    (SCAN, "POST", "/api/v1/checkins", "checker", "not json", 400, "invalid_json"),
    (SCAN, "POST", "/api/v1/checkins", "checker", "[1, 2]", 400, "invalid_json"),
    (SCAN, "POST", "/api/v1/checkins", "checker", {"code": "X", "activity_id": "1"}, 400, "invalid"),
    (SCAN, "POST", "/api/v1/checkins", "checker", {"code": "X", "activity_id": "ACT", "scanned_at": "2099-01-01T00:00:00Z"}, 400, "invalid"),
    (SCAN, "POST", "/api/v1/checkins", "checker", {"code": "X", "activity_id": "ACT", "session_id": "OTHER"}, 400, "bad_request"),
    (SCAN, "POST", "/api/v1/checkins", "checker", {"code": "X", "activity_id": "ACT", "override_reason": "提前到场"}, 403, "forbidden"),
    (SCAN, "POST", "/api/v1/checkins", "admin", {"code": "X", "activity_id": "ACT", "override_reason": " "}, 400, "invalid"),
    # undo
    (UNDO, "POST", "/api/v1/checkins/CHECKIN/undo", None, None, 401, "unauthorized"),
    (UNDO, "POST", "/api/v1/checkins/CHECKIN/undo", "checker", None, 403, "forbidden"),
    (UNDO, "POST", "/api/v1/checkins/OTHER/undo", "admin", None, 404, "not_found"),
    (UNDO, "GET", "/api/v1/checkins/CHECKIN/undo", "admin", None, 405, "method_not_allowed"),
    (UNDO, "POST", "/api/v1/checkins/CHECKIN/undo", "admin", BIG, 413, "too_large"),
    (UNDO, "POST", "/api/v1/checkins/UNDONE/undo", "admin", None, 400, "already_undone"),
    # roster
    (ROSTER, "GET", "/api/v1/activities/ACT/roster", None, None, 401, "unauthorized"),
    (ROSTER, "GET", "/api/v1/activities/ACT/roster", "stranger", None, 403, "forbidden"),
    (ROSTER, "GET", "/api/v1/activities/OTHER/roster", "checker", None, 404, "not_found"),
    (ROSTER, "POST", "/api/v1/activities/ACT/roster", "checker", None, 405, "method_not_allowed"),
    # walk-ins
    (WALK_IN, "POST", "/api/v1/activities/ACT/walk-ins", None, PERSON, 401, "unauthorized"),
    (WALK_IN, "POST", "/api/v1/activities/ACT/walk-ins", "stranger", PERSON, 403, "forbidden"),
    (WALK_IN, "POST", "/api/v1/activities/OTHER/walk-ins", "checker", PERSON, 404, "not_found"),
    (WALK_IN, "GET", "/api/v1/activities/ACT/walk-ins", "checker", None, 405, "method_not_allowed"),
    (WALK_IN, "POST", "/api/v1/activities/ACT/walk-ins", "checker", {"name": BIG, "phone": "13900000009"}, 413, "too_large"),
    (WALK_IN, "POST", "/api/v1/activities/ACT/walk-ins", "checker", "{", 400, "invalid_json"),
    (WALK_IN, "POST", "/api/v1/activities/ACT/walk-ins", "checker", {"phone": "13900000009"}, 400, "invalid"),
    (WALK_IN, "POST", "/api/v1/activities/ACT/walk-ins", "checker", {"name": "王五", "phone": "12345"}, 400, "invalid"),
    (WALK_IN, "POST", "/api/v1/activities/ACT/walk-ins", "checker", {**PERSON, "override_reason": "现场补录"}, 403, "forbidden"),
    # roster door: search and check-in of invited cadres
    (SEARCH, "GET", "/api/v1/activities/ACT/roster/search?q=张", None, None, 401, "unauthorized"),
    (SEARCH, "GET", "/api/v1/activities/ACT/roster/search?q=张", "stranger", None, 403, "forbidden"),
    (SEARCH, "GET", "/api/v1/activities/OTHER/roster/search?q=张", "checker", None, 404, "not_found"),
    (SEARCH, "POST", "/api/v1/activities/ACT/roster/search", "checker", None, 405, "method_not_allowed"),
    (SEARCH, "GET", "/api/v1/activities/ACT/roster/search?town_id=x", "checker", None, 400, "bad_request"),
    (ROSTER_CHECKIN, "POST", "/api/v1/activities/ACT/roster-checkins", None, {"cadre_id": 1}, 401, "unauthorized"),
    (ROSTER_CHECKIN, "POST", "/api/v1/activities/ACT/roster-checkins", "stranger", {"cadre_id": 1}, 403, "forbidden"),
    (ROSTER_CHECKIN, "POST", "/api/v1/activities/OTHER/roster-checkins", "checker", {"cadre_id": 1}, 404, "not_found"),
    (ROSTER_CHECKIN, "GET", "/api/v1/activities/ACT/roster-checkins", "checker", None, 405, "method_not_allowed"),
    (ROSTER_CHECKIN, "POST", "/api/v1/activities/ACT/roster-checkins", "checker", {"cadre_id": 1, "nonce": BIG}, 413, "too_large"),
    (ROSTER_CHECKIN, "POST", "/api/v1/activities/ACT/roster-checkins", "checker", "[", 400, "invalid_json"),
    (ROSTER_CHECKIN, "POST", "/api/v1/activities/ACT/roster-checkins", "checker", {"cadre_id": "1"}, 400, "invalid"),
    (ROSTER_CHECKIN, "POST", "/api/v1/activities/ACT/roster-checkins", "checker", {"cadre_id": 1}, 400, "not_invited"),
    (WALK_IN, "POST", "/api/v1/activities/ACT/walk-ins", "checker", {"name": "王大爷", "no_phone": True}, 400, "invalid"),
    (WALK_IN, "POST", "/api/v1/activities/ACT/walk-ins", "checker", {**PERSON, "over_capacity": True}, 403, "forbidden"),
    # admissions over capacity (organizers only)
    (OVER, "POST", "/api/v1/activities/ACT/over-capacity", None, {"registration_id": "REG"}, 401, "unauthorized"),
    (OVER, "POST", "/api/v1/activities/ACT/over-capacity", "checker", {"registration_id": "REG"}, 403, "forbidden"),
    (OVER, "POST", "/api/v1/activities/OTHER/over-capacity", "admin", {"registration_id": "REG"}, 404, "not_found"),
    (OVER, "POST", "/api/v1/activities/ACT/over-capacity", "admin", {"registration_id": "OTHER"}, 404, "not_found"),
    (OVER, "GET", "/api/v1/activities/ACT/over-capacity", "admin", None, 405, "method_not_allowed"),
    (OVER, "POST", "/api/v1/activities/ACT/over-capacity", "admin", BIG, 413, "too_large"),
    (OVER, "POST", "/api/v1/activities/ACT/over-capacity", "admin", "{", 400, "invalid_json"),
    (OVER, "POST", "/api/v1/activities/ACT/over-capacity", "admin", {"registration_id": "1"}, 400, "invalid"),
    # no such URL under /api/
    (None, "GET", "/api/v1/nothing-here", None, None, 404, "not_found"),
    (None, "POST", "/api/v2/checkins", "checker", {"code": "X"}, 404, "not_found"),
    (None, "GET", "/api/v1/checkins/abc/undo", "admin", None, 404, "not_found"),
]  # fmt: skip


def _fill(value, ids):
    if isinstance(value, str):
        for key, number in ids.items():
            value = value.replace(key, str(number))
        return value
    if isinstance(value, dict):
        return {k: int(_fill(v, ids)) if v in ids else _fill(v, ids) for k, v in value.items()}
    return value


def _request(client, method, url, who, body, tokens):
    headers = {}
    if who is not None:
        headers.update(bearer(tokens.get(who, "swk_" + who)))
    if isinstance(body, dict):
        return client.open(url, method=method, json=body, headers=headers)
    if isinstance(body, str):
        headers["Content-Type"] = "application/json"
        return client.open(url, method=method, data=body, headers=headers)
    return client.open(url, method=method, headers=headers)


@pytest.mark.parametrize(
    ("rule", "method", "url", "who", "body", "status", "kind"),
    CASES,
    ids=[f"{c[1]} {c[2]} {c[5]} {c[6]}" for c in CASES],
)
def test_every_api_error_speaks_the_vocabulary(
    client, door, rule, method, url, who, body, status, kind
):
    ids, tokens, ticket = door
    ids = dict(ids)
    if "CHECKIN" in url or "UNDONE" in url:
        checkin_id = _checkin(client, ids, tokens, ticket)
        ids["CHECKIN"] = ids["UNDONE"] = checkin_id
        if "UNDONE" in url:
            first = client.post(f"/api/v1/checkins/{checkin_id}/undo", headers=bearer(tokens[who]))
            assert first.status_code == 200
    response = _request(client, method, _fill(url, ids), who, _fill(body, ids), tokens)
    answer = assert_api_error(response, status, kind)
    if kind == "invalid":
        # The field is named, in Chinese, in the message and in "fields".
        assert answer["fields"], answer
        assert answer["field"] in answer["fields"], answer
        assert (
            answer["field"] in answer["message"] or answer["message"] in answer["fields"].values()
        )
        assert re.search(r"[\u4e00-\u9fff]", answer["message"]), answer


def test_every_api_url_and_its_errors_are_in_the_table(app):
    """A new /api/ URL must join the table above with its 401, 404 and 405 (and 400 and 413
    when it reads a body)."""
    covered: dict[str, set[int]] = {}
    for rule, _method, _url, _who, _body, status, _kind in CASES:
        covered.setdefault(rule, set()).add(status)
    api_rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/")]
    assert api_rules
    for rule in api_rules:
        statuses = covered.get(rule.rule, set())
        assert {401, 404, 405} <= statuses, (rule.rule, statuses)
        if "POST" in rule.methods:
            assert {400, 413} <= statuses, (rule.rule, statuses)


def test_validation_answer_names_the_field(client, door):
    ids, tokens, _ticket = door
    body = {"code": "   ", "activity_id": "x", "session_id": -1, "nonce": 5}
    response = client.post("/api/v1/checkins", json=body, headers=bearer(tokens["checker"]))
    answer = assert_api_error(response, 400, "invalid")
    assert set(answer["fields"]) == {"code", "activity_id", "session_id", "nonce"}
    assert answer["fields"]["activity_id"] == "activity_id 应为正整数。"
    assert answer["fields"]["code"] == "code 应为非空字符串。"
    # In English for an English visitor (?lang=en or the lang cookie).
    refresh()  # the fixture's app context (and Flask-Babel's cached locale) spans requests
    english = client.post("/api/v1/checkins?lang=en", json=body, headers=bearer(tokens["checker"]))
    assert "activity_id" in english.get_json()["fields"]["activity_id"]
    assert not re.search(r"[\u4e00-\u9fff]", english.get_json()["message"])


def test_unknown_api_url_in_english(client):
    response = client.get("/api/nothing?lang=en")
    body = assert_api_error(response, 404, "not_found")
    assert not re.search(r"[\u4e00-\u9fff]", body["message"])


def test_server_error_speaks_the_vocabulary(app, client, door, monkeypatch):
    ids, tokens, _ticket = door
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def broken(activity):
        raise RuntimeError("boom")

    monkeypatch.setattr("sciweek.checkin.services.roster", broken)
    response = client.get(
        f"/api/v1/activities/{ids['ACT']}/roster", headers=bearer(tokens["checker"])
    )
    assert_api_error(response, 500, "server_error")


def test_csrf_refusal_speaks_the_vocabulary(app_config, door, make):
    """A logged-in page posting without its X-CSRFToken header."""
    ids, _tokens, _ticket = door
    username = make.user("admin").username
    db.session.close()  # SQLite: release the write lock before the second app writes
    csrf_app = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    client = csrf_app.test_client()
    with csrf_app.app_context():
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        client.post(
            "/login", data={"username": username, "password": DEFAULT_PASSWORD, "csrf_token": token}
        )
        refused = client.post("/api/v1/checkins", json={"code": "X", "activity_id": ids["ACT"]})
        assert_api_error(refused, 400, "csrf")
        db.session.remove()
        db.engine.dispose()


def test_rate_limit_speaks_the_vocabulary(app_config, monkeypatch, tmp_path):
    """Flask-Limiter's 429 under /api/ (no API URL is limited today; a future one must answer
    in the vocabulary too)."""
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "limited"))
    limited_app = create_app(
        {**app_config, "RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://"}
    )

    @limiter.limit("1 per minute")
    def limited():
        return {"ok": True}

    limited_app.add_url_rule("/api/v1/limited-for-test", "limited_for_test", limited)
    client = limited_app.test_client()
    assert client.get("/api/v1/limited-for-test").status_code == 200
    assert_api_error(client.get("/api/v1/limited-for-test"), 429, "rate_limited")
