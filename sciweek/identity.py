"""Mainland mobile numbers and resident ID numbers (GB 11643-1999): checking and masking."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import TypeGuard

from .kept_messages import KeptMessage as N_

# ASCII digits only: in Python \d also matches ١٢٣ (Arabic-Indic) and १२३ (Devanagari).
PHONE_RE = re.compile(r"^1[3-9][0-9]{9}$")
ID_RE = re.compile(r"^[0-9]{17}[0-9X]$")
_PHONE_NOISE = re.compile(r"[\s\-—–()（）.·]")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"


class IdentityError(ValueError):
    """A value that is not a valid phone or ID number; the message is for people (kept:
    a roster upload stores it and shows it in its viewer's language)."""

    @property
    def message(self) -> str:
        return self.args[0]


def _half_width(raw: object) -> str:
    """Full-width forms (１３８, ＋, Ｘ) as ASCII; other scripts' digits stay as they are."""
    return unicodedata.normalize("NFKC", str(raw or ""))


def _has_other_digits(value: str) -> bool:
    return any(c.isdigit() and not c.isascii() for c in value)


def normalize_phone(raw: str) -> str:
    """Strip spaces, dashes, +86 and 0086; return 11 ASCII digits or raise IdentityError.

    Full-width digits count as typed digits; other scripts' digits are refused (stored as
    typed, one person could register once per script).
    """
    value = _PHONE_NOISE.sub("", _half_width(raw)).strip()
    if _has_other_digits(value):
        raise IdentityError(N_("手机号只能使用数字 0-9（半角或全角），不能使用其他文字的数字。"))
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("0086"):
        value = value[4:]
    elif value.startswith("86") and len(value) == 13:
        value = value[2:]
    if not value:
        raise IdentityError(N_("请填写手机号。"))
    if not PHONE_RE.match(value):
        raise IdentityError(N_("手机号格式不正确，应为 11 位中国大陆手机号。"))
    return value


def is_mobile(value: str | None) -> TypeGuard[str]:
    """A stored mobile number, not what stands in for one (a purged registration's ``x…``,
    a roster cadre without a phone's key)."""
    return bool(value) and PHONE_RE.match(value or "") is not None


def mask_phone(phone: str | None) -> str:
    """138****8000; nothing for what is not a mobile number."""
    if not is_mobile(phone):
        return ""
    return f"{phone[:3]}****{phone[-4:]}"


def id_check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def normalize_id_number(raw: str) -> str:
    """Validate an 18-character resident ID number; return it in ASCII, upper-cased."""
    value = re.sub(r"\s", "", _half_width(raw)).upper()
    if _has_other_digits(value):
        raise IdentityError(N_("身份证号只能使用数字 0-9（半角或全角），不能使用其他文字的数字。"))
    if len(value) == 15 and value.isdigit():
        raise IdentityError(N_("15 位旧身份证号不再受理，请填写 18 位身份证号。"))
    if not ID_RE.match(value):
        raise IdentityError(N_("身份证号应为 18 位（17 位数字加 1 位数字或 X）。"))
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise IdentityError(N_("身份证号中的出生日期不是有效日期。")) from None
    if id_check_char(value[:17]) != value[17]:
        raise IdentityError(N_("身份证号校验位不正确。"))
    return value


def mask_id_number(value: str | None) -> str:
    """110105********002X."""
    if not value:
        return ""
    return f"{value[:6]}{'*' * (len(value) - 10)}{value[-4:]}"


# --- searching by phone ----------------------------------------------------------

PHONE_TAIL_LENGTH = 4
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
_PHONE_TAIL_RE = re.compile(rf"[0-9]{{{PHONE_TAIL_LENGTH}}}")


def phone_tail(query: str) -> str | None:
    """The last four digits of a phone when ``query`` is exactly that, else None.

    Searches match phones only by this tail, never by a longer or other part: the masked
    number (138****8000) already shows the first three and the last four digits, so any
    search that matched more digits — five at the end, a prefix, even the full number
    exactly — would let a user with the list recover the hidden middle by trying
    (at most 40 requests digit by digit; 10,000 for an exact-number oracle).
    Full-width digits count; other scripts' digits do not.
    """
    text = (query or "").strip().translate(_FULL_WIDTH_DIGITS)
    return text if _PHONE_TAIL_RE.fullmatch(text) else None


def is_digit_query(query: str) -> bool:
    """A query of digits only (to explain that phones are found by their last four)."""
    text = (query or "").strip().translate(_FULL_WIDTH_DIGITS).replace(" ", "")
    return bool(text) and all(c in "0123456789" for c in text)


# --- names -------------------------------------------------------------------------

# Two-character surnames (复姓) stay whole when a name is masked: 欧阳**, not 欧***.
_COMPOUND_SURNAME_PAIRS = (
    "欧阳司马上官诸葛东方皇甫尉迟公孙慕容长孙宇文司徒司空夏侯轩辕令狐端木"
    "南宫西门独孤万俟闻人澹台公冶太史申屠呼延钟离赫连拓跋百里东郭濮阳第五"
    "左丘公羊谷梁单于仲孙叔孙淳于宗政亓官司寇巫马乐正漆雕羊舌梁丘微生公西"
)
COMPOUND_SURNAMES = frozenset(
    _COMPOUND_SURNAME_PAIRS[i : i + 2] for i in range(0, len(_COMPOUND_SURNAME_PAIRS), 2)
)
_NAME_SEPARATORS = " ·•.-"


def mask_name(name: str | None) -> str:
    """张三 → 张*, 欧阳娜娜 → 欧阳**: the surname stays, every other character is a *."""
    name = (name or "").strip()
    if len(name) <= 1:
        return "*" * len(name)
    keep = 2 if len(name) > 2 and name[:2] in COMPOUND_SURNAMES else 1
    return name[:keep] + "".join(c if c in _NAME_SEPARATORS else "*" for c in name[keep:])


def mask_short_code(code: str | None) -> str:
    """PZT9CZ → ****CZ: enough to tell one's own line on a printed list, not enough to
    stand in for the ticket (phone + short code is a self check-in proof)."""
    if not code:
        return ""
    return "*" * (len(code) - 2) + code[-2:]
