"""Translated names of the registration statuses, for every template and export."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..models import RegistrationStatus

# The registrant list's filter for registrations with a live check-in, beside the statuses.
CHECKED_IN = "checked_in"
# Confirmed registrations admitted at the door beyond capacity (超额), counted apart.
OVER_CAPACITY = "over_capacity"

# As organizers see them: lists, filters, exports.
STATUS_LABELS = {
    RegistrationStatus.CONFIRMED: _l("已确认"),
    RegistrationStatus.WAITLISTED: _l("候补"),
    RegistrationStatus.CANCELLED: _l("已取消"),
}


def status_filter_choices() -> list[tuple[str, str]]:
    """The registrant list's status filter: each status, then "checked in"."""
    return [*STATUS_LABELS.items(), (CHECKED_IN, _l("已签到"))]


def ticket_status_label(status: RegistrationStatus, position: int | None = None) -> str:
    """As the registrant sees their own ticket (``status`` is the effective one)."""
    if status == RegistrationStatus.CONFIRMED:
        return _("报名成功")
    if status == RegistrationStatus.WAITLISTED:
        return _("候补中：第 %(n)s 位", n=position)
    return _("已取消")
