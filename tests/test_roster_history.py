"""Roster history: a cadre who moves or leaves keeps the years they served in the town they
served; importing a year's roster never changes an earlier year's coverage (issue 13.12)."""

from __future__ import annotations

import csv
import io
import math
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from sciweek.checkin.paper import sheet_rows
from sciweek.checkin.roster_door import search_door
from sciweek.extensions import db
from sciweek.models import Cadre, CadrePeriod
from sciweek.training.coverage import coverage_by_town, untrained_cadres
from sciweek.training.invitations import invited_cadres, set_roster_towns
from sciweek.training.roster import parse_roster
from sciweek.training.services import (
    check_roster,
    import_roster,
    mark_cadre_left,
    set_district_target,
    set_target,
)

from .training_helpers import attend, training

HEADER = ["序号", "姓名", "性别", "出生年月", "职务", "所属镇街", "村/社区", "手机号码", "身份证号"]


def import_year(people: list[tuple[str, str, str, str, str]], on: date) -> None:
    """Import a roster of (name, post, town, village, phone) rows, as an admin would."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    for n, (name, post, town, village, phone) in enumerate(people, start=1):
        writer.writerow([n, name, "", "", post, town, village, phone, ""])
    check = check_roster(parse_roster("roster.csv", out.getvalue().encode("utf-8")))
    assert not check.has_errors, check.errors
    import_roster(check, active_from=on)
    db.session.commit()


def _figures(year: int) -> dict[str, tuple[int, int]]:
    return {t.name: (t.cadres, t.trained) for t in coverage_by_town(year).towns}


@pytest.fixture
def towns(make):
    return (
        make.town(name="城关镇", code="a-chengguan", villages=["城关一村", "城关二村"]),
        make.town(name="河西街道", code="b-hexi", villages=["河西一村"]),
        make.town(name="东湖镇", code="c-donghu", villages=["东湖一村"]),
    )


JIA = "13900000001"
YI = "13900000002"


def test_cadre_who_moves_keeps_last_year_in_the_town_they_served(make, towns):
    chengguan, hexi, _donghu = towns
    import_year(
        [("甲", "村委会主任", "城关镇", "城关一村", JIA), ("乙", "委员", "城关镇", "城关二村", YI)],
        date(2026, 1, 1),
    )
    course_2026 = training(make, chengguan, [(2026, 3, 1)])
    attend(course_2026, JIA, name="甲")
    before = coverage_by_town(2026).as_json()
    assert _figures(2026)["城关镇"] == (2, 1)

    # The 2027 roster: 甲 now serves in 河西街道.
    import_year(
        [("甲", "社区主任", "河西街道", "河西一村", JIA), ("乙", "委员", "城关镇", "城关二村", YI)],
        date(2027, 1, 1),
    )

    assert coverage_by_town(2026).as_json() == before  # 2026 unchanged, to the last figure
    assert _figures(2026) == {"城关镇": (2, 1), "河西街道": (0, 0), "东湖镇": (0, 0)}
    assert [c.name for c in untrained_cadres(chengguan.id, 2026)] == ["乙"]
    # 2027: counted in 河西街道, untrained until trained in 2027.
    assert _figures(2027) == {"城关镇": (1, 0), "河西街道": (1, 0), "东湖镇": (0, 0)}
    attend(training(make, chengguan, [(2027, 4, 1)]), JIA, name="甲")
    assert _figures(2027) == {"城关镇": (1, 0), "河西街道": (1, 1), "东湖镇": (0, 0)}
    assert _figures(2026) == {"城关镇": (2, 1), "河西街道": (0, 0), "东湖镇": (0, 0)}

    jia = db.session.scalar(select(Cadre).where(Cadre.phone == JIA))
    periods = [(p.town.name, p.village.name, p.posts, p.starts_on, p.ends_on) for p in jia.periods]
    assert periods == [
        ("城关镇", "城关一村", "村委会主任", date(2026, 1, 1), date(2027, 1, 1)),
        ("河西街道", "河西一村", "社区主任", date(2027, 1, 1), None),
    ]
    # Importing the 2027 roster again changes nothing.
    import_year(
        [("甲", "社区主任", "河西街道", "河西一村", JIA), ("乙", "委员", "城关镇", "城关二村", YI)],
        date(2027, 1, 1),
    )
    assert db.session.query(CadrePeriod).count() == 3


def test_past_training_door_and_sheet_show_the_cadre_where_they_served(make, towns):
    chengguan, hexi, _donghu = towns
    import_year([("甲", "村委会主任", "城关镇", "城关一村", JIA)], date(2026, 1, 1))
    past = training(make, chengguan, [(2026, 3, 1)])
    coming = training(make, chengguan, [(2027, 3, 1)])
    for course in (past, coming):
        set_roster_towns(course, whole_district=False, town_ids=[chengguan.id])
    db.session.commit()
    import_year([("甲", "社区主任", "河西街道", "河西一村", JIA)], date(2027, 1, 1))

    # Invited to 城关镇's 2026 training as its cadre; not to its 2027 one.
    assert [c.name for c in db.session.scalars(invited_cadres(past))] == ["甲"]
    assert list(db.session.scalars(invited_cadres(coming))) == []
    set_roster_towns(coming, whole_district=False, town_ids=[hexi.id])
    assert [c.name for c in db.session.scalars(invited_cadres(coming))] == ["甲"]

    # The 2026 door: 城关镇's coordinator finds 甲 in 城关一村; 河西街道's does not.
    found = search_door(make.user("coordinator", town=chengguan), past, "甲")
    assert [(e["name"], e["village"], e["town"], e["posts"]) for e in found.entries] == [
        ("甲", "城关一村", "城关镇", "村委会主任")
    ]
    assert search_door(make.user("coordinator", town=hexi), past, "甲").entries == []
    # The 2026 sign-in sheet lists 甲 under 城关一村.
    assert [(r.name, r.village) for r in sheet_rows(past, past.sessions[0])] == [("甲", "城关一村")]


# --- two yearly roster updates against a computation by hand --------------------------------

# Where each person serves from each import (None: not on that roster; leaving is marked).
ROSTERS = {
    date(2025, 1, 1): {
        "甲": ("城关镇", "城关一村"),
        "乙": ("城关镇", "城关二村"),
        "丙": ("河西街道", "河西一村"),
        "丁": ("东湖镇", "东湖一村"),
    },
    date(2026, 3, 1): {  # 甲 moves to 河西街道 in March; 戊 joins
        "甲": ("河西街道", "河西一村"),
        "乙": ("城关镇", "城关二村"),
        "丙": ("河西街道", "河西一村"),
        "丁": ("东湖镇", "东湖一村"),
        "戊": ("城关镇", "城关一村"),
    },
    date(2027, 2, 1): {  # 甲 moves on to 东湖镇, 戊 to 河西街道
        "甲": ("东湖镇", "东湖一村"),
        "乙": ("城关镇", "城关二村"),
        "丙": ("河西街道", "河西一村"),
        "丁": ("东湖镇", "东湖一村"),
        "戊": ("河西街道", "河西一村"),
    },
}
LEFT = {"丁": date(2027, 6, 30)}  # 丁 leaves mid-2027
PHONES = {name: f"1370000000{n}" for n, name in enumerate("甲乙丙丁戊", start=1)}
# (person, date, credit hours) of trainings attended, all held in 城关镇.
ATTENDED = [
    ("甲", date(2025, 5, 1), 2),
    ("甲", date(2026, 2, 1), 2),  # before the move: counts for 河西街道, 2026's town
    ("乙", date(2026, 5, 1), 2),
    ("乙", date(2026, 6, 1), 2),
    ("丙", date(2026, 5, 1), 2),
    ("丁", date(2027, 5, 1), 2),
    ("戊", date(2027, 5, 1), 2),
]
# Town targets (percent, hours needed) and the district's own targets.
TARGETS = {2026: {"城关镇": (80, 4), "河西街道": (50, None)}, 2027: {"东湖镇": (100, None)}}
DISTRICT_TARGETS = {2026: 60}


def _expected(year: int) -> tuple[dict[str, tuple[int, int]], int | None]:
    """Per town (cadres, trained) and the district gap, worked out from the tables above."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    starts = sorted(ROSTERS)
    town_of: dict[str, str] = {}
    for name in PHONES:
        # The periods: each roster from its date to the next roster's (or leaving).
        served = []
        for n, start in enumerate(starts):
            if name not in ROSTERS[start]:
                continue
            end = starts[n + 1] if n + 1 < len(starts) else None
            if name in LEFT and (end is None or LEFT[name] < end):
                end = LEFT[name]
            served.append((start, end, ROSTERS[start][name][0]))
        in_year = [s for s in served if s[0] <= last and (s[1] is None or s[1] > first)]
        if in_year:
            town_of[name] = max(in_year)[2]  # the latest period in the year
    figures = {town: [0, 0] for town in ("城关镇", "河西街道", "东湖镇")}
    for name, town in town_of.items():
        hours = [h for who, day, h in ATTENDED if who == name and day.year == year]
        needed = TARGETS.get(year, {}).get(town, (None, None))[1]
        trained = bool(hours) and (needed is None or sum(hours) >= needed)
        figures[town][0] += 1
        figures[town][1] += trained
    cadres = sum(c for c, _t in figures.values())
    trained_total = sum(t for _c, t in figures.values())
    if year in DISTRICT_TARGETS:
        asked = DISTRICT_TARGETS[year] * cadres
    else:
        targets = TARGETS.get(year, {})
        asked = sum(targets[t][0] * figures[t][0] for t in targets) if targets else None
    gap = None if asked is None else max(math.ceil(asked / 100) - trained_total, 0)
    return {town: (c, t) for town, (c, t) in figures.items()}, gap


def _actual(year: int) -> tuple[dict[str, tuple[int, int]], int | None]:
    report = coverage_by_town(year)
    return {t.name: (t.cadres, t.trained) for t in report.towns}, report.gap


def _set_targets(towns) -> None:
    for year, targets in TARGETS.items():
        for town in towns:
            if town.name in targets:
                percent, hours = targets[town.name]
                needed = None if hours is None else Decimal(hours)
                set_target(town.id, year, Decimal(percent), needed)
    for year, percent in DISTRICT_TARGETS.items():
        set_district_target(year, Decimal(percent))
    db.session.commit()


def _hold_trainings(make, town) -> None:
    for day in sorted({day for _who, day, _h in ATTENDED}):
        course = training(make, town, [(day.year, day.month, day.day)])
        for who, when, _hours in ATTENDED:
            if when == day:
                attend(course, PHONES[who], name=who)


def test_coverage_after_two_yearly_roster_updates_equals_a_computation_by_hand(make, towns):
    _set_targets(towns)
    _hold_trainings(make, towns[0])
    seen: dict[int, object] = {}
    for on, roster in ROSTERS.items():
        rows = [(name, "委员", town, place, PHONES[name]) for name, (town, place) in roster.items()]
        import_year(rows, on)
        for name, left_on in LEFT.items():
            if on.year == left_on.year:
                person = db.session.scalar(select(Cadre).where(Cadre.phone == PHONES[name]))
                mark_cadre_left(person, left_on)
                db.session.commit()
        # Earlier years' figures do not move when a later roster comes in.
        for year, figures in seen.items():
            assert _actual(year) == figures, year
        seen[on.year] = _actual(on.year)

    for year in (2025, 2026, 2027):
        assert _actual(year) == _expected(year), year
    # The tables do exercise the rules: a move, a leave, a threshold, a district target.
    assert _expected(2026) == (
        {"城关镇": (2, 1), "河西街道": (2, 2), "东湖镇": (1, 0)},
        math.ceil(60 * 5 / 100) - 3,
    )
    assert _expected(2027)[0] == {"城关镇": (1, 0), "河西街道": (2, 1), "东湖镇": (2, 1)}
