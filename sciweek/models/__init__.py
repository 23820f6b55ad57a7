"""Typed SQLAlchemy 2.0 models, one module per domain area."""

from .accounts import ROLE_VALUES, STAFF_ROLES, Role, User, checker_assignments
from .activities import (
    Activity,
    ActivityKind,
    ActivitySession,
    ActivityStatus,
    Audience,
    Campaign,
    activity_departments,
)
from .checkin import SCAN_RESULT_VALUES, ApiToken, ScanLog, ScanResult, scan_outcome
from .places import Department, Town, Village
from .registration import (
    REGISTRATION_STATUS_VALUES,
    CheckIn,
    Registration,
    RegistrationStatus,
    short_code_preference,
)
from .training import Cadre, CoverageTarget
from .types import UTCDateTime, utcnow

__all__ = [
    "SCAN_RESULT_VALUES",
    "ApiToken",
    "ScanLog",
    "ScanResult",
    "REGISTRATION_STATUS_VALUES",
    "CheckIn",
    "Registration",
    "RegistrationStatus",
    "ROLE_VALUES",
    "STAFF_ROLES",
    "Activity",
    "ActivityKind",
    "ActivitySession",
    "ActivityStatus",
    "Audience",
    "Cadre",
    "Campaign",
    "CoverageTarget",
    "Department",
    "Role",
    "Town",
    "UTCDateTime",
    "User",
    "Village",
    "activity_departments",
    "checker_assignments",
    "scan_outcome",
    "short_code_preference",
    "utcnow",
]
