"""Demo data for ``flask seed-demo``. Idempotent: running it twice changes nothing."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from . import signals
from .accounts.services import create_user
from .extensions import db
from .i18n import LOCAL_TZ
from .models import (
    TOWN_ORDER,
    Activity,
    ActivityKind,
    ActivitySession,
    ActivityStatus,
    Audience,
    Cadre,
    Campaign,
    CheckIn,
    CoverageTarget,
    Department,
    Town,
    User,
    Village,
)
from .notifications import outbox
from .registration.services import (
    AlreadyRegistered,
    RegistrationRefused,
    RegistrationRequest,
    register_for_activity,
)
from .training.roster import parse_roster
from .training.services import check_roster, import_roster

# The eight towns of ../shared/data/cadres_sample.xlsx, with their village counts.
TOWNS = [
    ("chengguan", "城关镇", "城关", 6),
    ("donghu", "东湖镇", "东湖", 5),
    ("nanling", "南岭镇", "南岭", 9),
    ("liulin", "柳林街道", "柳林", 8),
    ("hexi", "河西街道", "河西", 6),
    ("baisha", "白沙乡", "白沙", 9),
    ("shiqiao", "石桥镇", "石桥", 8),
    ("qingshan", "青山镇", "青山", 9),
]
NUMERALS = "一二三四五六七八九十"
TRAINING_OFFSETS = (-60, -35, -20, -7, 3, 10, 20, 40)
DEPARTMENTS = [
    ("kjj", "区科技局", ""),
    ("kx", "区科协", ""),
    ("nyncj", "区农业农村局", "区农业局"),
    ("rsj", "区人力资源和社会保障局", "区劳动和社会保障局"),
]
DEMO_PASSWORD = "sciweek-demo"  # noqa: S105 - documented demo log-in, never for production
USERS = [
    ("admin", "admin", None, None, "管理员"),
    ("organizer", "organizer", "kjj", None, "科技局组织者"),
    ("organizer-kx", "organizer", "kx", None, "科协组织者"),
    ("coordinator", "coordinator", None, "chengguan", "城关镇联络员"),
    ("checker", "checker", None, None, "志愿者"),
]

TOPICS = {
    "outreach": [
        ("果树春季修剪技术现场指导", "农技专家现场讲解修剪要点，发放技术资料。"),
        ("科技下乡大集：农技咨询与科普展板", "农技、医疗、法律专家现场咨询。"),
        ("稻田综合种养技术讲座", "稻渔共作的技术与效益。"),
        ("电商助农：手机直播带货入门", "手把手教村民用手机开店直播。"),
        ("食用菌栽培技术示范", "大棚香菇栽培示范与答疑。"),
        ("防范电信诈骗科普宣传", "识别常见骗局，守好钱袋子。"),
        ("畜禽养殖疫病防控讲座", "生猪与家禽常见病的防控。"),
        ("科普大篷车进村", "互动展品与科学实验表演。"),
    ],
    "science_day": [
        ("科普日主场：走进人工智能", "机器人、无人机互动体验。"),
        ("青少年科学实验秀", "液氮、静电与声光实验。"),
        ("应急科普：地震与消防演练", "学习逃生与自救技能。"),
        ("健康科普讲座：慢病防治", "高血压、糖尿病的日常管理。"),
        ("天文观测之夜", "带望远镜看月亮和土星。"),
        ("科普图书漂流", "好书交换与阅读分享。"),
        ("气象科普开放日", "参观气象站，了解天气预报如何制作。"),
        ("食品安全科普展", "识别添加剂与保质期的学问。"),
    ],
    "st_week": [
        ("科技活动周开幕式暨成果展", "全区科技成果集中展示。"),
        ("实验室开放日", "走进企业研发中心。"),
        ("院士专家报告会", "科技前沿与乡村振兴。"),
        ("科技创新成果路演", "企业与高校成果对接。"),
        ("智慧农业装备展示", "植保无人机、智能灌溉现场演示。"),
        ("节水节能科普展", "家庭节水节能小窍门。"),
        ("青少年编程体验营", "用积木编程控制小机器人。"),
        ("专利与知识产权咨询日", "企业专利申请与保护咨询。"),
    ],
    "training": [
        ("农村基层干部科普能力培训班（第一期）", "面向村两委干部的科普知识培训。"),
        ("农村基层干部科普能力培训班（第二期）", "面向村两委干部的科普知识培训。"),
        ("乡村振兴与数字乡村专题培训", "数字乡村建设政策与案例。"),
        ("农村实用技术骨干培训", "种养技术与农产品质量安全。"),
        ("基层干部应急管理科普培训", "防汛、防火与地质灾害应对。"),
        ("农村人居环境整治技术培训", "垃圾分类与污水处理技术。"),
        ("科普信息员培训", "科普中国 App 与信息发布。"),
        ("基层干部网络安全知识培训", "个人信息保护与网络安全。"),
    ],
}


def _town_villages() -> list[tuple[str, str, list[str]]]:
    return [
        (code, name, [f"{prefix}{NUMERALS[i]}村" for i in range(count)])
        for code, name, prefix, count in TOWNS
    ]


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=LOCAL_TZ)


# Which departments organize each kind, in turn.
DEPARTMENT_CYCLE = {
    "outreach": ["kjj", "nyncj", "kx"],
    "science_day": ["kx", "kjj"],
    "st_week": ["kjj", "kx"],
    "training": ["kx", "rsj", "nyncj", "kjj"],
}
# Spread activities from six weeks ago to two months ahead; campaign activities sit inside
# their campaign's dates.
ACTIVITY_OFFSETS = [-40, -21, -9, -2, 0, 1, 2, 3, 5, 7, 9, 12, 15, 20, 26, 33, 45, 60]
CAPACITIES = [20, 50, 80, None, 30, 200]


def seed_demo(today: date | None = None) -> str:
    """Create what is missing of the demo data set; return a one-line summary.

    In order: towns and villages, departments, campaigns, users, activities, then
    registrations and the cadre roster with attendance.
    """
    today = today or datetime.now(LOCAL_TZ).date()
    created = {"towns": 0, "villages": 0, "departments": 0, "activities": 0, "users": 0}
    towns = _seed_towns(created)
    departments = _seed_departments(created)
    db.session.flush()
    campaigns = {
        "st_week": _campaign("2026年科技活动周", "st_week", date(2026, 5, 16), date(2026, 5, 23)),
        "science_day": _campaign(
            "2026年全国科普日", "science_day", date(2026, 9, 1), date(2026, 9, 30)
        ),
    }
    created["users"] = _seed_users()
    db.session.flush()
    created["activities"] = _seed_activities(today, list(towns.values()), departments, campaigns)
    db.session.flush()
    with outbox.muted():  # demo people are not told anything
        created["registrations"] = _seed_registrations(today)
    created["cadres"], created["check-ins"] = _seed_training(today)
    # Users, activities, sessions and check-ins written: the scan caches forget them.
    signals.door_access_changed.send(seed_demo)
    signals.checkins_changed.send(seed_demo)
    return "Demo data: " + ", ".join(f"{v} {k} added" for k, v in created.items())


def _seed_towns(created: dict[str, int]) -> dict[str, Town]:
    """The eight towns with their villages, by code; counts what was added in ``created``."""
    towns: dict[str, Town] = {}
    for code, name, village_names in _town_villages():
        town = db.session.scalar(select(Town).where(Town.code == code))
        if town is None:
            town = Town(code=code, name=name)
            db.session.add(town)
            created["towns"] += 1
        existing = {v.name for v in town.villages}
        for village_name in village_names:
            if village_name not in existing:
                town.villages.append(Village(name=village_name))
                created["villages"] += 1
        towns[code] = town
    return towns


def _seed_departments(created: dict[str, int]) -> dict[str, Department]:
    """The four organizing departments, by code."""
    departments: dict[str, Department] = {}
    for code, name, former in DEPARTMENTS:
        department = db.session.scalar(select(Department).where(Department.code == code))
        if department is None:
            department = Department(code=code, name=name, former_names=former)
            db.session.add(department)
            created["departments"] += 1
        departments[code] = department
    return departments


def _seed_users() -> int:
    """The demo log-ins of README; return how many were added."""
    added = 0
    for username, role, dept, town, name in USERS:
        if db.session.scalar(select(User.id).where(User.username == username)) is None:
            create_user(
                username,
                role,
                DEMO_PASSWORD,
                department_code=dept,
                town_code=town,
                display_name=name,
            )
            added += 1
    return added


def _seed_activities(
    today: date,
    towns: list[Town],
    departments: dict[str, Department],
    campaigns: dict[str, Campaign],
) -> int:
    """Eight activities of each kind around ``today`` (titles not there yet); the checker is
    assigned to the first two of each kind. Return how many were added."""
    added = 0
    index = 0
    checker = db.session.scalar(select(User).where(User.username == "checker"))
    for kind, topics in TOPICS.items():
        for number, (title, description) in enumerate(topics):
            index += 1
            if db.session.scalar(select(Activity.id).where(Activity.title == title)):
                continue
            town = towns[index % len(towns)]
            campaign, day = _campaign_and_day(kind, number, index, campaigns.get(kind), today)
            activity = _demo_activity(kind, number, index, title, description, town, day)
            activity.campaign = campaign
            activity.departments = [
                departments[c] for c in DEPARTMENT_CYCLE[kind][: 1 + number % 2]
            ]
            _set_demo_status(activity, kind, number, today)
            db.session.add(activity)
            if checker is not None and number < 2:
                checker.assigned_activities.append(activity)
            added += 1
    return added


def _campaign_and_day(
    kind: str, number: int, index: int, campaign: Campaign | None, today: date
) -> tuple[Campaign | None, date]:
    """Every other activity of a campaign's kind sits in the campaign; the rest around today."""
    if campaign is not None and number % 2 == 0:
        return campaign, campaign.starts_on + timedelta(days=number % 7)
    if kind == "training":
        # Half the trainings are behind us, so coverage has something to count.
        return None, today + timedelta(days=TRAINING_OFFSETS[number % len(TRAINING_OFFSETS)])
    return None, today + timedelta(days=ACTIVITY_OFFSETS[index % len(ACTIVITY_OFFSETS)])


def _demo_activity(
    kind: str, number: int, index: int, title: str, description: str, town: Town, day: date
) -> Activity:
    """A published activity on ``day``: trainings in a village hall with one to three
    sessions of 2.5 credit hours, the rest with one day-long session."""
    village = town.villages[number % len(town.villages)]
    in_village = kind in ("outreach", "training")
    activity = Activity(
        kind=kind,
        title=title,
        description=description,
        town=town,
        village=village if in_village else None,
        venue=f"{village.name}村委会文化礼堂" if in_village else f"{town.name}文化中心",
        audience=Audience.CADRES if kind == "training" else Audience.PUBLIC,
        capacity=CAPACITIES[index % len(CAPACITIES)],
        waitlist_enabled=index % 4 != 0,
        status=ActivityStatus.PUBLISHED,
        published_at=_at(day - timedelta(days=14), 9),
        registration_opens_at=_at(day - timedelta(days=14), 9),
        registration_closes_at=_at(day, 8),
    )
    if kind == "training":
        activity.sessions = [
            ActivitySession(
                starts_at=_at(day + timedelta(days=d), 9),
                ends_at=_at(day + timedelta(days=d), 11, 30),
                credit_hours=Decimal("2.5"),
                note=f"第{d + 1}场",
            )
            for d in range(1 + number % 3)
        ]
        # Trainings are for the cadres of their town; every fourth for the whole district.
        if number % 4 == 0:
            activity.roster_whole_district = True
        else:
            activity.roster_towns = [town]
    else:
        activity.sessions = [ActivitySession(starts_at=_at(day, 9, 30), ends_at=_at(day, 16))]
    return activity


def _set_demo_status(activity: Activity, kind: str, number: int, today: date) -> None:
    """One outreach activity is cancelled and one training is still a draft."""
    if number == 5 and kind == "outreach":
        activity.status = ActivityStatus.CANCELLED
        activity.cancel_reason = "因天气原因取消，改期另行通知。"
        activity.cancelled_at = _at(today, 8)
        activity.sequence = 1
        for session in activity.sessions:  # what cancelling does: the sessions to come
            if session.starts_at > activity.cancelled_at:
                session.cancelled_at = activity.cancelled_at
    if number == 7 and kind == "training":
        activity.status = ActivityStatus.DRAFT
        activity.published_at = None


def _campaign(name: str, kind: str, starts: date, ends: date) -> Campaign:
    campaign = db.session.scalar(select(Campaign).where(Campaign.name == name))
    if campaign is None:
        campaign = Campaign(name=name, kind=kind, starts_on=starts, ends_on=ends)
        db.session.add(campaign)
        db.session.flush()
    return campaign


DEMO_NAMES = [
    "王芳",
    "李娜",
    "张伟",
    "刘洋",
    "陈静",
    "杨磊",
    "赵敏",
    "黄强",
    "周杰",
    "吴霞",
    "徐刚",
    "孙丽",
    "马超",
    "朱琳",
    "胡军",
    "郭燕",
]


def _seed_registrations(today: date) -> int:
    """Upcoming activities open for registration: one nearly full, one with a waitlist."""
    db.session.flush()  # registration reads the activities with its own SQL
    upcoming = [
        a
        for a in db.session.scalars(
            select(Activity)
            .where(Activity.status == ActivityStatus.PUBLISHED)
            .order_by(Activity.id)
        )
        if a.starts_at
        and a.starts_at.astimezone(LOCAL_TZ).date() > today
        and (a.registration_closes_at is None or a.registration_closes_at > _at(today, 0))
    ]
    plans: list[tuple[int, int, int]] = []  # (activity id, capacity, registrations)
    with_capacity = [a for a in upcoming if a.capacity]
    if with_capacity:
        plans.append((with_capacity[0].id, 20, 18))  # nearly full
    if len(with_capacity) > 1:
        plans.append((with_capacity[1].id, 20, 24))  # full, four waitlisted
    plans += [(a.id, a.capacity or 0, 3) for a in upcoming[:6] if a.id not in {p[0] for p in plans}]
    added = 0
    for activity_id, capacity, count in plans:
        activity = db.session.get(Activity, activity_id)
        assert activity is not None
        if capacity and activity.capacity != capacity and activity.confirmed_count == 0:
            activity.capacity = capacity
            activity.waitlist_enabled = True
            db.session.flush()
        for n in range(count):
            request = RegistrationRequest(
                name=DEMO_NAMES[(n + activity_id) % len(DEMO_NAMES)],
                phone=f"1990{activity_id:03d}{n:04d}",
            )
            try:
                register_for_activity(activity_id, request)
                added += 1
            except AlreadyRegistered:
                pass
            except RegistrationRefused:
                break
    return added


DEMO_ROSTER = Path(__file__).resolve().parent / "demo_data" / "cadres_sample.xlsx"
DEMO_TARGETS = (90, 85, 80, 75, 70, 80, 85, 60)


def _seed_training(today: date) -> tuple[int, int]:
    """The sample roster, targets for this year, and attendance at past trainings.

    Only on a district without cadres, so a re-run (or a roster imported by hand)
    is left alone.
    """
    if db.session.scalar(select(Cadre.id).limit(1)) is not None:
        return 0, 0
    check = check_roster(parse_roster(DEMO_ROSTER.name, DEMO_ROSTER.read_bytes()))
    result = import_roster(check, active_from=date(today.year, 1, 1), only_valid=True)
    towns = db.session.scalars(select(Town).order_by(*TOWN_ORDER)).all()
    for town, percent in zip(towns, DEMO_TARGETS, strict=False):
        if (
            db.session.scalar(
                select(CoverageTarget.id).where(
                    CoverageTarget.town_id == town.id, CoverageTarget.year == today.year
                )
            )
            is None
        ):
            db.session.add(
                CoverageTarget(town_id=town.id, year=today.year, target_percent=Decimal(percent))
            )
    db.session.flush()
    now = datetime.now(LOCAL_TZ)
    past_trainings = [
        a
        for a in db.session.scalars(
            select(Activity).where(
                Activity.kind == ActivityKind.TRAINING, Activity.status == ActivityStatus.PUBLISHED
            )
        )
        if a.ends_at is not None and a.ends_at < now and a.starts_at.year == today.year
    ]
    for activity in past_trainings:
        activity.capacity = None  # they are over: everyone who came had a place
    db.session.flush()
    cadres = db.session.scalars(select(Cadre).order_by(Cadre.id)).all()
    checkins = 0
    for index, cadre in enumerate(cadres):
        # Towns differ: some near their target, some behind.
        if not past_trainings or index % 10 >= 4 + (cadre.town_id % 5):
            continue
        activity = past_trainings[index % len(past_trainings)]
        issued = register_for_activity(
            activity.id, RegistrationRequest(name=cadre.name, phone=cadre.phone), walk_in=True
        )
        for session in activity.sessions:
            db.session.add(
                CheckIn(
                    registration_id=issued.registration_id,
                    session_id=session.id,
                    checked_in_at=session.starts_at,
                    method="demo",
                )
            )
            checkins += 1
        db.session.flush()
    return result.created, checkins
