"""Select-box choices shared by several forms."""

from __future__ import annotations

from sqlalchemy import select

from .extensions import db
from .models import TOWN_ORDER, Town, Village
from .placenames import natural_key


def town_choices() -> list[tuple[int, str]]:
    return [(t.id, t.name) for t in db.session.scalars(select(Town).order_by(*TOWN_ORDER))]


def village_choices() -> list[tuple[int, str]]:
    rows = db.session.execute(
        select(Village.id, Town.position, Town.code, Town.name, Village.name).join(Town)
    )
    ordered = sorted(rows, key=lambda r: (r.position, r.code, natural_key(r[4])))
    return [(vid, f"{town} · {village}") for vid, _pos, _code, town, village in ordered]
