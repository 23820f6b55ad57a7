"""The JSON API's edge: one error vocabulary and schema-validated bodies.

Every error under ``/api/`` answers ``{"error": "<kind>", "message": "<for people>"}``
(docs/checkin_api.md, "Errors"); ``KIND_BY_STATUS`` names the kinds of HTTP errors that
Flask, Flask-Limiter and the views raise, ``ApiError`` carries a more specific kind.
Bodies are read with ``json_body(Schema)``: a pydantic model (see ``checkin/schemas.py``)
whose failures become a 400 ``invalid`` naming each field in the visitor's language.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from flask import Response, jsonify, request
from flask_babel import gettext as _
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import BadRequest, HTTPException

from .inputs import JSONInputError, loads_json

API_PREFIX = "/api/"

# The kind of every HTTP error status; others are their name in snake_case.
KIND_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "server_error",
}

Schema = TypeVar("Schema", bound=BaseModel)


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)


def kind_of(error: HTTPException) -> str:
    if isinstance(error, ApiError):
        return error.kind
    code = error.code or 500
    return KIND_BY_STATUS.get(code) or re.sub(r"\W+", "_", (error.name or "error").lower())


def error_response(status: int, kind: str, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify(error=kind, message=message, **extra), status


class ApiError(BadRequest):
    """An API error with its own kind (default status 400) and extra keys for the body."""

    def __init__(self, kind: str, message: str, *, status: int = 400, **extra: Any):
        super().__init__(message)
        self.code = status
        self.kind = kind
        self.message = message
        self.extra = extra

    def response_body(self) -> tuple[Response, int]:
        return error_response(self.code, self.kind, self.message, **self.extra)


def invalid(fields: dict[str, str]) -> ApiError:
    """400 ``invalid``: ``fields`` maps each bad field to its message; the first is ``field``
    and its message the ``message``."""
    field, message = next(iter(fields.items()))
    return ApiError("invalid", message, field=field, fields=fields)


# --- bodies ---------------------------------------------------------------------------------


def json_object() -> dict:
    """The request body as a JSON object, else 400 ``invalid_json``."""
    try:
        data = loads_json(request.get_data(cache=True))
    except JSONInputError as exc:  # nested too deeply
        raise ApiError("invalid_json", str(exc)) from None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ApiError("invalid_json", _("请求体应为 JSON 对象。"))
    return data


def json_body(schema: type[Schema]) -> Schema:
    """The request body validated by ``schema``; 400 ``invalid_json`` or ``invalid``."""
    data = json_object()
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise invalid(field_messages(exc)) from None


def field_messages(exc: ValidationError) -> dict[str, str]:
    """One message a field, in the visitor's language, naming the field."""
    fields: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        name = ".".join(str(part) for part in error["loc"]) or "body"
        fields.setdefault(name, _message(name, error["type"], error.get("ctx") or {}))
    return fields


def _message(name: str, kind: str, ctx: dict) -> str:
    if kind == "missing":
        return _("请填写 %(name)s。", name=name)
    if kind.startswith("int_") or kind in ("greater_than", "less_than"):
        return _("%(name)s 应为正整数。", name=name)
    if kind in ("string_type", "string_too_short", "blank"):
        return _("%(name)s 应为非空字符串。", name=name)
    if kind == "string_too_long":
        return _("%(name)s 不能超过 %(n)s 个字符。", name=name, n=ctx.get("max_length"))
    if kind == "unsafe_text":
        return _("%(name)s 含有无效字符。", name=name)
    if kind == "iso_time":
        return _("%(name)s 应为 ISO 8601 时间。", name=name)
    return _("%(name)s 的值无效。", name=name)
