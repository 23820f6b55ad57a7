"""Builders for training tests: towns with villages, cadres, trainings and check-ins."""

from __future__ import annotations

import secrets
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from sciweek.extensions import db
from sciweek.models import Activity, ActivitySession, Cadre, CheckIn, Registration
from sciweek.training.periods import add_to_roster

from .conftest import local

_counter = {"n": 0}


def next_phone() -> str:
    _counter["n"] += 1
    return f"139{_counter['n']:08d}"


def cadre(town, village_name=None, name=None, phone=None, active_from=date(2020, 1, 1), **kw):
    village = next(v for v in town.villages if village_name in (None, v.name))
    person = Cadre(
        name=name or f"干部{secrets.token_hex(2)}",
        town_id=town.id,
        village_id=village.id,
        phone=phone or next_phone(),
        active_from=active_from,
        **kw,
    )
    add_to_roster(person)
    db.session.commit()
    return person


def training(make, town, days, hours="2", status="published"):
    """A training activity held in ``town`` with one session per (year, month, day)."""
    activity = make.activity(
        kind="training",
        town=town,
        status=status,
        sessions=[(local(y, m, d, 9), local(y, m, d, 11)) for y, m, d in days],
    )
    for session in activity.sessions:
        session.credit_hours = Decimal(hours) if hours is not None else None
    db.session.commit()
    return activity


def attend(activity: Activity, phone: str, name="参训人", sessions=None, cadre_id=None, **kw):
    """Register ``phone`` for ``activity`` and check in at ``sessions`` (default: all)."""
    if cadre_id is None:
        # What registering does: the registration belongs to the cadre with this phone.
        cadre_id = db.session.scalar(select(Cadre.id).where(Cadre.phone == phone))
    registration = Registration(
        activity_id=activity.id,
        name=name,
        phone=phone,
        status="confirmed",
        secret_hash=secrets.token_hex(32),
        short_code=secrets.token_hex(3)[:6].upper(),
        cadre_id=cadre_id,
        **kw,
    )
    db.session.add(registration)
    db.session.flush()
    chosen: list[ActivitySession] = activity.sessions if sessions is None else sessions
    for session in chosen:
        db.session.add(CheckIn(registration_id=registration.id, session_id=session.id))
    db.session.commit()
    return registration
