"""Every user-visible string goes through gettext, and English is complete."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
        # Drop gettext calls, Jinja comments and <script> blocks' string tables.
        stripped = re.sub(r"_\((['\"]).*?\1", "", text, flags=re.S)
        stripped = re.sub(r"\{#.*?#\}", "", stripped, flags=re.S)
        for number, line in enumerate(stripped.splitlines(), start=1):
            if HAN.search(line):
                offenders.append(f"{template.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    assert offenders == []
