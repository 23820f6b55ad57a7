"""Translated names of how a check-in was made (``CheckInMethod``), for pages and exports.

Shared core: the door pages (checkin), the paper entry page (manage) and the cadre's
training record (training) all name the method of a check-in.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from .models import CheckInMethod

METHOD_LABELS = {
    CheckInMethod.SCAN: _l("扫码"),
    CheckInMethod.WALK_IN: _l("现场报名"),
    CheckInMethod.ROSTER: _l("花名册签到"),
    CheckInMethod.OVER_CAPACITY: _l("超额签到"),
    CheckInMethod.SELF: _l("自助签到"),
    CheckInMethod.PAPER: _l("纸质签到表"),
    CheckInMethod.DEMO: _l("演示数据"),
}


def method_label(method: str | None) -> str:
    """The name of a check-in method; an unknown value as stored."""
    if method is None:
        return ""
    try:
        return str(METHOD_LABELS[CheckInMethod(method)])
    except (ValueError, KeyError):
        return method
