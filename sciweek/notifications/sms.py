"""SMS text rules, pure functions: the 【签名】, segment counting and fitting one segment.

Chinese carriers bill a message of up to 70 characters (signature included, any script)
as one segment; a longer one is split into parts of 67 characters each.
"""

from __future__ import annotations

import math

SEGMENT_CHARS = 70
PART_CHARS = 67
ELLIPSIS = "…"


def signed(signature: str, text: str) -> str:
    """The text as the phone shows it, starting with the sender's 【签名】."""
    return f"【{signature}】{text}" if signature else text


def segment_count(text: str) -> int:
    """How many segments the carrier bills for ``text`` (with its signature)."""
    n = len(text)
    if n <= SEGMENT_CHARS:
        return 1
    return math.ceil(n / PART_CHARS)


def shorten(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters, ending with … when cut."""
    if len(value) <= limit:
        return value
    return value[: max(limit - 1, 0)] + ELLIPSIS


def fit_one_segment(render, params: dict, shrinkable: tuple[str, ...], minimum: int = 6) -> dict:
    """``params``, with the ``shrinkable`` ones shortened in order (each down to
    ``minimum`` characters) while ``render(params)`` is over one segment.

    A text that cannot fit (a long link) stays over one segment with its parameters
    shortened as far as allowed.
    """
    params = dict(params)
    for name in shrinkable:
        excess = len(render(params)) - SEGMENT_CHARS
        if excess <= 0:
            break
        value = str(params.get(name) or "")
        if len(value) > minimum:
            params[name] = shorten(value, max(len(value) - excess, minimum))
    return params
