"""Messages kept with data and shown later, in the language of whoever reads them.

A message stored as text keeps the language of the request that made it: a roster
uploaded in Chinese would show its problems in Chinese to an English viewer of its
preview (issue 15, point 8). A :class:`KeptMessage` is text (rendered at once, so code,
logs and tests read it as a string) that also carries its msgid and values. Stored with
:func:`to_data` as ``{"msgid": ..., "params": {...}}`` and read back with
:func:`from_data`, it is rendered again through gettext in the reader's language. Text
stored as plain strings comes back as it was.

Modules import the class as ``N_`` (a keyword ``pybabel extract`` knows by default:
"marked for translation, translated when shown"), so its msgids are extracted.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_babel import get_locale, gettext


class KeptMessage(str):
    """``gettext(msgid, **params)`` now, remembering ``msgid`` and ``params``.

    Values may be text, numbers, other kept messages or :class:`RowRanges`; nested ones
    are rendered again with it.
    """

    msgid: str
    params: dict[str, Any]

    def __new__(cls, msgid: str, **params: Any) -> KeptMessage:
        self = super().__new__(cls, _render(msgid, params))
        self.msgid = msgid
        self.params = params
        return self

    def __deepcopy__(self, memo) -> KeptMessage:
        return self  # immutable (dataclasses.asdict deep-copies field values)

    def __reduce__(self):
        return (_from_parts, (self.msgid, self.params))


def _from_parts(msgid: str, params: dict[str, Any]) -> KeptMessage:
    return KeptMessage(msgid, **params)


def _render(msgid: str, params: dict[str, Any]) -> str:
    try:
        return gettext(msgid, **params) if params else gettext(msgid)
    except (KeyError, ValueError, TypeError):
        # Stored by a version whose message had other values: its words, unfilled.
        return gettext(msgid)


def list_separator() -> str:
    """Between the items of a list: 、 in Chinese, a comma in English."""
    return ", " if str(get_locale()) == "en" else "、"


class RowRanges(str):
    """Row numbers as short ranges for messages: 5、8–10、14 (Chinese), 5, 8–10, 14
    (English)."""

    numbers: tuple[int, ...]

    def __new__(cls, numbers: Iterable[int]) -> RowRanges:
        runs: list[list[int]] = []
        for number in sorted(set(numbers)):
            if runs and number == runs[-1][1] + 1:
                runs[-1][1] = number
            else:
                runs.append([number, number])
        self = super().__new__(
            cls, list_separator().join(str(a) if a == b else f"{a}–{b}" for a, b in runs)
        )
        self.numbers = tuple(number for a, b in runs for number in range(a, b + 1))
        return self

    def __deepcopy__(self, memo) -> RowRanges:
        return self

    def __reduce__(self):
        return (RowRanges, (self.numbers,))


def to_data(value: Any) -> Any:
    """``value`` for JSON: a kept message as its msgid and values, row ranges as their
    numbers, anything else as it is."""
    if isinstance(value, KeptMessage):
        return {"msgid": value.msgid, "params": {k: to_data(v) for k, v in value.params.items()}}
    if isinstance(value, RowRanges):
        return {"rows": list(value.numbers)}
    return value


def from_data(data: Any) -> Any:
    """What :func:`to_data` gave, rendered in the current language; plain text stays."""
    if isinstance(data, dict) and isinstance(data.get("msgid"), str):
        params = data.get("params") or {}
        return KeptMessage(data["msgid"], **{k: from_data(v) for k, v in params.items()})
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        return RowRanges(int(n) for n in data["rows"])
    return data
