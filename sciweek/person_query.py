"""What a search for a person asks for (at a training's door, or when linking an attendee
to a roster cadre by hand).

One reading of a typed query for the server (``checkin.roster_door.search_door`` and
``training.picker``, in SQL on full values, with ``matches_query``) and the scanner page
offline (``static/js/scanner-core.js``, on masked values); ``tests/door_search_cases.json``
holds the cases both must answer alike:

- the last 4 characters of the phone or of the ID number (``1234``, ``002X``);
- a whole phone number, matched on the digits its mask shows (138****8000: the first 3
  and the last 4), so that searching tells nothing a masked list does not — trying
  numbers never reveals the hidden middle (see ``identity.phone_tail``);
- other digit strings match nothing (the page explains what to type);
- anything else is part of a name.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, or_

from .identity import IdentityError, normalize_phone

QUERY_MAX = 50
_TAIL_RE = re.compile(r"[0-9]{3}[0-9X]")
_DIGITS_RE = re.compile(r"[0-9X]+")
_NOISE_RE = re.compile(r"[\s\-—–()（）.·+]")


@dataclass(frozen=True)
class DoorQuery:
    """``kind``: ``empty``, ``tail`` (``value``: 4 characters), ``phone`` (``value``: the
    11 digits; ``prefix`` and ``suffix`` are what is compared), ``digits`` (matches
    nothing) or ``name`` (``value``: part of a name)."""

    kind: str
    value: str = ""

    @property
    def prefix(self) -> str:
        return self.value[:3]

    @property
    def suffix(self) -> str:
        return self.value[-4:]

    @property
    def phone_tail(self) -> str | None:
        """A tail that can be a phone's: four digits (an ID's may end in X)."""
        return self.value if self.kind == "tail" and self.value.isdigit() else None


def parse_door_query(text: str) -> DoorQuery:
    """Read a door search (full-width forms count as typed ASCII)."""
    value = unicodedata.normalize("NFKC", text or "").strip()[:QUERY_MAX]
    if not value:
        return DoorQuery("empty")
    compact = _NOISE_RE.sub("", value).upper()
    if _TAIL_RE.fullmatch(compact):
        return DoorQuery("tail", compact)
    try:
        return DoorQuery("phone", normalize_phone(value))
    except IdentityError:
        pass
    if _DIGITS_RE.fullmatch(compact):
        return DoorQuery("digits", compact)
    return DoorQuery("name", value)


def matches_query(query: DoorQuery, name, phone, id_number, *more_names) -> ColumnElement[bool]:
    """SQL: the row's name (or one of ``more_names``, e.g. a village), phone or ID number
    answers ``query``."""
    if query.kind == "name":
        return or_(*(n.contains(query.value, autoescape=True) for n in (name, *more_names)))
    if query.kind == "tail":
        by_id = id_number.endswith(query.value)
        return or_(phone.endswith(query.phone_tail), by_id) if query.phone_tail else by_id
    if query.kind == "phone":
        return and_(phone.startswith(query.prefix), phone.endswith(query.suffix))
    return false()
