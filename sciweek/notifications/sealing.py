"""Secrets kept in the outbox only encrypted (the ticket link of a confirmation).

Fernet (AES-128-CBC with HMAC-SHA256) with a key derived from the app's SECRET_KEY, so
every web and worker process of one site can open what another sealed. A key that no
longer matches (SECRET_KEY rotated) opens nothing: the message falls back to the short
code.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken

_CONTEXT = b"sciweek notifications outbox v1\x00"


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(_CONTEXT + secret_key.encode("utf-8")).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(secret_key: str, values: dict[str, str]) -> str:
    return _fernet(secret_key).encrypt(json.dumps(values).encode("utf-8")).decode("ascii")


def unseal(secret_key: str, token: str | None) -> dict[str, str]:
    """The sealed values, or {} when there are none or they cannot be opened."""
    if not token:
        return {}
    try:
        return json.loads(_fernet(secret_key).decrypt(token.encode("ascii")))
    except (InvalidToken, ValueError):
        return {}
