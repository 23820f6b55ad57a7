"""Parsed roster uploads kept on the server between preview and confirm.

The rows live in a JSON file under the instance folder, named by a random token that the
preview form carries; the cookie holds nothing of the roster.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path

from flask import current_app

from .roster import ParsedRoster

MAX_AGE_SECONDS = 2 * 3600
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def _folder() -> Path:
    folder = Path(current_app.instance_path) / "roster_uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _remove_stale(folder: Path) -> None:
    cutoff = time.time() - MAX_AGE_SECONDS
    for path in folder.glob("*.json"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass


def save_upload(parsed: ParsedRoster, user_id: int) -> str:
    """Store ``parsed`` for ``user_id``; return the token naming it."""
    folder = _folder()
    _remove_stale(folder)
    token = secrets.token_urlsafe(24)
    payload = {"user_id": user_id, "parsed": parsed.to_dict()}
    path = folder / f"{token}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, ensure_ascii=False)
    return token


def load_upload(token: str, user_id: int) -> ParsedRoster | None:
    """The stored roster when ``token`` is valid, fresh and belongs to ``user_id``."""
    if not _TOKEN.match(token or ""):
        return None
    path = _folder() / f"{token}.json"
    try:
        if path.stat().st_mtime < time.time() - MAX_AGE_SECONDS:
            path.unlink()
            return None
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if payload.get("user_id") != user_id:
        return None
    try:
        return ParsedRoster.from_dict(payload["parsed"])
    except (KeyError, TypeError):
        return None  # stored by an earlier version of the preview: upload again


def discard_upload(token: str) -> None:
    if _TOKEN.match(token or ""):
        (_folder() / f"{token}.json").unlink(missing_ok=True)
