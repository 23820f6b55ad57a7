"""Every user-visible string goes through gettext, and English is complete."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import flask_babel
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
PO = ROOT / "sciweek" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
HAN = re.compile(r"[\u4e00-\u9fff]")


def test_every_extracted_message_has_an_english_translation(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with open(pot, "rb") as fh:
        extracted = {m.id for m in read_po(fh) if m.id}
    with open(PO, "rb") as fh:
        translated = {m.id: m.string for m in read_po(fh) if m.id}
    assert len(extracted) > 300
    missing = sorted(str(i) for i in extracted if not translated.get(i))
    assert missing == []
    # An English string may quote Chinese spreadsheet headers, but must be English.
    copied = [i for i, s in translated.items() if s and not re.search(r"[A-Za-z]", str(s))]
    assert copied == []


def test_templates_have_no_bare_chinese_text():
    """Chinese in a template must sit inside {{ _('...') }} (or come from data)."""
    offenders = []
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        # Drop gettext calls and Jinja comments. (No <script> blocks: tests/test_csp.py.)
        stripped = re.sub(r"ngettext\((['\"]).*?\1\s*,\s*(['\"]).*?\2", "", text, flags=re.S)
        stripped = re.sub(r"_\((['\"]).*?\1", "", stripped, flags=re.S)
        stripped = re.sub(r"\{#.*?#\}", "", stripped, flags=re.S)
        for number, line in enumerate(stripped.splitlines(), start=1):
            if HAN.search(line):
                offenders.append(f"{template.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    assert offenders == []


def test_static_scripts_hold_no_chinese_text():
    """A script's texts come from its page, rendered with _() into data-* attributes."""
    offenders = []
    for script in sorted((ROOT / "static" / "js").rglob("*.js")):
        for number, line in enumerate(script.read_text(encoding="utf-8").splitlines(), start=1):
            if HAN.search(line):
                offenders.append(f"{script.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    assert offenders == []


# The data-* attributes that static/js/forms.js and feeds.js show to the visitor.
SCRIPT_TEXTS = re.compile(r'data-(confirm|done|fail)="([^"]*)"')


def test_texts_handed_to_scripts_speak_the_visitors_language(client, make, auth):
    activity = make.activity()
    assert (
        client.post(
            f"/activities/{activity.id}/register", data={"name": "张三", "phone": "13800138000"}
        ).status_code
        == 303
    )
    auth.login(make.user("admin"))
    pages = ["/", f"/activities/{activity.id}", f"/manage/activities/{activity.id}/registrations"]
    for lang, language in (("zh", HAN), ("en", re.compile("^[^\u4e00-\u9fff]*[A-Za-z]"))):
        flask_babel.refresh()  # the test's app context outlives requests and caches the locale
        texts = {}
        for page in pages:
            html = client.get(f"{page}?lang={lang}").get_data(as_text=True)
            texts.update({kind: text for kind, text in SCRIPT_TEXTS.findall(html)})
        assert sorted(texts) == ["confirm", "done", "fail"], lang
        assert all(language.search(text) for text in texts.values()), texts
