"""Hashing of the secrets sciweek hands out (tickets, API tokens, feed links)."""

from __future__ import annotations

import hashlib


def hash_secret(secret: str) -> str:
    """What the database keeps instead of the secret: its SHA-256, hex.

    The secrets are long random strings, so a fast unsalted hash is enough and lets the
    database find a row by it.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
