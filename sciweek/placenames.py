"""Town and village names as people write them: pure functions, no database.

A town is written 城关 / 城关镇 / 城关镇人民政府, a village 城关1村 / 城关一村 / 城关一村委会;
lists of villages read in natural order (一村, 二村, 三村 … 十村; 1, 2, 10). Used by the roster
import (matching and suggestions) and wherever villages are listed.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable

_SPACES = re.compile(r"[\s\u00a0\u3000\u200b\ufeff]+")
# The office of a town stands for the town: 城关镇人民政府, 柳林街道办事处, 柳林街道办.
OFFICE_SUFFIXES = ("人民政府", "办事处", "政府")
# What a town's name is made of beside its proper part (城关 in 城关镇).
TOWN_KIND_SUFFIXES = ("街道", "镇", "乡", "街")
VILLAGE_KIND_SUFFIXES = ("村民委员会", "居民委员会", "村委会", "居委会", "社区", "村", "居")
_DIGITS = "零一二三四五六七八九"
_NUMERAL_RUN = re.compile(r"[0-9]+|[零〇一二两三四五六七八九十百千]+")
_CN_VALUE = {ch: i for i, ch in enumerate(_DIGITS)} | {"〇": 0, "两": 2}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}


def normalize_place(text: str) -> str:
    """The name as compared: NFKC (full-width letters and digits, brackets), no spaces."""
    return _SPACES.sub("", unicodedata.normalize("NFKC", text or ""))


def chinese_number(text: str) -> int | None:
    """一 → 1, 十 → 10, 十二 → 12, 二十 → 20, 一百零五 → 105, 一〇五 → 105; None if not one."""
    if not text:
        return None
    if all(ch in _CN_VALUE for ch in text):  # digit by digit: 一〇五
        return int("".join(str(_CN_VALUE[ch]) for ch in text))
    total, digit = 0, None
    for ch in text:
        if ch in _CN_VALUE:
            digit = _CN_VALUE[ch]
        elif ch in _CN_UNIT:
            total += (1 if digit is None else digit) * _CN_UNIT[ch]
            digit = None
        else:
            return None
    return total + (digit or 0)


def natural_key(name: str) -> tuple:
    """Sort key reading numbers in names by value: 二村 < 十村, 2 < 10, 城关1村 == 城关一村."""
    text = normalize_place(name)
    parts: list[tuple[int, int | str]] = []
    position = 0
    for match in _NUMERAL_RUN.finditer(text):
        if match.start() > position:
            parts.append((1, text[position : match.start()]))
        run = match.group()
        value = int(run) if run.isdigit() else chinese_number(run)
        parts.append((0, value) if value is not None else (1, run))
        position = match.end()
    if position < len(text):
        parts.append((1, text[position:]))
    return (tuple(parts), text)


def natural_sorted(names: Iterable[str]) -> list[str]:
    return sorted(names, key=natural_key)


def _strip_suffix(text: str, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if text.endswith(suffix) and len(text) > len(suffix):
            return text[: -len(suffix)]
    return text


def without_office(text: str) -> str:
    """城关镇人民政府 → 城关镇; 柳林街道办事处 / 柳林街道办 → 柳林街道."""
    text = _strip_suffix(normalize_place(text), OFFICE_SUFFIXES)
    return text[:-1] if text.endswith("街道办") else text


def town_core(text: str) -> str:
    """The proper part of a town's name: 城关镇人民政府 → 城关, 柳林街道 → 柳林."""
    return _strip_suffix(without_office(text), TOWN_KIND_SUFFIXES)


def village_core(text: str) -> str:
    """A village name compared loosely: 城关1村 / 城关一村 / 城关一村委会 → the same key."""
    text = _strip_suffix(normalize_place(text), VILLAGE_KIND_SUFFIXES)
    return "".join(
        f"#{value}"
        if (value := (int(run) if run.isdigit() else chinese_number(run))) is not None
        else run
        for run in _split_numerals(text)
    )


def _split_numerals(text: str) -> list[str]:
    parts, position = [], 0
    for match in _NUMERAL_RUN.finditer(text):
        parts.extend([text[position : match.start()], match.group()])
        position = match.end()
    parts.append(text[position:])
    return [p for p in parts if p]


def suggest_town(written: str, names: Iterable[str]) -> str | None:
    """The town most likely meant by ``written`` (城关 → 城关镇), or None when none is close."""
    names = list(names)
    core = town_core(written)
    if not core:
        return None
    same = [n for n in names if town_core(n) == core]
    if len(same) == 1:
        return same[0]
    starting = [n for n in names if len(core) >= 2 and town_core(n).startswith(core)]
    if len(starting) == 1:
        return starting[0]
    close = difflib.get_close_matches(without_office(written), names, n=1, cutoff=0.6)
    return close[0] if close else None


# --- former names -----------------------------------------------------------------------------

FORMER_NAME_SEPARATOR = "、"


def former_name_list(text: str) -> list[str]:
    """The former names stored as ``北关镇、城北镇`` (also typed with , ， ; ； or spaces)."""
    return [n for n in re.split(r"[、,，;；\s]+", text or "") if n]


def with_former_name(former_names: str, old_name: str, new_name: str) -> str:
    """The former names after a rename from ``old_name`` to ``new_name``: the old name
    added once; the new name no longer among them (a name taken back is current again)."""
    names = [n for n in former_name_list(former_names) if n != new_name]
    if old_name and old_name != new_name and old_name not in names:
        names.append(old_name)
    return FORMER_NAME_SEPARATOR.join(names)
