"""Select-box choices shared by several forms."""

from __future__ import annotations

from sqlalchemy import select

from .extensions import db
from .models import Town, Village


def town_choices() -> list[tuple[int, str]]:
    return [(t.id, t.name) for t in db.session.scalars(select(Town).order_by(Town.code))]


def village_choices() -> list[tuple[int, str]]:
    rows = db.session.execute(
        select(Village.id, Town.name, Village.name).join(Town).order_by(Town.code, Village.name)
    )
    return [(vid, f"{town} · {village}") for vid, town, village in rows]
