"""Malformed input gets a 400, a 404 or a message beside the field; never a 500.

The table holds concrete requests that used to answer 500 (found by the audit and by
tests/test_fuzz_*.py) or to store what they should have refused; each runs on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

import pytest
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import Form as PlainForm

from sciweek.extensions import db
from sciweek.forms import Form, SubForm
from sciweek.inputs import JSON_MAX_DEPTH, IdConverter, json_depth
from sciweek.models import Activity, Cadre, Department, Registration

from .conftest import local
from .training_helpers import attend, cadre

ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")
BAD_CHARS = "不能包含控制字符"
BAD_REQUEST = "请求中含有无效字符"


@pytest.fixture
def world(make):
    """An organizer's training with one registration, a town with a cadre, every role."""
    department = make.department()
    town = make.town(code="chengguan", villages=["东关村"])
    activity = make.activity(
        kind="training",
        departments=[department],
        town=town,
        capacity=5,
        sessions=[(local(2099, 6, 1, 9), local(2099, 6, 1, 11))],
    )
    registration = attend(activity, "13900000001", sessions=[])
    person = cadre(town, phone="13900000002")
    # Made when first asked for: each costs a password hash.
    users = {
        "admin": lambda: make.user("admin"),
        "organizer": lambda: make.user("organizer", department=department),
        "coordinator": lambda: make.user("coordinator", town=town),
    }
    return {
        "activity": activity.id,
        "session": activity.sessions[0].id,
        "registration": registration.id,
        "town": town.id,
        "village": town.villages[0].id,
        "cadre": person.id,
        "department": department.id,
        "users": users,
    }


def activity_form(w, **changes) -> dict:
    data = {
        "title": "新活动",
        "kind": "outreach",
        "departments": str(w["department"]),
        "campaign_id": "0",
        "town_id": "0",
        "village_id": "0",
        "audience": "public",
        "sessions-0-starts_at": "2099-07-01T09:00",
        "sessions-0-ends_at": "2099-07-01T11:00",
    }
    data.update(changes)
    return data


@dataclass
class Case:
    """One request; ``{activity}``, ``{session}``... are filled from the ``world``."""

    role: str | None
    method: str
    url: str
    status: int | tuple[int, ...]
    form: dict | None = None
    json: object = None
    body: str | None = None  # raw JSON text
    says: str | None = None  # text expected in the answer
    extra: dict = field(default_factory=dict)


def _case_id(case: Case) -> str:
    payload = case.form or case.json or (case.body[:12] if case.body else "")
    return f"{case.method} {case.url} {payload!r}"[:90]


DEEP_ARRAY = "[" * 1100 + "]" * 1100
DEEP_OBJECT = '[{"":' * 550 + "1" + "}]" * 550  # 1,100 levels within the API's 4 KB

CASES = [
    # --- ids in paths: ASCII digits that an integer column holds, else 404 ---------------
    Case(None, "GET", "/activities/99999999999999999999", 404),
    Case(None, "GET", "/activities/2147483648", 404),
    Case(None, "GET", "/activities/9223372036854775808.ics", 404),
    Case(None, "POST", "/activities/9223372036854775808/register", 404, form={"name": "x"}),
    Case("admin", "POST", "/api/v1/checkins/99999999999999999999/undo", 404),
    Case("admin", "GET", "/api/v1/activities/2147483648/roster", 404),
    Case("admin", "POST", "/api/v1/activities/2147483648/walk-ins", 404, json={}),
    Case("admin", "GET", "/manage/training/towns/2147483648", 404),
    Case("admin", "GET", "/manage/training/towns/9223372036854775808/untrained.xlsx", 404),
    Case("coordinator", "GET", "/manage/training/cadres/9223372036854775808/leave", 404),
    Case("admin", "POST", "/manage/activities/{activity}/checkers/2147483648/remove", 404),
    Case("admin", "POST", "/manage/registrations/99999999999999999999/cancel", 404),
    Case("admin", "GET", "/manage/activities/4294967296/edit", 404),
    # --- integers in query strings: one parser, 400 with a message ------------------------
    Case(None, "GET", "/calendar.ics?campaign=²", 400),
    Case(None, "GET", "/?campaign=²", 200),  # the listing's subscribe link read it too
    Case(None, "GET", "/calendar.ics?campaign=99999999999999", 400),
    Case(None, "GET", "/?page=9223372036854775807", 400, says="page"),
    Case(None, "GET", "/?page=١", 400),
    Case("admin", "GET", "/manage/?page=9223372036854775807", 400),
    Case("admin", "GET", "/manage/training/roster?town_id=2147483648", 400, says="town_id"),
    Case("admin", "GET", "/manage/training/roster?town_id=١", 400),
    Case("admin", "GET", "/manage/training/unmatched?town_id=9223372036854775808", 400),
    Case("admin", "GET", "/manage/activities/{activity}/scan?session=١٢", 400),
    # --- NUL and control characters in the path or the query string: 400 -----------------
    Case(None, "GET", "/?q=%00", 400, says=BAD_REQUEST),
    Case(None, "GET", "/?town=%00", 400),
    Case(None, "GET", "/?kind=outreach&from=2026-05-01%00", 400),
    Case(None, "GET", "/calendar.ics?town=a%00", 400),
    Case(None, "GET", "/login?next=/%00", 400),
    Case(None, "GET", "/t/abc%00def", 400),
    Case("admin", "GET", "/manage/activities/{activity}/registrations?q=%00", 400),
    Case("admin", "GET", "/manage/training/import/abcdefghijklmnopqrstu%00", 400),
    Case("admin", "GET", "/api/v1/activities/{activity}/roster?x=%01", 400, says=BAD_REQUEST),
    # --- NUL in a form field: a message beside the field, nothing stored -------------------
    Case(None, "POST", "/login", 200, form={"username": "a\x00", "password": "x"}, says=BAD_CHARS),
    Case(
        None,
        "POST",
        "/activities/{activity}/register",
        422,
        form={"name": "张\x00三", "phone": "13800138000"},
        says=BAD_CHARS,
    ),
    Case(
        None,
        "POST",
        "/tickets/find",
        200,
        form={"phone": "13800138000", "short_code": "AB\x00CDE"},
        says=BAD_CHARS,
    ),
    Case(
        None,
        "POST",
        "/account/signup",
        200,
        form={"phone": "13800138000", "display_name": "\x00", "password": "p" * 9},
        says=BAD_CHARS,
    ),
    Case("admin", "POST", "/manage/activities/new", 200, form={"title": "a\x00"}, says=BAD_CHARS),
    Case(
        "admin",
        "POST",
        "/manage/activities/new",
        200,
        form={"sessions-0-note": "第一场\x00"},
        says=BAD_CHARS,
    ),
    Case(
        "admin",
        "POST",
        "/manage/activities/{activity}/cancel",
        200,
        form={"reason": "\x00"},
        says=BAD_CHARS,
    ),  # fmt: skip
    Case(
        "admin",
        "POST",
        "/manage/departments",
        200,
        form={"code": "d\x00", "name": "部门"},
        says=BAD_CHARS,
    ),
    Case("admin", "POST", "/manage/tokens", 200, form={"name": "门口\x00"}, says=BAD_CHARS),
    # --- the API: deep nesting, NUL and lone surrogates are a 400 with a JSON message ----
    # (a scanned code holding them is an "invalid" scan: tests/test_checkin_api.py)
    Case(
        "admin",
        "POST",
        "/api/v1/checkins",
        400,
        json={"code": "x", "activity_id": "{activity}", "nonce": "\x00"},
    ),
    Case(
        "admin",
        "POST",
        "/api/v1/checkins",
        200,
        body='{"code": "\\ud800", "activity_id": {activity}}',
        says="invalid",
    ),
    Case("admin", "POST", "/api/v1/checkins", 400, body=DEEP_ARRAY, says="嵌套"),
    Case("admin", "POST", "/api/v1/checkins", 400, body=DEEP_OBJECT, says="嵌套"),
    Case("admin", "POST", "/api/v1/activities/{activity}/walk-ins", 400, body=DEEP_ARRAY),
    Case(
        "admin",
        "POST",
        "/api/v1/activities/{activity}/walk-ins",
        400,
        body='{"name": "\\udfff", "phone": "13800138000"}',
    ),
    # --- a JSON body sent to an HTML form fills no field ----------------------------------
    Case(None, "POST", "/login", 200, json=[False]),
    Case(None, "POST", "/login", 200, body=DEEP_ARRAY),
    Case(None, "POST", "/activities/{activity}/register", 422, json=[1, 2]),
    Case(None, "POST", "/account/signup", 200, json={"phone": {"a": 1}}),
    Case("admin", "POST", "/manage/activities/new", 200, json="x"),
    Case("admin", "POST", "/manage/departments", 200, json=[[1]]),
    Case("admin", "POST", "/manage/activities/{activity}/publish", 302, json=["x"]),
    Case(None, "POST", "/checkin/self/1.2.AAAAAAAAAAAAAAAA", 400, body=DEEP_ARRAY),
    # --- integers and decimals in forms: ASCII digits within range, else a message ------
    Case(
        None,
        "POST",
        "/activities/{activity}/register",
        (303, 422),
        form={"name": "张三", "phone": "13800138000", "town_id": "2147483648"},
    ),
    Case(
        None,
        "POST",
        "/activities/{activity}/register",
        (303, 422),
        form={"name": "张三", "phone": "13800138000", "village_id": "99999999999999999999"},
    ),
    Case(
        "coordinator",
        "POST",
        "/manage/training/unmatched",
        200,
        form={"registration_id": "9223372036854775808", "cadre_id": "{cadre}"},
    ),
    Case(
        "coordinator",
        "POST",
        "/manage/training/unmatched",
        200,
        form={"registration_id": "{registration}", "cadre_id": "9223372036854775808"},
    ),
    Case(
        "admin",
        "POST",
        "/manage/training/targets?year=2026",
        400,
        form={"rows-0-town_id": "²", "rows-0-target_percent": "80"},
    ),
    Case(
        "admin",
        "POST",
        "/manage/training/targets?year=2026",
        200,
        form={"rows-0-town_id": "{town}", "rows-0-target_percent": "NaN"},
        says="请填写数字",
    ),
    Case(
        "admin",
        "POST",
        "/manage/activities/{activity}/edit",
        200,
        form={"sessions-0-id": "²"},
        says="场次",
    ),
]
FORM_CASES = [
    ({"village_id": "9223372036854775808"}, None),
    ({"campaign_id": "2147483648"}, None),
    ({"departments": "99999999999999999999"}, None),
    ({"capacity": "2147483648"}, "名额须在 0 到 100000 之间"),
    ({"capacity": "١٢"}, "请填写整数"),
    ({"capacity": "1_000"}, "请填写整数"),
    ({"latitude": "NaN", "longitude": "120"}, "请填写数字"),
    ({"latitude": "30", "longitude": "sNaN"}, "请填写数字"),
    ({"sessions-0-credit_hours": "1e999999"}, "请填写数字"),
    ({"sessions-0-credit_hours": "Infinity"}, "请填写数字"),
    ({"sessions-0-credit_hours": "２"}, "请填写数字"),
]


def _fill(value, w):
    if isinstance(value, str):
        return value.format(**{k: v for k, v in w.items() if k != "users"})
    if isinstance(value, dict):
        return {_fill(k, w): _fill(v, w) for k, v in value.items()}
    return value


def _filled_ints(value):
    """JSON ids: a filled-in "{activity}" is sent as a number."""
    if not isinstance(value, dict):
        return value
    return {k: int(v) if k.endswith("_id") and str(v).isdigit() else v for k, v in value.items()}


def _send(client, auth, w, case: Case):
    if case.role:
        auth.login(w["users"][case.role]())
    url = _fill(case.url, w)
    form = case.form
    if case.method == "POST" and form is not None and url.startswith("/manage/activities/"):
        form = activity_form(w, **form) if url.endswith(("/new", "/edit")) else form
    kwargs = {}
    if form is not None:
        kwargs["data"] = _fill(form, w)
    elif case.json is not None:
        kwargs["json"] = _filled_ints(_fill(case.json, w))
    elif case.body is not None:
        kwargs["data"] = case.body.replace("{activity}", str(w["activity"]))
        kwargs["content_type"] = "application/json"
    return client.open(url, method=case.method, **kwargs)


def _counts():
    return (
        db.session.scalar(select(func.count(Registration.id))),
        db.session.scalar(select(func.count(Activity.id))),
        db.session.scalar(select(func.count(Department.id))),
        db.session.scalar(select(func.count(Cadre.id))),
    )


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_malformed_request_is_refused_clearly(client, auth, world, case):
    before = _counts()
    response = _send(client, auth, world, case)
    expected = case.status if isinstance(case.status, tuple) else (case.status,)
    assert response.status_code in expected, response.get_data(as_text=True)[:800]
    text = response.get_data(as_text=True)
    if response.is_json:
        text = json.dumps(response.get_json(), ensure_ascii=False)
    if case.says:
        assert case.says in text, text[:2000]
    if case.url.startswith("/api/") and response.status_code >= 400:
        body = response.get_json()
        assert body["error"], body
        assert body["message"], body
    if response.status_code >= 400 or case.says == BAD_CHARS:
        db.session.expire_all()
        assert _counts() == before  # nothing stored


@pytest.mark.parametrize(("changes", "message"), FORM_CASES, ids=lambda v: repr(v)[:40])
def test_activity_form_numbers_get_a_message_beside_the_field(
    client, auth, world, changes, message
):
    auth.login(world["users"]["organizer"]())
    before = _counts()
    response = client.post("/manage/activities/new", data=activity_form(world, **changes))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'class="error' in html
    if message:
        assert message in html
    db.session.expire_all()
    assert _counts() == before


# --- non-ASCII digits ----------------------------------------------------------------------


def test_url_ids_in_other_scripts_digits_are_not_found(client, world):
    activity_id = world["activity"]
    assert client.get(f"/activities/{activity_id}").status_code == 200
    for digits in (ARABIC, DEVANAGARI):
        spelled = str(activity_id).translate(digits)
        assert client.get(f"/activities/{spelled}").status_code == 404
        assert client.get(f"/activities/{spelled}.ics").status_code == 404


def test_phone_in_other_scripts_digits_is_refused_not_stored_again(client, world):
    url = f"/activities/{world['activity']}/register"
    first = client.post(url, data={"name": "张三", "phone": "13800138000"})
    assert first.status_code == 303
    for digits in (ARABIC, DEVANAGARI):
        again = client.post(url, data={"name": "张三", "phone": "13800138000".translate(digits)})
        assert again.status_code == 422
        assert "0-9" in again.get_data(as_text=True)
    full_width = client.post(url, data={"name": "张三", "phone": "１３８００１３８０００"})
    assert full_width.status_code == 409  # the same person, already registered
    phones = db.session.scalars(select(Registration.phone)).all()
    assert sorted(phones) == ["13800138000", "13900000001"]


def test_walk_in_phone_in_arabic_indic_digits_is_a_400(client, auth, world):
    auth.login(world["users"]["admin"]())
    response = client.post(
        f"/api/v1/activities/{world['activity']}/walk-ins",
        json={"name": "王五", "phone": "13800138000".translate(ARABIC)},
    )
    assert response.status_code == 400
    assert "0-9" in response.get_json()["message"]
    assert db.session.scalar(select(func.count(Registration.id))) == 1


# --- the pieces -------------------------------------------------------------------------------


def test_every_form_checks_its_fields():
    """New forms cannot forget the checks: they must derive from sciweek.forms."""

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    ours = [c for c in subclasses(FlaskForm) if c.__module__.startswith("sciweek.")]
    assert len(ours) > 15
    assert [c for c in ours if not issubclass(c, Form)] == []
    rows = [
        c
        for c in subclasses(PlainForm)
        if c.__module__.startswith("sciweek.") and not issubclass(c, FlaskForm)
    ]
    assert rows
    assert [c for c in rows if not issubclass(c, SubForm)] == []


def test_every_int_url_argument_uses_the_strict_converter(app):
    checked = 0
    for rule in app.url_map.iter_rules():
        for converter in rule._converters.values():
            if converter.regex.startswith("\\d") or "int" in type(converter).__name__.lower():
                raise AssertionError(f"{rule.rule} uses {type(converter).__name__}")
            checked += isinstance(converter, IdConverter)
    assert checked > 20


def test_json_depth_skips_strings():
    assert json_depth('{"a": [1, {"b": "[[[[{{{"}]}') == 3
    assert json_depth('"\\"[[["') == 0
    assert json_depth("[" * (JSON_MAX_DEPTH + 1)) == JSON_MAX_DEPTH + 1


def test_a_cadre_leave_date_is_unchanged_by_the_checks(client, auth, world):
    """A valid form still goes through (the checks refuse only what they should)."""
    auth.login(world["users"]["coordinator"]())
    response = client.post(
        f"/manage/training/cadres/{world['cadre']}/leave", data={"left_on": "2026-05-01"}
    )
    assert response.status_code == 302
    assert db.session.get(Cadre, world["cadre"]).left_on == date(2026, 5, 1)
