"""Parsed roster uploads kept on the server between preview and confirm.

The rows live as JSON in the file storage (sciweek/storage.py) under
``roster_uploads/<token>.json``, named by a random token that the preview form carries; the
cookie holds nothing of the roster. With the ``s3`` backend every application server sees
the same uploads, so the confirm may reach another server than the preview.

Uploads older than ``MAX_AGE_SECONDS`` are refused on loading (by the time written in the
file) and removed by the next upload (by the storage's modification time, which both
backends give).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from datetime import UTC, datetime

from ..storage import NotStored, Storage, get_storage
from .roster import ParsedRoster

MAX_AGE_SECONDS = 2 * 3600
PREFIX = "roster_uploads/"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def upload_key(token: str) -> str:
    return f"{PREFIX}{token}.json"


def remove_stale_uploads(storage: Storage, now: float | None = None) -> int:
    """Remove uploads older than ``MAX_AGE_SECONDS``; how many were removed."""
    cutoff = datetime.fromtimestamp((now or time.time()) - MAX_AGE_SECONDS, UTC)
    stale = [f.key for f in storage.list(PREFIX) if f.modified_at < cutoff]
    for key in stale:
        storage.delete(key)
    return len(stale)


def save_upload(parsed: ParsedRoster, user_id: int) -> str:
    """Store ``parsed`` for ``user_id``; return the token naming it."""
    storage = get_storage()
    remove_stale_uploads(storage)
    token = secrets.token_urlsafe(24)
    payload = {"user_id": user_id, "saved_at": time.time(), "parsed": parsed.to_dict()}
    storage.put(
        upload_key(token),
        json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        "application/json",
    )
    return token


def load_upload(token: str, user_id: int) -> ParsedRoster | None:
    """The stored roster when ``token`` is valid, fresh and belongs to ``user_id``."""
    if not _TOKEN.match(token or ""):
        return None
    storage = get_storage()
    try:
        payload = json.loads(storage.get(upload_key(token)).decode("utf-8"))
    except (NotStored, ValueError):
        return None
    saved_at = payload.get("saved_at") if isinstance(payload, dict) else None
    if not isinstance(saved_at, int | float) or saved_at < time.time() - MAX_AGE_SECONDS:
        storage.delete(upload_key(token))
        return None
    if payload.get("user_id") != user_id:
        return None
    try:
        return ParsedRoster.from_dict(payload["parsed"])
    except (KeyError, TypeError):
        return None  # stored by an earlier version of the preview: upload again


def discard_upload(token: str) -> None:
    if _TOKEN.match(token or ""):
        get_storage().delete(upload_key(token))
