"""Shared by the browser tests: catch what the security headers refuse in the browser."""

from __future__ import annotations

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
