"""Untrusted input at the edge: numbers in ASCII digits, ids the database can hold, text
without control characters, JSON of bounded depth.

Python is generous where a database is not: ``int("١٢")`` is 12, ``"²".isdigit()`` is true
and ``int("²")`` raises, ``\\d`` matches every script's digits, integers have no upper
bound (PostgreSQL ``integer`` stops at 2**31 - 1, SQLite at 2**63 - 1), and PostgreSQL text
cannot hold NUL. Everything that turns request text into an id or an integer goes through
this module; ``init_app`` makes the ``<int:...>`` URL converter strict, bounds the depth of
JSON, and turns NUL and control characters in the path or the query string into a 400.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, current_app, request
from flask.json.provider import DefaultJSONProvider
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest
from werkzeug.routing import BaseConverter, ValidationError

INT32_MAX = 2**31 - 1  # PostgreSQL integer, the type of every id column
JSON_MAX_DEPTH = 32
_ASCII_INT = re.compile(r"[+-]?[0-9]{1,12}")
# C0 controls except tab, line feed and carriage return; DEL; lone surrogates (which no
# encoder can write to the database). NUL is the one PostgreSQL refuses outright.
_UNSAFE_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


class InvalidInput(BadRequest):
    """A 400 whose message says what was wrong (shown on the error page or in the API)."""

    def __init__(self, message: str):
        super().__init__()
        self.message = message


# --- numbers ------------------------------------------------------------------------------


def parse_int(value: object, *, minimum: int = 1, maximum: int = INT32_MAX) -> int | None:
    """``value`` as an int in [minimum, maximum] when it is written in ASCII digits
    (an optional sign, surrounding spaces allowed), else None. Ints pass through the range
    check; bools and anything else give None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _ASCII_INT.fullmatch(value.strip()):
        number = int(value)
    else:
        return None
    return number if minimum <= number <= maximum else None


def parse_id(value: object) -> int | None:
    """A database id (1 … 2**31 - 1) written in ASCII digits, else None."""
    return parse_int(value, minimum=1, maximum=INT32_MAX)


def coerce_id(value: object) -> int:
    """``coerce`` for select fields of ids: 0 (nothing chosen) or an id; ValueError else."""
    number = parse_int(value, minimum=0, maximum=INT32_MAX)
    if number is None:
        raise ValueError(value)  # WTForms shows its own "could not coerce" message
    return number


def query_int(name: str, *, minimum: int = 1, maximum: int = INT32_MAX) -> int | None:
    """The query argument ``name`` as an int; None when absent or empty; 400 when it is
    anything but an integer in [minimum, maximum] written in ASCII digits."""
    raw = request.args.get(name, "")
    if raw == "":
        return None
    number = parse_int(raw, minimum=minimum, maximum=maximum)
    if number is None:
        raise InvalidInput(
            _(
                "参数 %(name)s 应为 %(min)s 到 %(max)s 之间的整数。",
                name=name,
                min=minimum,
                max=maximum,
            )
        )
    return number


class IdConverter(BaseConverter):
    """``<int:...>`` in URLs: ASCII digits up to 2**31 - 1, anything else is no match (404).

    Registered under werkzeug's name ``int`` so that every rule, present and future, uses
    it; werkzeug's own accepts any script's digits (``/activities/١٢`` was activity 12)
    and numbers no id column can hold.
    """

    regex = r"[0-9]{1,10}"
    weight = 50
    part_isolating = True

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > INT32_MAX:
            raise ValidationError()
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))


# --- text ---------------------------------------------------------------------------------


def has_unsafe_text(value: str) -> bool:
    """True when ``value`` holds NUL, another control character (tab and line breaks
    apart) or a lone surrogate."""
    return _UNSAFE_TEXT.search(value) is not None


def without_unsafe_text(value: str) -> str:
    return _UNSAFE_TEXT.sub("", value)


def _unsafe_strings(values: Iterable[str]) -> bool:
    return any(has_unsafe_text(v) for v in values)


def reject_unsafe_request() -> None:
    """``before_request``: NUL or control characters in the path or the query string are a
    400 (forms check their own fields, with a message beside the field)."""
    args = request.args
    if (
        has_unsafe_text(request.path)
        or _unsafe_strings(args.keys())
        or any(_unsafe_strings(args.getlist(k)) for k in args)
    ):
        raise InvalidInput(_("请求中含有无效字符（如空字符）。"))


# --- JSON ---------------------------------------------------------------------------------


class JSONInputError(ValueError):
    """A JSON body refused before parsing; the message is for the client."""


def json_depth(text: str) -> int:
    """How deeply arrays and objects nest in ``text`` (strings skipped), without parsing."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def loads_json(data: str | bytes, **kwargs: Any) -> Any:
    """``json.loads`` with nesting at most ``JSON_MAX_DEPTH`` deep: Python's parser raises
    RecursionError, not ValueError, past about a thousand levels. What the strings may hold
    is each field's business (the API refuses control characters in names and nonces)."""
    text = data
    if isinstance(data, bytes):
        text = data.decode(json.detect_encoding(data), "surrogatepass")
    if json_depth(text) > JSON_MAX_DEPTH:
        raise JSONInputError(_("请求体嵌套过深（最多 %(n)s 层）。", n=JSON_MAX_DEPTH))
    return json.loads(text, **kwargs)


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, reading through ``loads_json``."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads_json(s, **kwargs)


# --- request bodies ----------------------------------------------------------------------

_BODY_LIMIT = "sciweek_max_body_bytes"


def accepts_body_up_to(max_bytes: int) -> Callable:
    """A view whose requests may carry up to ``max_bytes`` (several photos at once) instead
    of ``MAX_CONTENT_LENGTH``. Set before any other ``before_request`` reads the form (the
    CSRF check does), so it holds for the whole request."""

    def decorator(view: Callable) -> Callable:
        setattr(view, _BODY_LIMIT, max_bytes)
        return view

    return decorator


def apply_body_limit() -> None:
    """``before_request``: the body limit of the view answering, when it has its own."""
    view = current_app.view_functions.get(request.endpoint or "")
    limit = getattr(view, _BODY_LIMIT, None)
    if limit is not None:
        request.max_content_length = limit


def init_app(app: Flask) -> None:
    """Before any blueprint: rules are compiled with the converters present when added;
    and before the CSRF check, which reads the body."""
    app.url_map.converters["int"] = IdConverter
    app.json = JSONProvider(app)
    app.before_request(apply_body_limit)
    app.before_request(reject_unsafe_request)
