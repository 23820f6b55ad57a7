"""What a scanner read, and the rotating self check-in codes. Pure functions, no database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..registration.tickets import (
    SECRET_RE,
    is_well_formed_secret,
    normalize_short_code,
)
from ..tokens import hash_secret

CODE_MAX = 500  # longer scanned text is garbage by definition


@dataclass(frozen=True)
class ScannedCode:
    """A ticket secret (from a ticket URL or bare) or a typed short code."""

    kind: str  # "secret" | "short_code"
    value: str

    @property
    def loggable(self) -> str:
        """What the scan log may keep: never the secret itself, which is as good as the ticket."""
        if self.kind == "secret":
            return "sha256:" + hash_secret(self.value)[:12]
        return self.value


def parse_scanned_code(text: str, base_url: str | Sequence[str]) -> ScannedCode | None:
    """Read a scanner's text: the ticket URL of this site, a bare secret, or a short code.

    ``base_url``: the site's address, or all of them (``links.site_base_urls``): a ticket
    URL under any of them is read. URLs of other sites, and anything else, give None.
    """
    text = (text or "").strip()
    if not text or len(text) > CODE_MAX:
        return None
    if "://" in text:
        bases = (base_url,) if isinstance(base_url, str) else tuple(base_url)
        for base in bases:
            code = _secret_from_url(text, base)
            if code is not None:
                return code
        return None
    if is_well_formed_secret(text):
        return ScannedCode("secret", text)
    short = normalize_short_code(text)
    if short is not None:
        return ScannedCode("short_code", short)
    return None


def _secret_from_url(text: str, base_url: str) -> ScannedCode | None:
    try:
        parts, ours = urlsplit(text), urlsplit(base_url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != ours.netloc.lower():
        return None
    prefix = ours.path.rstrip("/") + "/t/"
    if not parts.path.startswith(prefix):
        return None
    secret = parts.path[len(prefix) :].rstrip("/")
    return ScannedCode("secret", secret) if SECRET_RE.match(secret) else None


def loggable_text(text: str) -> str:
    """Unreadable scanner text, cut short and with anything secret-shaped hidden."""
    printable = "".join(c if c.isprintable() else "?" for c in (text or "").strip())
    return re.sub(r"[A-Za-z0-9_-]{20,}", "…", printable)[:40]


# --- rotating self check-in codes --------------------------------------------

SELF_CODE_SLOT_SECONDS = 30  # a new code on the projector every 30 s ...
SELF_CODE_VALID_SECONDS = 120  # ... each accepted for 2 minutes after it appeared


def _self_code_mac(key: str, session_id: int, slot: int) -> str:
    message = f"sciweek-self-checkin:{session_id}:{slot}".encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def current_slot(now_ts: float) -> int:
    return int(now_ts // SELF_CODE_SLOT_SECONDS)


def make_self_code(key: str, session_id: int, now_ts: float) -> str:
    """The code shown on the projector now: ``<session>.<slot>.<mac>``."""
    slot = current_slot(now_ts)
    return f"{session_id}.{slot}.{_self_code_mac(key, session_id, slot)}"


def read_self_code(key: str, code: str, now_ts: float) -> tuple[int | None, bool]:
    """(session id, still valid) for a genuine code; (None, False) for a forged one."""
    match = re.fullmatch(r"([0-9]{1,12})\.([0-9]{1,12})\.([A-Za-z0-9_-]{16})", code or "")
    if not match:
        return None, False
    session_id, slot = int(match.group(1)), int(match.group(2))
    if not hmac.compare_digest(match.group(3), _self_code_mac(key, session_id, slot)):
        return None, False
    appeared = slot * SELF_CODE_SLOT_SECONDS
    fresh = appeared - 5 <= now_ts < appeared + SELF_CODE_VALID_SECONDS
    return session_id, fresh


# --- the printed sign-in sheet's self check-in code ---------------------------


def _sheet_code_mac(key: str, session_id: int) -> str:
    message = f"sciweek-printed-sheet:{session_id}".encode()
    digest = hmac.new(key.encode(), message, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def make_sheet_code(key: str, session_id: int) -> str:
    """The self check-in code printed on a session's paper 签到表: ``<session>.p.<mac>``.

    Paper cannot rotate: the code is valid only while the session's door is open
    (``checkin.paper.sheet_code_fresh``), not two minutes like the projector's.
    """
    return f"{session_id}.p.{_sheet_code_mac(key, session_id)}"


def read_sheet_code(key: str, code: str) -> int | None:
    """The session id of a genuine printed-sheet code, else None."""
    match = re.fullmatch(r"([0-9]{1,12})\.p\.([A-Za-z0-9_-]{16})", code or "")
    if not match:
        return None
    session_id = int(match.group(1))
    if not hmac.compare_digest(match.group(2), _sheet_code_mac(key, session_id)):
        return None
    return session_id
