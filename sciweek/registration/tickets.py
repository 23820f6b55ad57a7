"""Ticket secrets and short codes. Pure functions, no database."""

from __future__ import annotations

import re
import secrets

# 24 random bytes = 192 bits, URL-safe base64 (32 characters).
SECRET_BYTES = 24
SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{32}$")
# No 0/O, 1/I/L: easy to read out at a door and to type on a phone.
SHORT_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
SHORT_CODE_LENGTH = 6
SHORT_CODE_RE = re.compile(rf"^[{SHORT_CODE_ALPHABET}]{{{SHORT_CODE_LENGTH}}}$")


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def is_well_formed_secret(value: str) -> bool:
    return bool(SECRET_RE.match(value or ""))


def new_short_code() -> str:
    return "".join(secrets.choice(SHORT_CODE_ALPHABET) for _ in range(SHORT_CODE_LENGTH))


# How people type a short code: full-width forms from a Chinese keyboard (ＰＺＴ９ＣＺ, the
# ideographic space), and spaces or dashes between its halves, which phones and word
# processors turn into en dashes (–), em dashes (—) or minus signs (−). Only the full-width
# block is mapped (not NFKC, which also reads ² or ① as digits), so the offline scanner's
# copy in static/js/scanner-core.js (``halfWidth``, ``SEPARATORS``) can do exactly the same.
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212]")


def normalize_short_code(value: str) -> str | None:
    """A typed short code, upper-cased, in ASCII, without separators; None when it cannot
    be one."""
    value = _SEPARATORS.sub("", (value or "").translate(_FULL_WIDTH).upper())
    return value if SHORT_CODE_RE.match(value) else None


def ticket_path(secret: str) -> str:
    return f"/t/{secret}"


def ticket_url(base_url: str, secret: str) -> str:
    """The absolute ticket URL that the QR code encodes."""
    return base_url.rstrip("/") + ticket_path(secret)
