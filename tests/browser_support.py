"""Shared by the browser tests: catch what the security headers refuse in the browser."""

from __future__ import annotations

from pathlib import Path

import pytest

from sciweek import create_app
from sciweek.demo import seed_demo
from sciweek.extensions import db

# Chromium reports refused scripts, styles, images, connections and workers on the
# console ("Refused to ... because it violates the following Content Security Policy
# directive"), and ignored Permissions-Policy entries ("Unrecognized feature").
POLICY_WORDS = ("Content Security Policy", "Permissions policy", "Unrecognized feature")


def watch_policy_violations(context) -> list[str]:
    """Console messages of ``context``'s pages about the site's security policies."""
    seen: list[str] = []

    def on_console(message) -> None:
        if any(word.lower() in message.text.lower() for word in POLICY_WORDS):
            seen.append(f"{message.type}: {message.text}")

    context.on("console", on_console)
    return seen


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def log_in(page, base: str, username: str, password: str) -> None:
    """Log ``username`` in on ``page`` through the log-in form of the site at ``base``."""
    page.goto(base + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_load_state()


def type_code(page, text: str) -> str:
    """Type a code into the scanner page and press Enter: the result it shows for this scan
    (the data-result the scanner sets again)."""
    page.eval_on_selector("#result", "box => box.removeAttribute('data-result')")
    page.fill("#code-input", text)
    page.press("#code-input", "Enter")
    page.wait_for_selector("#result[data-result]", state="attached")
    return page.get_attribute("#result", "data-result")


def seeded_demo_app(folder: Path):
    """An app on a new SQLite database in ``folder`` holding the demo data; (app, url)."""
    url = f"sqlite:///{folder / 'demo.sqlite3'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCIWEEK_INSTANCE_PATH", str(folder / "setup"))
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        db.create_all()
        seed_demo()
        db.session.commit()
        db.session.remove()
    return app, url
