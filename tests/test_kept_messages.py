"""Messages stored with data are shown in the reader's language (issue 15, point 8)."""

from __future__ import annotations

import json

from flask_babel import refresh

from sciweek.identity import IdentityError, normalize_phone
from sciweek.kept_messages import KeptMessage, RowRanges, from_data, to_data
from sciweek.training.roster import ParsedRoster, parse_roster

from .test_training_import import workbook_bytes
from .test_training_web import HEADER


def _in(app, lang: str, make):
    with app.test_request_context(f"/?lang={lang}"):
        refresh()
        return make()


def test_a_stored_message_is_rendered_again_in_the_readers_language(app):
    def chinese_message():
        try:
            normalize_phone("1381234567")
        except IdentityError as exc:
            error = exc.message
        return KeptMessage(
            "%(error)s（表中为：%(value)s）", error=error, value="1381234567"
        ), RowRanges([7, 3, 4, 9])

    message, rows = _in(app, "zh", chinese_message)
    assert message == "手机号格式不正确，应为 11 位中国大陆手机号。（表中为：1381234567）"
    assert rows == "3–4、7、9"
    stored = json.loads(json.dumps({"message": to_data(message), "rows": to_data(rows)}))
    assert stored["message"]["msgid"] == "%(error)s（表中为：%(value)s）"
    english = _in(app, "en", lambda: (from_data(stored["message"]), from_data(stored["rows"])))
    assert "11-digit mainland China mobile number" in english[0]
    assert "1381234567" in english[0]
    assert "（" not in english[0]
    assert english[1] == "3–4, 7, 9"


def test_text_stored_before_stays_as_it_was(app):
    old = "手机号格式不正确，应为 11 位中国大陆手机号。"
    assert _in(app, "en", lambda: from_data(old)) == old
    # A message whose values no longer fit: its words unfilled, never an error page.
    changed = {"msgid": "第 %(rows)s 行", "params": {"row": 5}}
    assert _in(app, "en", lambda: from_data(changed)) == "row %(rows)s"


def test_hidden_rows_and_column_labels_of_a_stored_upload_follow_the_reader(app):
    rows = [HEADER] + [
        [str(n), f"张{n}", "男", "1980.01", "书记", "城关镇", "城关一村", f"1380013800{n}", ""]
        for n in range(1, 8)
    ]
    rows[3][7] = "1381234567"  # row 4: a phone error, column H
    data = workbook_bytes({"花名册": rows}, hidden_rows=(3, 5, 6))
    stored = _in(app, "zh", lambda: json.dumps(parse_roster("r.xlsx", data).to_dict()))
    assert "（" not in json.dumps(json.loads(stored)["sheets"][0]["columns"]["phone"])

    def english():
        parsed = ParsedRoster.from_dict(json.loads(stored))
        return {(i.row, i.column): i.message for i in parsed.issues}

    issues = _in(app, "en", english)
    hidden = next(m for (row, _c), m in issues.items() if row == 3)
    assert "3, 5–6" in hidden
    assert "、" not in hidden
    assert (4, "H (手机号码)") in issues
    assert "11-digit" in issues[(4, "H (手机号码)")]
    chinese = _in(app, "zh", lambda: ParsedRoster.from_dict(json.loads(stored)).issues)
    assert any("第 3、5–6 行" in i.message for i in chinese)


def test_an_upload_stored_before_shows_its_text_as_it_was(app):
    stored = {
        "filename": "r.csv",
        "sheets": [{"name": "", "header_row": 1, "columns": {"phone": "H（手机号码）"}}],
        "rows": [],
        "issues": [
            {"row": 2, "column": "H（手机号码）", "message": "手机号格式不正确。", "level": "error"}
        ],
    }
    parsed = _in(app, "en", lambda: ParsedRoster.from_dict(stored))
    assert parsed.columns == {"phone": "H（手机号码）"}
    assert parsed.issues[0].message == "手机号格式不正确。"
