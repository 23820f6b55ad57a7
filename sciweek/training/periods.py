"""Roster periods (任职记录): where, in which village and post, a cadre served, and when.

One rule answers "where was this cadre at that time" for every reader (coverage of a year,
who a training invites, the door, the sign-in sheet): of the cadre's periods that overlap
the days asked about, the latest. A period is [starts_on, ends_on): a cadre who moves on
day D is in the new town from D, so a day has one period and a year one town — the town
they served in last that year (a cadre who moved in June counts that year for the town
they moved to, and the year before for the town they served then).

The writers keep ``Cadre.town_id``, ``village_id``, ``posts``, ``active_from`` and
``left_on`` (where the cadre is now) in step with the periods.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, Select, Subquery, and_, or_, select
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import Cadre, CadrePeriod


def _overlaps(period, first: date, last: date) -> ColumnElement[bool]:
    return and_(period.starts_on <= last, or_(period.ends_on.is_(None), period.ends_on > first))


def periods_during(first: date, last: date) -> Select:
    """Per cadre on the roster at some time from ``first`` to ``last`` (both included): their
    latest period in it. Columns cadre_id, town_id, village_id, posts (a SELECT to narrow
    down by ``selected_columns`` or to make a subquery of)."""
    period = aliased(CadrePeriod)
    later = aliased(CadrePeriod)
    return select(period.cadre_id, period.town_id, period.village_id, period.posts).where(
        _overlaps(period, first, last),
        ~select(later.id)
        .where(
            later.cadre_id == period.cadre_id,
            later.starts_on > period.starts_on,
            _overlaps(later, first, last),
        )
        .exists(),
    )


def periods_in_year(year: int) -> Subquery:
    """``periods_during`` the calendar year, as a subquery."""
    return periods_during(date(year, 1, 1), date(year, 12, 31)).subquery("year_period")


def period_during(cadre_id: int, first: date, last: date) -> CadrePeriod | None:
    """The cadre's latest period from ``first`` to ``last``; None when off the roster."""
    return db.session.scalar(
        select(CadrePeriod)
        .where(CadrePeriod.cadre_id == cadre_id, _overlaps(CadrePeriod, first, last))
        .order_by(CadrePeriod.starts_on.desc())
        .limit(1)
    )


def add_to_roster(cadre: Cadre) -> Cadre:
    """Put a new cadre on the roster: their first period is the town, village and posts
    they are given, from ``active_from`` (to ``left_on`` when already set)."""
    db.session.add(cadre)
    cadre.periods.append(
        CadrePeriod(
            town_id=cadre.town_id,
            village_id=cadre.village_id,
            posts=cadre.posts or "",
            starts_on=cadre.active_from,
            ends_on=cadre.left_on,
        )
    )
    return cadre


def _open_period(cadre: Cadre) -> CadrePeriod | None:
    return next((p for p in cadre.periods if p.ends_on is None), None)


def move_cadre(cadre: Cadre, *, town_id: int, village_id: int, posts: str, on: date) -> None:
    """From ``on``, the cadre serves in this town, village and post.

    The period they serve in ends on ``on`` and a new one starts, so the years before keep
    their town. When it started on or after ``on`` (a correction made the same day, or
    dated back), it is changed in place instead. A cadre who left is not moved.
    """
    if (cadre.town_id, cadre.village_id, cadre.posts) == (town_id, village_id, posts):
        return
    current = _open_period(cadre)
    if current is None:
        return
    if current.starts_on >= on:
        current.town_id, current.village_id, current.posts = town_id, village_id, posts
    else:
        current.ends_on = on
        cadre.periods.append(
            CadrePeriod(town_id=town_id, village_id=village_id, posts=posts, starts_on=on)
        )
    cadre.town_id, cadre.village_id, cadre.posts = town_id, village_id, posts


def last_start(cadre: Cadre) -> date:
    """The day the cadre's latest period started (the earliest day they can leave)."""
    return max((p.starts_on for p in cadre.periods), default=cadre.active_from)


def end_service(cadre: Cadre, left_on: date) -> None:
    """The cadre leaves the roster on ``left_on`` (not before ``last_start``): their latest
    period ends then (a second date given for one who left corrects the first)."""
    if cadre.periods:
        cadre.periods[-1].ends_on = left_on
    cadre.left_on = left_on
