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
    activity_roster_towns,
)
from .checkin import (
    SCAN_RESULT_VALUES,
    WINDOW_OVERRIDE_REASON_MAX,
    ApiToken,
    CheckInMethod,
    ScanLog,
    ScanResult,
    scan_outcome,
)
from .notifications import (
    DUE_STATUSES,
    EVENT_VALUES,
    FINAL_STATUSES,
    OUTBOX_STATUS_VALUES,
    Channel,
    NotificationEvent,
    OutboxMessage,
    OutboxStatus,
    SmsDailyCount,
)
from .places import Department, Town, TownAlias, Village
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
    "DUE_STATUSES",
    "EVENT_VALUES",
    "OUTBOX_STATUS_VALUES",
    "FINAL_STATUSES",
    "Channel",
    "NotificationEvent",
    "OutboxMessage",
    "OutboxStatus",
    "SmsDailyCount",
    "SCAN_RESULT_VALUES",
    "WINDOW_OVERRIDE_REASON_MAX",
    "ApiToken",
    "ScanLog",
    "ScanResult",
    "REGISTRATION_STATUS_VALUES",
    "CheckIn",
    "CheckInMethod",
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
    "TownAlias",
    "UTCDateTime",
    "User",
    "Village",
    "activity_departments",
    "activity_roster_towns",
    "checker_assignments",
    "scan_outcome",
    "short_code_preference",
    "utcnow",
]
