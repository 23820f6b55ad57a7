"""Mainland mobile numbers and resident ID numbers (GB 11643-1999): checking and masking."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

# ASCII digits only: in Python \d also matches ١٢٣ (Arabic-Indic) and १२३ (Devanagari).
PHONE_RE = re.compile(r"^1[3-9][0-9]{9}$")
ID_RE = re.compile(r"^[0-9]{17}[0-9X]$")
_PHONE_NOISE = re.compile(r"[\s\-—–()（）.·]")
_OTHER_DIGITS = "只能使用数字 0-9（半角或全角），不能使用其他文字的数字。"
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"


class IdentityError(ValueError):
    """A value that is not a valid phone or ID number; the message is for people."""


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
        raise IdentityError("手机号" + _OTHER_DIGITS)
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("0086"):
        value = value[4:]
    elif value.startswith("86") and len(value) == 13:
        value = value[2:]
    if not value:
        raise IdentityError("请填写手机号。")
    if not PHONE_RE.match(value):
        raise IdentityError("手机号格式不正确，应为 11 位中国大陆手机号。")
    return value


def mask_phone(phone: str | None) -> str:
    """138****8000."""
    if not phone:
        return ""
    if len(phone) < 7:
        return "*" * len(phone)
    return f"{phone[:3]}****{phone[-4:]}"


def id_check_char(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return ID_CHECK_CHARS[total % 11]


def normalize_id_number(raw: str) -> str:
    """Validate an 18-character resident ID number; return it in ASCII, upper-cased."""
    value = re.sub(r"\s", "", _half_width(raw)).upper()
    if _has_other_digits(value):
        raise IdentityError("身份证号" + _OTHER_DIGITS)
    if len(value) == 15 and value.isdigit():
        raise IdentityError("15 位旧身份证号不再受理，请填写 18 位身份证号。")
    if not ID_RE.match(value):
        raise IdentityError("身份证号应为 18 位（17 位数字加 1 位数字或 X）。")
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise IdentityError("身份证号中的出生日期不是有效日期。") from None
    if id_check_char(value[:17]) != value[17]:
        raise IdentityError("身份证号校验位不正确。")
    return value


def mask_id_number(value: str | None) -> str:
    """110105********002X."""
    if not value:
        return ""
    return f"{value[:6]}{'*' * (len(value) - 10)}{value[-4:]}"
