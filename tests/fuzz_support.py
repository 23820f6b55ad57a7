"""No input gives a server error: property-based requests to every URL, as every role.

Every rule of ``app.url_map`` (so a new route is covered without touching this file) gets
requests built by hypothesis: path values (huge, negative and non-ASCII numbers, NUL,
very long text), query strings and bodies (form fields of every form in the application,
JSON for the API; text with NUL and control characters, invalid UTF-8, huge numbers,
deeply nested JSON). Bodies start from values that pass validation, with a few fields
replaced, so the services behind the forms are reached too. Each request is sent
anonymously or as admin, organizer, coordinator, checker or citizen, on SQLite and on
PostgreSQL, and must not answer 5xx (the test app re-raises exceptions, which count too).

The budget is ``SCIWEEK_FUZZ_EXAMPLES`` requests per URL rule and database (default 40,
about 35 s per database on an idle machine, all shards together); the search is derandomised
so CI is reproducible. Run with a bigger budget to hunt, e.g.::

    SCIWEEK_FUZZ_EXAMPLES=400 .venv/bin/python -m pytest tests/test_fuzz_*.py -x

The rules are dealt round-robin into ``SHARDS`` files (``tests/test_fuzz_1.py`` ...), each
with its own demo site, so that ``pytest -n 2 --dist loadfile`` can share them between
processes. A rule's requests do not depend on the shard: hypothesis derives the derandomised
seed from the source of ``_rule_check``'s inner test, the same for every rule.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
import traceback
from datetime import date
from urllib.parse import quote

import pytest
from flask_wtf import FlaskForm
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException
from sqlalchemy import select
from werkzeug.security import generate_password_hash
from wtforms import FieldList, FormField
from wtforms.fields.core import UnboundField

from sciweek import create_app
from sciweek.accounts.services import create_user
from sciweek.checkin.codes import make_self_code
from sciweek.checkin.services import create_api_token, scan
from sciweek.demo import DEMO_PASSWORD, DEMO_ROSTER, seed_demo
from sciweek.extensions import db
from sciweek.feeds.services import issue_feed_token
from sciweek.models import (
    Activity,
    ActivitySession,
    ApiToken,
    Cadre,
    CheckIn,
    Registration,
    Town,
    User,
    Village,
    utcnow,
)
from sciweek.registration.services import RegistrationRequest, register_for_activity
from sciweek.training.roster import parse_roster
from sciweek.training.uploads import save_upload

from .conftest import TEST_PASSWORD_HASH_METHOD, _empty_tables, require_or_skip

EXAMPLES_PER_RULE = int(os.environ.get("SCIWEEK_FUZZ_EXAMPLES", "40"))
SHRINK = os.environ.get("SCIWEEK_FUZZ_SHRINK") == "1"
TRACE = os.environ.get("SCIWEEK_FUZZ_TRACE") == "1"
SHARDS = 4
ROLES = ["anonymous", "admin", "organizer", "coordinator", "checker", "citizen"]
CITIZEN_PHONE = "13700137000"
# Query arguments the code reads by name (besides the fields of GET forms).
QUERY_NAMES = [
    "page", "q", "status", "full_phone", "year", "town_id", "session", "view", "month",
    "next", "lang", "kind", "town", "campaign", "from", "to",
]  # fmt: skip
PLACEHOLDER = re.compile(r"<(?:(?P<conv>\w+)(?:\([^)]*\))?:)?(?P<var>\w+)>")

# --- values ---------------------------------------------------------------------------

NASTY_NUMBERS = [
    "0", "-1", "-0", "+1", " 7 ", "007", "1_0", "1.5", "1e3", "0x10",
    "2147483647", "2147483648", "-2147483649", "4294967296",
    "9223372036854775807", "9223372036854775808", "-9223372036854775809",
    "99999999999999999999", "9" * 40, "9" * 5000,
    "1e309", "-1e309", "1e-999999", "1e999999999", "NaN", "nan", "sNaN", "-NaN",
    "Infinity", "-Infinity", "inf",
    "١٢", "١", "١٣٨٠٠١٣٨٠٠٠", "१२", "१३८००१३८०००", "１２", "１３８００１３８０００",
    "²", "½", "Ⅻ", "〇",
]  # fmt: skip
NASTY_TEXT = [
    "", " ", "\x00", "a\x00b", "%00", "\x01\x02\x1b[0m", "\x7f", "\u202e", "\ufeff", "\u2028",
    "\r\n", "\ud800", "a\udfff", "🙂", "\U0010ffff", "x" * 5000, "张" * 3000,
    "<script>alert(1)</script>", "' OR '1'='1", "%", "_", "\\", "../../etc/passwd",
    "//evil.example", "https://evil.example/", "javascript:alert(1)",
    "2026-02-30", "2026-02-30T09:00", "9999-12-31", "0001-01-01", "2026-05-17T25:00",
    "10000-01-01T00:00", "2026-13", "0000-00", "2026-05-17T09:00:00+25:00",
]  # fmt: skip
NASTY = NASTY_NUMBERS + NASTY_TEXT


def text_values() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NASTY),
        st.text(max_size=20),
        st.text(st.characters(max_codepoint=0x2F), max_size=6),
        st.from_regex(r"[0-9١-٩０-９]{1,25}", fullmatch=True),
    )


def encode(value: str | bytes, safe: str = "") -> str:
    """Percent-encode; lone surrogates become the invalid UTF-8 a browser could send."""
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return quote(raw, safe=safe)


def _as_text(value: str | bytes) -> str:
    """What a multipart body can carry: invalid UTF-8 and lone surrogates become U+FFFD."""
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


def urlencoded(pairs: list[tuple[str, str | bytes]]) -> str:
    return "&".join(f"{encode(k)}={encode(v)}" for k, v in pairs)


def json_values() -> st.SearchStrategy:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.sampled_from([2**31, 2**63, -(2**31) - 1, 10**30]),
        st.floats(),
        text_values(),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(text_values(), inner, max_size=3)
        ),
        max_leaves=8,
    )


def deep_json() -> st.SearchStrategy[str]:
    depth = st.sampled_from([50, 999, 1100, 3000])
    return st.one_of(
        depth.map(lambda n: "[" * n + "]" * n),
        depth.map(lambda n: "[" * n),
        depth.map(lambda n: '{"a":' * n + "1" + "}" * n),
        depth.map(lambda n: '{"code": "x", "activity_id": ' + "[" * n + "]" * n + "}"),
    )


# --- the site -------------------------------------------------------------------------------


def form_field_names() -> list[str]:
    """Every field name of every form class in the application (rows of lists: 0 and 1)."""
    names: set[str] = set()

    def walk(form_class, prefix: str) -> None:
        for attr in dir(form_class):
            unbound = getattr(form_class, attr, None)
            if isinstance(unbound, UnboundField):
                add(unbound, prefix + unbound.kwargs.get("name", attr))

    def add(unbound: UnboundField, name: str) -> None:
        if unbound.field_class is FieldList:
            for i in (0, 1):
                add(unbound.args[0], f"{name}-{i}")
        elif unbound.field_class is FormField:
            walk(unbound.args[0], name + "-")
        else:
            names.add(name)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for form_class in subclasses(FlaskForm):
        if form_class.__module__.startswith("sciweek"):
            walk(form_class, "")
    return sorted(names - {"csrf_token"})


class Site:
    """The demo data set on one database, with the ids and secrets a request may name."""

    def __init__(self, app):
        self.app = app
        self.ids: dict[str, list[str]] = {}
        self.strings: dict[str, list[str]] = {}
        self.valid: dict[str, list[str]] = {}
        self.cookies: dict[str, str] = {}
        self.fields: list[str] = []
        self.api_valid: dict[str, list] = {}
        self.api_tokens: list[str] = []
        self.roster_files: list[bytes] = []
        self.self_code_session = 0


def _build_site(app) -> Site:
    site = Site(app)
    with app.app_context(), pytest.MonkeyPatch.context() as patch:
        # The demo users get the test suite's cheap hash (scrypt costs ~0.1-0.5 s a hash or a
        # check, and every shard seeds its own site); what requests hash keeps scrypt.
        patch.setattr(
            "sciweek.accounts.services.hash_password",
            lambda password: generate_password_hash(password, method=TEST_PASSWORD_HASH_METHOD),
        )
        seed_demo(date(2026, 5, 10))
        create_user(CITIZEN_PHONE, "citizen", DEMO_PASSWORD, display_name="市民")
        db.session.commit()
        patch.undo()
        activities = db.session.scalars(select(Activity).order_by(Activity.id)).all()
        open_one = next(a for a in activities if a.status == "published" and a.kind == "training")
        citizen = db.session.scalar(select(User).where(User.username == CITIZEN_PHONE))
        issued = register_for_activity(
            open_one.id,
            RegistrationRequest(name="张三", phone="13900139000", user_id=citizen.id),
            walk_in=True,
        )
        db.session.commit()
        admin = db.session.scalar(select(User).where(User.username == "admin"))
        checker = db.session.scalar(select(User).where(User.username == "checker"))
        coordinator = db.session.scalar(select(User).where(User.username == "coordinator"))
        roster_csv = "姓名,所属镇街,村/社区,手机号\n李四,城关镇,东关村,13600136000\n"
        scan(admin, open_one.id, issued.secret, base_url="", session_id=open_one.sessions[0].id)
        _token, raw_token = create_api_token(checker, "门口")
        site.api_tokens = [f"Bearer {raw_token}"]
        feed_token = issue_feed_token(admin)
        db.session.commit()
        upload = save_upload(parse_roster("r.csv", roster_csv.encode()), coordinator.id)

        def ids(column, limit=4):
            return [str(v) for v in db.session.scalars(select(column).limit(limit))]

        site.ids = {
            "activity_id": [str(open_one.id), *ids(Activity.id, 40)],
            "session_id": [str(s.id) for s in open_one.sessions] + ids(ActivitySession.id),
            "registration_id": [str(issued.registration.id), *ids(Registration.id)],
            "checkin_id": ids(CheckIn.id),
            "cadre_id": ids(Cadre.id),
            "town_id": [str(coordinator.town_id), *ids(Town.id)],
            "token_id": ids(ApiToken.id),
            "user_id": [str(checker.id), *ids(User.id)],
        }
        site.strings = {
            "secret": [issued.secret],
            "token": [feed_token, upload],
            "fmt": ["csv", "xlsx"],
            "filename": ["css/site.css", "js/scanner.js"],
        }
        site.self_code_session = open_one.sessions[0].id
        site.api_valid = {
            "code": [
                issued.secret,
                f"https://sciweek.example.cn/t/{issued.secret}",
                issued.registration.short_code,
            ],
            "activity_id": [open_one.id],
            "session_id": [s.id for s in open_one.sessions],
            "nonce": ["n-1", "n-2"],
            "scanned_at": [utcnow().isoformat(), "2026-05-10T09:00"],
            "name": ["王五"],
            "phone": ["13800138000", "13900139000"],
        }
        site.roster_files = [
            roster_csv.encode(),
            roster_csv.encode("gbk"),
            roster_csv.replace("13600136000", "1.36E+10").encode(),
            DEMO_ROSTER.read_bytes(),
        ]
        village = db.session.scalar(select(Village).where(Village.town_id == coordinator.town_id))
        town = db.session.get(Town, coordinator.town_id)
        department_id = open_one.departments[0].id
        session_id = str(open_one.sessions[0].id)
        site.valid = {
            "name": ["王五", "Li Si"],
            "phone": ["13800138000", "139 0013 9000", "+86 13900139000"],
            "town_id": [str(town.id), "0"],
            "village_id": [str(village.id), "0"],
            "short_code": [issued.registration.short_code],
            "display_name": ["王五"],
            "password": [DEMO_PASSWORD, "correct-horse-9"],
            "confirm": [DEMO_PASSWORD],
            "username": ["checker", "admin", CITIZEN_PHONE],
            "remember": ["y"],
            "next": ["/manage/"],
            "title": ["新活动"],
            "kind": ["outreach", "training"],
            "description": ["简介\n第二行"],
            "departments": [str(department_id)],
            "campaign_id": ["0"],
            "venue": ["文化礼堂"],
            "latitude": ["30.25"],
            "longitude": ["120.5"],
            "audience": ["public"],
            "capacity": ["30", ""],
            "waitlist_enabled": ["y"],
            "registration_opens_at": ["2026-05-01T09:00"],
            "registration_closes_at": ["2026-12-01T09:00"],
            "sessions-0-id": [session_id, ""],
            "sessions-0-starts_at": ["2026-12-10T09:00"],
            "sessions-0-ends_at": ["2026-12-10T11:00"],
            "sessions-0-credit_hours": ["2"],
            "sessions-0-note": ["第一场"],
            "reason": ["天气原因"],
            "code": ["kjj", "newdept"],
            "former_names": ["科委"],
            "active_from": ["2026-05-01"],
            "only_valid": ["y"],
            "left_on": ["2026-05-01"],
            "rows-0-town_id": [str(town.id)],
            "rows-0-target_percent": ["80"],
            "rows-0-threshold_hours": ["2"],
            "registration_id": site.ids["registration_id"][:2],
            "cadre_id": site.ids["cadre_id"][:2],
            "q": ["科普", "8000"],
            "town": [town.code],
            "campaign": [],
            "from": ["2026-05-01"],
            "to": ["2026-06-01"],
            "view": ["month"],
            "month": ["2026-05"],
            "year": ["2026"],
            "status": ["confirmed", "draft"],
            "page": ["2"],
            "session": [session_id],
            "lang": ["en"],
        }
    site.fields = form_field_names()
    for role in ROLES:
        if role == "anonymous":
            continue
        client = app.test_client()
        username = CITIZEN_PHONE if role == "citizen" else role
        response = client.post("/login", data={"username": username, "password": DEMO_PASSWORD})
        assert response.status_code == 302, (role, response.status_code)
        site.cookies[role] = client.get_cookie("session").value
    return site


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(request, tmp_path_factory, postgres_schema_url):
    backend = request.param
    tmp = tmp_path_factory.mktemp(f"fuzz-{backend}")
    if backend == "postgres":
        require_or_skip(
            postgres_schema_url is not None,
            "PostgreSQL not configured (set SCIWEEK_TEST_POSTGRES_URL)",
        )
        url = postgres_schema_url
    else:
        url = f"sqlite:///{tmp / 'fuzz.sqlite3'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp / "instance"))
        app = create_app(
            {
                "TESTING": True,
                "SQLALCHEMY_DATABASE_URI": url,
                "WTF_CSRF_ENABLED": False,  # so bodies reach the validators
                "RATELIMIT_ENABLED": False,
                "SCIWEEK_BASE_URL": "https://sciweek.example.cn",
            }
        )
        if backend == "sqlite":
            with app.app_context():
                db.create_all()
        else:
            _empty_tables(app)
        yield _build_site(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# --- requests -------------------------------------------------------------------------------


def rules(app) -> list:
    return sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))


def _path_value(site: Site, conv: str | None, var: str, now_code: str) -> st.SearchStrategy:
    if conv == "int":
        known = site.ids.get(var) or ["1"]
        return st.one_of(st.sampled_from(known), st.sampled_from(NASTY_NUMBERS))
    known = list(site.strings.get(var, ["x"]))
    if var == "code":
        known.append(now_code)
    return st.one_of(st.sampled_from(known), text_values(), st.binary(max_size=8))


def _draw_path(data, site: Site, rule) -> str:
    now_code = make_self_code(
        site.app.config["SECRET_KEY"], site.self_code_session, utcnow().timestamp()
    )
    parts, last = [], 0
    for match in PLACEHOLDER.finditer(rule.rule):
        parts.append(rule.rule[last : match.start()])
        value = data.draw(_path_value(site, match["conv"], match["var"], now_code))
        parts.append(encode(value, safe="/" if match["conv"] == "path" else ""))
        last = match.end()
    parts.append(rule.rule[last:])
    return "".join(parts)


def _draw_pairs(data, site: Site, names: list[str], *, base: bool) -> list[tuple[str, str]]:
    """Valid values for ``names`` (or none), then a few dropped, replaced or added."""
    values: dict[str, str | bytes] = {}
    if base:
        for name in names:
            choices = site.valid.get(name)
            if choices:
                values[name] = data.draw(st.sampled_from(choices))
    for name in data.draw(st.sets(st.sampled_from(names), max_size=2)):
        values.pop(name, None)
    junk = st.one_of(text_values(), st.binary(max_size=6))
    others = st.one_of(st.sampled_from(names), text_values())
    values.update(data.draw(st.dictionaries(others, junk, max_size=3)))
    return list(values.items())


def _draw_request(data, site: Site, rule) -> dict:
    methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
    method = data.draw(st.sampled_from(methods))
    role = data.draw(st.sampled_from(ROLES))
    path = _draw_path(data, site, rule)
    query = _draw_pairs(data, site, QUERY_NAMES + site.fields, base=data.draw(st.booleans()))
    request = {"method": method, "role": role, "path": path, "query": urlencoded(query)}
    request["lang"] = data.draw(st.sampled_from(["", "en", "zh", "fr"]))
    if method == "POST":
        kind = data.draw(st.sampled_from(["form", "multipart", "json", "raw"]))
        if kind == "json" or (rule.rule.startswith("/api/") and kind == "form"):
            shape = data.draw(st.sampled_from(["api", "any", "deep"]))
            if shape == "api":
                body = json.dumps(_draw_api_body(data, site))
            else:
                body = data.draw(json_values().map(json.dumps) if shape == "any" else deep_json())
            request.update(data=body.encode(), content_type="application/json")
        elif kind == "multipart":
            pairs = _draw_pairs(data, site, site.fields, base=True)
            fields = {_as_text(k): _as_text(v) for k, v in pairs}
            files = st.one_of(st.sampled_from(site.roster_files), st.binary(max_size=64))
            content = data.draw(files)
            name = data.draw(st.sampled_from(["r.csv", "r.xlsx", "r.txt", "", "\x00.csv"]))
            request.update(multipart=fields, file=(content, name))
        elif kind == "form":
            pairs = _draw_pairs(data, site, site.fields, base=True)
            request.update(
                data=urlencoded(pairs).encode(),
                content_type="application/x-www-form-urlencoded",
            )
        else:
            request.update(
                data=data.draw(st.binary(max_size=64)),
                content_type=data.draw(
                    st.sampled_from(
                        [
                            "application/json",
                            "application/x-www-form-urlencoded",
                            "multipart/form-data; boundary=x",
                            "text/plain",
                        ]
                    )
                ),
            )
    if rule.rule.startswith("/api/"):
        tokens = ["", "", "Bearer x", "Basic eA==", "Bearer " + "a" * 300, *site.api_tokens]
        token = data.draw(st.sampled_from(tokens))
        if token:
            request["headers"] = {"Authorization": token}
    return request


def _draw_api_body(data, site: Site) -> dict:
    """Valid check-in API fields (or none), a few of them replaced by any JSON."""
    body = {}
    for name, choices in site.api_valid.items():
        if data.draw(st.booleans()):
            body[name] = data.draw(st.sampled_from(choices))
    names = st.one_of(st.sampled_from(sorted(site.api_valid)), text_values())
    body.update(data.draw(st.dictionaries(names, json_values(), max_size=2)))
    return body


def _send(site: Site, request: dict):
    client = site.app.test_client()
    cookie = site.cookies.get(request["role"])
    if cookie:
        client.set_cookie("session", cookie)
    if request.get("lang"):
        client.set_cookie("lang", request["lang"])
    body = {"data": request.get("data"), "content_type": request.get("content_type")}
    if "multipart" in request:
        content, filename = request["file"]
        body = {
            "data": {**request["multipart"], "file": (io.BytesIO(content), filename)},
            "content_type": "multipart/form-data",
        }
    return client.open(
        request["path"],
        method=request["method"],
        query_string=request["query"],
        headers=request.get("headers"),
        **body,
    )


def _check(request: dict, response) -> None:
    assert response.status_code < 500, response.status_code
    if request["path"].startswith("/api/") and 400 <= response.status_code < 500:
        body = response.get_json(silent=True)
        assert isinstance(body, dict), response.data[:200]
        assert {"error", "message"} <= body.keys(), response.data[:200]


class ServerError(AssertionError):
    """A request that raised in the application (a 500 for a real visitor)."""


def _describe(request: dict, exc: Exception) -> str:
    """The exception, where in sciweek it was raised, and the request (shortened)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/sciweek/" in f.filename]
    where = f"{frames[-1].filename.split('/sciweek/')[-1]}:{frames[-1].lineno}" if frames else "?"
    shown = {k: (v[:300] if isinstance(v, str | bytes) else v) for k, v in request.items()}
    return f"{type(exc).__name__}: {str(exc)[:300]} [at sciweek/{where}]\n    {shown}"


def _rule_check(site: Site, rule):
    """A hypothesis test sending requests to ``rule``."""

    @settings(
        max_examples=EXAMPLES_PER_RULE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        # A failing example is reported as drawn: shrinking one costs minutes of requests.
        phases=[Phase.explicit, Phase.generate] + ([Phase.shrink] if SHRINK else []),
    )
    @given(st.data())
    def check(data):
        request = _draw_request(data, site, rule)
        data.draw(st.just(request), label="request")
        t0 = time.monotonic()
        try:
            response = _send(site, request)
        except Exception as exc:  # the test app re-raises what would be a 500
            raise ServerError(_describe(request, exc)) from exc
        if TRACE and time.monotonic() - t0 > 0.5:
            print(f"  slow {time.monotonic() - t0:.1f}s {str(request)[:300]}", flush=True)
        try:
            _check(request, response)
        finally:
            response.close()  # static files are streamed from an open file

    return check


def check_shard(site: Site, shard: int) -> None:
    """Every rule of shard ``shard`` (1 to ``SHARDS``) answers no request with a 5xx."""
    failures: list[str] = []
    started = time.monotonic()
    for rule in rules(site.app)[shard - 1 :: SHARDS]:
        if TRACE:
            print(f"{time.monotonic() - started:6.1f} {rule.rule}", flush=True)
        try:
            _rule_check(site, rule)()
        except HypothesisException:
            raise  # the test itself is wrong
        except Exception as exc:  # noqa: BLE001 - collect every rule's failure, then report
            summary = f"{type(exc).__name__}: {exc}"[:1500]
            failures.append(f"{rule.rule} ({rule.endpoint}): {summary}")
    elapsed = time.monotonic() - started
    assert not failures, f"{len(failures)} rules gave 5xx ({elapsed:.0f} s):\n" + "\n\n".join(
        failures
    )
