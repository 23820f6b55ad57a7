"""A training whose door is for the roster cadres of some towns: towns, cadres, staff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sciweek.extensions import db
from sciweek.identity import id_check_char
from sciweek.models import Activity, Cadre, Town, User, utcnow
from sciweek.training.periods import add_to_roster

from .conftest import Factory


def id_number(first17: str) -> str:
    """A valid ID number (GB 11643-1999) from its first 17 digits."""
    return first17 + id_check_char(first17)


@dataclass
class Door:
    training: Activity
    chengguan: Town
    dongshan: Town
    xihe: Town  # not invited
    zhang: Cadre  # 城关: phone and ID number
    li: Cadre  # 城关: phone, no ID number
    wang: Cadre  # 城关: ID number, no phone
    zhao: Cadre  # 东山: phone and ID number
    qian: Cadre  # 西河 (not invited): phone and ID number
    sun: Cadre  # 城关, left before the training
    organizer: User
    checker: User
    coordinator: User  # 城关
    other_coordinator: User  # 西河


def _cadre(town: Town, village: str, name: str, phone=None, id_no=None, **kw) -> Cadre:
    person = Cadre(
        name=name,
        town_id=town.id,
        village_id=next(v.id for v in town.villages if v.name == village),
        phone=phone,
        id_number=id_no,
        posts="村委会主任",
        active_from=kw.pop("active_from", date(2020, 1, 1)),
        **kw,
    )
    add_to_roster(person)
    return person


def build_door(make: Factory, *, capacity=None, waitlist=True, under_way=True) -> Door:
    """Under way: the session began 10 minutes ago (it is its door's day)."""
    chengguan = make.town(name="城关镇", code="chengguan", villages=["城关一村", "城关二村"])
    dongshan = make.town(name="东山镇", code="dongshan", villages=["东山村"])
    xihe = make.town(name="西河镇", code="xihe", villages=["西河村"])
    start = utcnow() - timedelta(minutes=10) if under_way else utcnow() + timedelta(days=3)
    department = make.department()
    training = make.activity(
        title="农村基层干部科技培训",
        kind="training",
        departments=[department],
        town=chengguan,
        sessions=[(start, start + timedelta(hours=2))],
        capacity=capacity,
        waitlist_enabled=waitlist,
    )
    training.roster_towns = [chengguan, dongshan]
    zhang = _cadre(chengguan, "城关一村", "张建国", "13861721234", id_number("11010519491231002"))
    li = _cadre(chengguan, "城关二村", "李秀英", "13974835678")
    wang = _cadre(chengguan, "城关一村", "王老汉", None, id_number("44052418800101001"))
    zhao = _cadre(dongshan, "东山村", "赵东山", "13752912468", id_number("33010619940404449"))
    qian = _cadre(xihe, "西河村", "钱西河", "13600001357", id_number("33010619730418123"))
    sun = _cadre(
        chengguan,
        "城关二村",
        "孙离任",
        "13500009999",
        active_from=date(2015, 1, 1),
        left_on=date(2020, 6, 1),
    )
    db.session.commit()
    organizer = make.user("organizer", department=department)
    checker = make.user("checker")
    checker.assigned_activities.append(training)
    db.session.commit()
    return Door(
        training=training,
        chengguan=chengguan,
        dongshan=dongshan,
        xihe=xihe,
        zhang=zhang,
        li=li,
        wang=wang,
        zhao=zhao,
        qian=qian,
        sun=sun,
        organizer=organizer,
        checker=checker,
        coordinator=make.user("coordinator", town=chengguan),
        other_coordinator=make.user("coordinator", town=xihe),
    )
