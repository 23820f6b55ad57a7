"""What each domain event writes into the outbox (receivers of ``sciweek.signals``).

They run inside the sender's transaction, so the messages commit or roll back with the
change. Keys (``outbox.dedupe_key``):

| event | key | to |
|---|---|---|
| confirmed / waitlisted | ``confirmed::0:r<reg>`` | the registrant (walk-ins are not told) |
| promoted | ``promoted::0:r<reg>`` | the promoted registrant |
| changed | ``changed:a<act>:v<sequence>:r<reg>`` | every active registrant |
| cancelled (activity) | ``cancelled:a<act>:v<sequence>:r<reg>`` | every active registrant |
| cancelled (by staff) | ``cancelled:staff:0:r<reg>`` | the registrant |

Registrations without a mobile number (walk-ins without a phone, roster cadres without one)
are sent nothing (``identity.is_mobile``; in SQL ``outbox.HAS_MOBILE``).
"""

from __future__ import annotations

from .. import signals
from ..extensions import db
from ..identity import is_mobile
from ..links import site_base_url
from ..models import Activity, NotificationEvent, Registration, RegistrationStatus
from . import messages, outbox

SUPERSEDED = "superseded"


def _ticket_url(secret: str) -> str:
    return f"{site_base_url()}/t/{secret}"


def on_registration_made(
    activity_id: int,
    *,
    registration_id: int,
    phone: str,
    status: str,
    short_code: str,
    secret: str | None = None,
    walk_in: bool = False,
    **_ignored,
) -> None:
    if walk_in:
        return  # registered at the door: already there
    activity = db.session.get(Activity, activity_id)
    if activity is None:
        return
    confirmed = status == RegistrationStatus.CONFIRMED
    event = NotificationEvent.CONFIRMED if confirmed else NotificationEvent.WAITLISTED
    outbox.enqueue(
        event,
        key=outbox.dedupe_key(event, f"r{registration_id}", version=0),
        recipient=phone,
        params={**messages.activity_params(activity), "code": short_code},
        secret_params={"ticket_url": _ticket_url(secret)} if secret and confirmed else None,
        activity_id=activity_id,
        registration_id=registration_id,
    )


def on_registration_promoted(registration: Registration, **_ignored) -> None:
    if not is_mobile(registration.phone):
        return  # a walk-in without a phone (无手机), a roster cadre without one: nobody to text
    event = NotificationEvent.PROMOTED
    outbox.enqueue(
        event,
        key=outbox.dedupe_key(event, f"r{registration.id}", version=0),
        recipient=registration.phone,
        params={**messages.activity_params(registration.activity), "code": registration.short_code},
        activity_id=registration.activity_id,
        registration_id=registration.id,
    )


def on_registration_cancelled_by_staff(registration: Registration, **_ignored) -> None:
    if not is_mobile(registration.phone):
        return  # no phone: nobody to text
    event = NotificationEvent.CANCELLED
    outbox.enqueue(
        event,
        key=outbox.dedupe_key(event, f"r{registration.id}", scope="staff", version=0),
        recipient=registration.phone,
        template="cancelled_by_staff",
        params=messages.activity_params(registration.activity),
        activity_id=registration.activity_id,
        registration_id=registration.id,
    )


def on_activity_rescheduled(activity: Activity, **_ignored) -> None:
    if activity.is_cancelled:
        return  # its registrants were told it is cancelled
    # A newer change replaces one not sent yet: people get the latest details once.
    outbox.supersede(activity.id, [NotificationEvent.CHANGED], reason=SUPERSEDED)
    outbox.enqueue_for_registrants(
        NotificationEvent.CHANGED,
        activity.id,
        scope=f"a{activity.id}",
        version=f"v{activity.sequence}",
        params=messages.activity_params(activity),
    )


def on_activity_cancelled(activity: Activity, **_ignored) -> None:
    # Nothing else about a cancelled activity is worth sending any more.
    outbox.supersede(
        activity.id,
        [
            NotificationEvent.CONFIRMED,
            NotificationEvent.WAITLISTED,
            NotificationEvent.PROMOTED,
            NotificationEvent.CHANGED,
            NotificationEvent.REMINDER,
        ],
        reason=SUPERSEDED,
    )
    outbox.enqueue_for_registrants(
        NotificationEvent.CANCELLED,
        activity.id,
        scope=f"a{activity.id}",
        version=f"v{activity.sequence}",
        params={**messages.activity_params(activity), "reason": activity.cancel_reason},
    )


def connect() -> None:
    """Connect the receivers (weakly referenced functions of this module: they live on)."""
    signals.registration_made.connect(on_registration_made)
    signals.registration_promoted.connect(on_registration_promoted)
    signals.registration_cancelled_by_staff.connect(on_registration_cancelled_by_staff)
    signals.activity_rescheduled.connect(on_activity_rescheduled)
    signals.activity_cancelled.connect(on_activity_cancelled)
