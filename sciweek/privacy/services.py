"""显示完整号码: a full phone number shown to someone allowed to see it, and logged.

Phones are masked everywhere by default (个人信息保护法). A coordinator may reveal the
number of a cadre of their own town, an organizer that of a registrant of their activity
(``permissions.can_reveal_*``); each reveal writes who, whose and when into
``phone_reveals``, in the transaction of the request that shows it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import Cadre, PhoneReveal, Registration, User


def reveal_registrant_phone(viewer: User, registration: Registration) -> str:
    """Log that ``viewer`` sees the registrant's full phone and return it. Flushes only."""
    db.session.add(
        PhoneReveal(
            user_id=viewer.id, registration_id=registration.id, subject_name=registration.name
        )
    )
    db.session.flush()
    return registration.phone or ""


def reveal_cadre_phone(viewer: User, cadre: Cadre) -> str:
    """Log that ``viewer`` sees the cadre's full phone and return it. Flushes only."""
    db.session.add(PhoneReveal(user_id=viewer.id, cadre_id=cadre.id, subject_name=cadre.name))
    db.session.flush()
    return cadre.phone or ""


def recent_reveals(limit: int = 500) -> list[PhoneReveal]:
    """The newest reveals first, with who saw and whose number it was."""
    return list(
        db.session.scalars(
            select(PhoneReveal)
            .options(
                selectinload(PhoneReveal.user),
                selectinload(PhoneReveal.cadre).selectinload(Cadre.town),
                selectinload(PhoneReveal.registration).selectinload(Registration.activity),
            )
            .order_by(PhoneReveal.id.desc())
            .limit(limit)
        )
    )
