"""The check-in API's JSON bodies (docs/checkin_api.md), validated with pydantic.

Strict: a number is a JSON number (not ``"1"``, ``1.5`` or ``true``), text is a JSON
string. Unknown keys are ignored. Failures become a 400 ``invalid`` naming each field
(``sciweek.api.json_body``); the custom error types below have their messages there.
The scan is the hot path: validating its body costs a few microseconds (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from ..inputs import INT32_MAX
from ..models import WINDOW_OVERRIDE_REASON_MAX
from .services import NONCE_MAX


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return value


def _printable(value: str) -> str:
    # PostgreSQL text cannot hold NUL; no name, phone or nonce needs control characters.
    if not value.isprintable():
        raise PydanticCustomError("unsafe_text", "must not contain control characters")
    return value


def _empty_as_none(value: str | None) -> str | None:
    return value or None


def _iso_time(value: str | None) -> str | None:
    """Checked here, read by ``services.parse_scan_time`` (which also bounds it in time)."""
    if not value:
        return None
    try:
        if len(value) > 40:
            raise ValueError(value)
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PydanticCustomError("iso_time", "must be an ISO 8601 time") from None
    return value


def _reason(value: str | None) -> str | None:
    """Absent or null: no override. Given: a reason in words (not blank), kept trimmed."""
    if value is None:
        return None
    return _printable(_not_blank(value)).strip()


Id = Annotated[int, Field(gt=0, le=INT32_MAX)]
Text = Annotated[str, AfterValidator(_not_blank)]
Nonce = Annotated[
    str | None,
    Field(max_length=NONCE_MAX),
    AfterValidator(lambda v: _printable(v) if v else v),
    AfterValidator(_empty_as_none),
]
# "仍然签到": an organizer checks someone in outside the session's check-in window, saying why.
OverrideReason = Annotated[
    str | None, Field(max_length=WINDOW_OVERRIDE_REASON_MAX), AfterValidator(_reason)
]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class ScanBody(_Body):
    """POST /api/v1/checkins."""

    code: Annotated[Text, Field(max_length=2000)]  # as scanned: any characters
    activity_id: Id
    session_id: Id | None = None
    nonce: Nonce = None
    scanned_at: Annotated[str | None, AfterValidator(_iso_time)] = None
    override_reason: OverrideReason = None


class WalkInBody(_Body):
    """POST /api/v1/activities/<id>/walk-ins (name and phone are checked again, with their
    rules, by the registration service).

    ``no_phone``: a walk-in without a phone (无手机), who gives ``village_id`` instead.
    ``over_capacity``: admit beyond capacity when the activity is full (organizers only).
    """

    name: Annotated[Text, Field(max_length=100), AfterValidator(_printable)]
    phone: Annotated[str, Field(max_length=30), AfterValidator(_printable)] = ""
    no_phone: bool = False
    village_id: Id | None = None
    session_id: Id | None = None
    nonce: Nonce = None
    over_capacity: bool = False
    override_reason: OverrideReason = None


class OverCapacityBody(_Body):
    """POST /api/v1/activities/<id>/over-capacity: admit a waitlisted registration."""

    registration_id: Id
    session_id: Id | None = None
    nonce: Nonce = None
    override_reason: OverrideReason = None


class RosterCheckInBody(_Body):
    """POST /api/v1/activities/<id>/roster-checkins: an invited cadre checked in from the
    door's list (``checkin.roster_door``); ``scanned_at`` for a check-in made offline."""

    cadre_id: Id
    session_id: Id | None = None
    nonce: Nonce = None
    scanned_at: Annotated[str | None, AfterValidator(_iso_time)] = None
    override_reason: OverrideReason = None
