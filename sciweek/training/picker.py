"""Finding a roster cadre to link an unmatched attendee to (the unmatched-attendees page).

A district has thousands of cadres: the page searches them (by name, village, the last 4
characters of the phone or ID number, or a whole phone number: ``person_query``) instead of
listing them all. A year's search finds the cadres on the roster that year, with the town,
village and posts of their roster period then; a coordinator's only those of their town.
Phones and ID numbers are masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import select

from ..extensions import db
from ..identity import mask_id_number, mask_phone
from ..models import TOWN_ORDER, Cadre, Town, Village
from ..person_query import DoorQuery, matches_query, parse_door_query
from ..placenames import natural_key
from .periods import periods_in_year

PICKER_LIMIT = 20


@dataclass
class CadreChoice:
    cadre_id: int
    name: str
    town: str
    village: str
    posts: str
    phone_masked: str
    id_masked: str

    @property
    def label(self) -> str:
        """How the choice reads, e.g. 张三（城关镇·城关一村，村委会主任，138****8000）."""
        details = [f"{self.town}·{self.village}", self.posts, self.phone_masked, self.id_masked]
        return f"{self.name}（{'，'.join(d for d in details if d)}）"

    def as_json(self) -> dict:
        return {
            "id": self.cadre_id,
            "name": self.name,
            "town": self.town,
            "village": self.village,
            "posts": self.posts,
            "phone_masked": self.phone_masked,
            "id_masked": self.id_masked,
            "label": self.label,
        }


@dataclass
class CadreSearch:
    query: DoorQuery
    choices: list[CadreChoice] = field(default_factory=list)
    more: bool = False  # more cadres matched than are shown

    @property
    def hint(self) -> str | None:
        if self.query.kind == "digits":
            return _("手机号请输入后 4 位或完整号码；身份证号请输入后 4 位。")
        if self.more:
            return _("只显示前 %(n)s 人，请输入更多字缩小范围。", n=PICKER_LIMIT)
        if self.query.kind != "empty" and not self.choices:
            return _("没有找到符合的干部。")
        return None

    def as_json(self) -> dict:
        return {
            "query": self.query.kind,
            "cadres": [c.as_json() for c in self.choices],
            "hint": self.hint,
        }


def search_cadres(
    text: str, year: int, town_id: int | None = None, limit: int = PICKER_LIMIT
) -> CadreSearch:
    """Cadres on the roster in ``year`` (of ``town_id`` then, when given) matching ``text``
    by name, village, phone or ID number, by town, village and name."""
    query = parse_door_query(text)
    if query.kind in ("empty", "digits"):
        return CadreSearch(query)
    served = periods_in_year(year)
    stmt = (
        select(
            Cadre.id,
            Cadre.name,
            Cadre.phone,
            Cadre.id_number,
            served.c.posts,
            Village.name.label("village"),
            Town.name.label("town"),
            Town.position,
            Town.code,
        )
        .select_from(served)
        .join(Cadre, Cadre.id == served.c.cadre_id)
        .join(Village, Village.id == served.c.village_id)
        .join(Town, Town.id == served.c.town_id)
        .where(matches_query(query, Cadre.name, Cadre.phone, Cadre.id_number, Village.name))
        .order_by(*TOWN_ORDER, Cadre.name, Cadre.id)
        .limit(limit + 1)
    )
    if town_id is not None:
        stmt = stmt.where(served.c.town_id == town_id)
    rows = list(db.session.execute(stmt))
    shown = sorted(
        rows[:limit], key=lambda r: (r.position, r.code, natural_key(r.village), r.name, r.id)
    )
    return CadreSearch(
        query,
        [
            CadreChoice(
                cadre_id=row.id,
                name=row.name,
                town=row.town,
                village=row.village,
                posts=row.posts,
                phone_masked=mask_phone(row.phone),
                id_masked=mask_id_number(row.id_number),
            )
            for row in shown
        ],
        more=len(rows) > limit,
    )


def cadre_to_link(cadre_id: int, year: int, town_id: int | None = None) -> Cadre | None:
    """The cadre with this id when a search of ``year`` (and ``town_id``) could find them."""
    served = periods_in_year(year)
    stmt = select(Cadre).join(served, served.c.cadre_id == Cadre.id).where(Cadre.id == cadre_id)
    if town_id is not None:
        stmt = stmt.where(served.c.town_id == town_id)
    return db.session.scalar(stmt)
