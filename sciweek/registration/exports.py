"""The registrant list as a table for CSV/XLSX export (phones masked unless asked)."""

from __future__ import annotations

from flask_babel import gettext as _

from ..i18n import format_datetime
from ..identity import is_mobile, mask_phone
from ..models import Activity, Registration
from .labels import STATUS_LABELS
from .services import list_registrants


def registrant_table(activity: Activity, *, full_phone: bool) -> tuple[list[str], list[list]]:
    header = [
        _("序号"),
        _("姓名"),
        _("手机号"),
        _("镇街"),
        _("村/社区"),
        _("状态"),
        _("候补顺位"),
        _("签到场次"),
        _("票码"),
        _("报名时间"),
    ]
    rows = []
    for number, row in enumerate(list_registrants(activity.id), start=1):
        r = row.registration
        rows.append(
            [
                number,
                r.name,
                _phone_cell(r.phone, full_phone=full_phone),
                r.town.name if r.town else "",
                r.village.name if r.village else "",
                _status_cell(r),
                row.waitlist_position or "",
                row.checked_in,
                r.short_code,
                format_datetime(r.created_at),
            ]
        )
    return header, rows


def _phone_cell(phone: str | None, *, full_phone: bool) -> str:
    """A phone as the export shows it: masked unless ``full_phone``; 无手机 for a walk-in
    without one and for a roster cadre registered without one (``roster_door.no_phone_key``)."""
    if phone is None or not is_mobile(phone):
        return _("无手机")
    return phone if full_phone else mask_phone(phone)


def _status_cell(registration: Registration) -> str:
    label = str(STATUS_LABELS[registration.effective_status])
    if registration.over_capacity:
        return label + _("（超额签到）")
    return label
