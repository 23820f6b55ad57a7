"""English under ?lang=en: complete, with English punctuation and plurals (issue 15, point 8)."""

from __future__ import annotations

import io
import re

from babel.messages.pofile import read_po
from flask_babel import refresh

from .conftest import local
from .test_i18n import PO
from .test_registration import register, ticket_secret
from .test_training_import import workbook_bytes
from .test_training_web import HEADER, csv_upload
from .test_verification import answer, ask, sms_codes, wrong
from .test_verification import register as register_phone

# CJK symbols and punctuation (、。「」【】) and full-width forms (：，（）！？；).
FULL_WIDTH = re.compile(r"[\u3000-\u303f\uff00-\uffef]")
UPCOMING = [(local(2099, 5, 17, 9, 30), local(2099, 5, 17, 11))]


def test_no_full_width_punctuation_in_english_messages():
    with open(PO, "rb") as fh:
        catalog = read_po(fh)
    offenders = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, (list, tuple)) else [message.string]
        offenders += [s for s in strings if s and FULL_WIDTH.search(s)]
    assert offenders == []


def _english_text(response) -> str:
    html = response.get_data(as_text=True)
    assert '<html lang="en">' in html
    return re.sub(r"<[^>]+>", " ", html[html.index("<main>") :])


def test_public_pages_in_english_use_english_punctuation(client, make):
    # Data in ASCII: any full-width character on these pages comes from the code.
    client.get("/?lang=en")
    town = make.town(name="Qingshan")
    department = make.department(name="Science Bureau")
    other = make.department(name="Science Association")
    activity = make.activity(
        title="Pruning class", town=town, venue="Hall", capacity=1, sessions=UPCOMING,
        departments=[department, other], latitude=30.27, longitude=120.15,
    )  # fmt: skip
    cancelled = make.activity(
        title="Fair", status="cancelled", cancel_reason="Rain", sessions=UPCOMING
    )
    secret = ticket_secret(register(client, activity, name="Zhang"))
    waiting = ticket_secret(register(client, activity, name="Li", phone="13900139000"))
    pages = [
        "/", "/?view=month&month=2099-05", f"/activities/{activity.id}",
        f"/activities/{cancelled.id}", f"/t/{secret}", f"/t/{waiting}/cancel",
        "/t/" + "A" * 32, "/login", "/account/signup", "/tickets/find",
        "/?from=2099-05-18&to=2099-05-01",
    ]  # fmt: skip
    found = {}
    for path in pages:
        text = _english_text(client.get(path))
        marks = FULL_WIDTH.findall(text)
        if marks:
            found[path] = [text[max(0, text.index(m) - 30) : text.index(m) + 10] for m in marks]
    assert found == {}
    detail = _english_text(client.get(f"/activities/{activity.id}"))
    assert "Science Bureau, Science Association" in detail


def test_counts_are_english_plurals(client, make):
    client.get("/?lang=en")
    make.activity(title="Pruning class", capacity=1, sessions=UPCOMING)
    text = _english_text(client.get("/"))
    assert "1 activity" in text
    assert "1 place left" in text
    make.activity(title="Soil class", capacity=2, sessions=UPCOMING)
    text = _english_text(client.get("/"))
    assert "2 activities" in text
    assert "2 places left" in text


def test_phone_format_errors_are_english(client, make):
    client.get("/?lang=en")
    activity = make.activity(sessions=UPCOMING)
    for response in (
        register(client, activity, phone="12345"),
        client.post("/account/signup", data={"phone": "12345", "password": "x" * 10}),
        client.post("/tickets/find", data={"phone": "12345", "short_code": "K7M2QX"}),
    ):
        text = _english_text(response)
        assert "11-digit mainland China mobile number" in text or "No registration" in text
        assert not re.search(r"[\u4e00-\u9fff]", text.split("Science")[0]), text[:300]


def test_import_messages_are_english_with_plurals(client, auth, make):
    client.get("/?lang=en")
    town = make.town(name="城关镇", villages=["城关一村"])
    auth.login(make.user("coordinator", town=town))
    rows = [
        HEADER,
        ["1", "张三", "男", "1980.01", "书记", "城关镇", "城关一村", "13800138000", ""],
        ["2", "李四", "女", "1982.02", "主任", "城关镇", "城关一村", "1381234567", ""],
    ]
    preview = client.post("/manage/training/import", data=csv_upload(rows)).headers["Location"]
    text = _english_text(client.get(preview))
    assert "it should be an 11-digit mainland China mobile number" in text
    assert "Data rows: 2; without errors: 1; with errors: 1." in text
    refused = _english_text(client.post(preview, data={"active_from": "2026-01-01"}))
    assert "The sheet still has 1 error; nothing was imported." in refused
    done = client.post(
        preview, data={"active_from": "2026-01-01", "only_valid": "y"}, follow_redirects=True
    )
    assert "Imported. New: 1; updated: 0;" in _english_text(done)


def test_import_messages_follow_the_viewers_language_not_the_uploads(client, auth, make):
    """Messages found while reading a file are kept as ids and values, not as text: a
    file uploaded in Chinese shows its problems in English to an English viewer, and the
    other way round."""
    town = make.town(name="城关镇", villages=["城关一村"])
    auth.login(make.user("coordinator", town=town))
    rows = [
        HEADER,
        ["1", "张三", "男", "1980.01", "书记", "城关镇", "城关一村", "13800138000", ""],
        ["2", "李四", "女", "1982.02", "主任", "城关镇", "城关一村", "1381234567", ""],
    ]
    # The fixture's app context (and Flask-Babel's cached locale) spans requests.
    refresh()
    chinese_upload = client.post("/manage/training/import?lang=zh", data=csv_upload(rows))
    preview = chinese_upload.headers["Location"]
    refresh()
    english = _english_text(client.get(preview + "?lang=en"))
    assert "it should be an 11-digit mainland China mobile number" in english
    assert not re.search(r"[\u4e00-\u9fff]{4}", english.split("1381234567")[-1]), english
    assert FULL_WIDTH.findall(english) == [], english

    refresh()
    english_upload = client.post("/manage/training/import?lang=en", data=csv_upload(rows))
    refresh()
    chinese = client.get(english_upload.headers["Location"] + "?lang=zh").get_data(as_text=True)
    assert "11-digit mainland China mobile number" not in chinese
    assert "手机号" in chinese


def test_tries_left_is_an_english_plural(client, make, caplog):
    client.get("/?lang=en")
    register_phone(make.activity(sessions=UPCOMING))
    ask(client)
    [code] = sms_codes(caplog)
    said = [_english_text(answer(client, wrong(code))) for _ in range(4)]
    assert "4 tries left" in said[0]
    assert "1 try left" in said[3]


def test_hidden_rows_in_an_import_are_counted_in_english(client, auth, make):
    client.get("/?lang=en")
    town = make.town(name="城关镇", villages=["城关一村"])
    auth.login(make.user("coordinator", town=town))
    rows = [HEADER] + [
        [str(n), f"张{n}", "男", "1980.01", "书记", "城关镇", "城关一村", f"1380013800{n}", ""]
        for n in range(1, 6)
    ]
    data = workbook_bytes({"花名册": rows}, hidden_rows=(4,))
    upload = {"file": (io.BytesIO(data), "r.xlsx")}
    preview = client.post("/manage/training/import", data=upload).headers["Location"]
    text = _english_text(client.get(preview))
    assert "hidden in the sheet" in text
    assert "1 rows" not in text
    assert FULL_WIDTH.findall(text) == [], text
