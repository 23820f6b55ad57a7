"""The back-office home's dashboard (manage/dashboard.py): scope by role, Shanghai days,
counts that agree with registrations, check-ins and the coverage page, bounded queries."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from sciweek.checkin.services import session_counts
from sciweek.extensions import db
from sciweek.i18n import LOCAL_TZ, local_today
from sciweek.manage.dashboard import build_dashboard
from sciweek.models import (
    Activity,
    ActivitySummary,
    CheckIn,
    RegistrationStatus,
    utcnow,
)
from sciweek.registration.services import cancel_registration, registrant_counts
from sciweek.training.coverage import coverage_by_town, untrained_cadres
from sciweek.training.services import set_target

from .checkin_support import register_person
from .query_count import count_queries
from .training_helpers import attend, cadre, training

# "Now" for the service tests: 07:00 in Shanghai, which is 23:00 of the day before in UTC,
# a month ahead (registering is still open then, whatever day the tests run).
DAY = local_today() + timedelta(days=30)


def at(days: int, hour: int, minute: int = 0) -> datetime:
    """Shanghai wall-clock time ``days`` after DAY."""
    d = DAY + timedelta(days=days)
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=LOCAL_TZ)


NOW = at(0, 7).astimezone(UTC)  # as the route passes it (utcnow())


def session(days: int, hour: int, minutes: int = 60, minute: int = 0):
    starts = at(days, hour, minute)
    return (starts, starts + timedelta(minutes=minutes))


def titles(sessions) -> list[str]:
    return [s.title for s in sessions]


def test_today_is_the_shanghai_date_and_the_week_is_the_next_seven_days(make):
    admin = make.user("admin")
    make.activity(title="凌晨", sessions=[session(0, 0, minute=30)])
    # 23:30 in Shanghai today is 15:30 UTC, a UTC date after "now" (23:00 UTC yesterday).
    make.activity(title="深夜", sessions=[session(0, 23, minutes=20, minute=30)])
    # Yesterday 23:00–23:30 in Shanghai: the same UTC date as "now", but not today.
    make.activity(title="昨晚", sessions=[session(-1, 23, minutes=30)])
    make.activity(title="明天", sessions=[session(1, 9)])
    make.activity(title="第七天", sessions=[session(7, 9)])
    make.activity(title="第八天", sessions=[session(8, 9)])
    assert NOW.astimezone(UTC).date() == DAY - timedelta(days=1)

    board = build_dashboard(admin, NOW)
    assert board.today == DAY
    assert titles(board.sessions_today) == ["凌晨", "深夜"]
    assert titles(board.sessions_week) == ["明天", "第七天"]


def test_cancelled_and_draft_activities_are_not_listed(make):
    admin = make.user("admin")
    make.activity(title="已取消", status="cancelled", sessions=[session(0, 9)])
    make.activity(title="草稿", status="draft", sessions=[session(0, 9)])
    make.activity(title="正常", sessions=[session(0, 9)])
    assert titles(build_dashboard(admin, NOW).sessions_today) == ["正常"]


def test_figures_equal_what_registrations_and_check_ins_say(make):
    organizer = make.user("organizer")
    activity = make.activity(
        title="讲座",
        departments=[organizer.department],
        capacity=3,
        waitlist_enabled=True,
        sessions=[session(0, 9), session(1, 9)],
    )
    people = [
        register_person(activity, f"人{n}", f"1380013800{n}") for n in range(6)
    ]  # 3 confirmed, 3 waitlisted
    cancel_registration(people[5].id)  # a waitlisted one leaves
    db.session.commit()
    first, second = activity.sessions
    db.session.add_all(
        [
            CheckIn(registration_id=people[0].id, session_id=first.id),
            CheckIn(registration_id=people[1].id, session_id=first.id),
            CheckIn(registration_id=people[2].id, session_id=first.id, undone_at=utcnow()),
            CheckIn(registration_id=people[0].id, session_id=second.id),
        ]
    )
    db.session.commit()

    board = build_dashboard(organizer, NOW)
    (today,) = board.sessions_today
    (tomorrow,) = board.sessions_week
    counts = registrant_counts(activity.id)
    assert (today.registered, today.waitlisted) == (3, 2)
    assert today.registered == counts[RegistrationStatus.CONFIRMED]
    assert today.waitlisted == counts[RegistrationStatus.WAITLISTED]
    assert today.capacity == activity.capacity == 3
    assert today.checked_in == session_counts(activity, first.id)["checked_in"] == 2
    assert tomorrow.checked_in == session_counts(activity, second.id)["checked_in"] == 1
    assert [(w.title, w.registered, w.waitlisted) for w in board.waitlists] == [("讲座", 3, 2)]


def _scenario(make):
    """Two departments, two towns, a coordinator of the first, a checker with two
    assignments; each activity's title says who should see it."""
    dept_a, dept_b = make.department(), make.department()
    town_1, town_2 = make.town(), make.town()
    acts = {
        "a_outreach": make.activity(departments=[dept_a], town=town_2, sessions=[session(0, 9)]),
        "b_outreach_in_1": make.activity(
            departments=[dept_b], town=town_1, sessions=[session(0, 10)]
        ),
        "b_training_in_1": make.activity(
            kind="training", departments=[dept_b], town=town_1, sessions=[session(0, 14)]
        ),
        "b_training_in_2_for_1": make.activity(
            kind="training",
            departments=[dept_b],
            town=town_2,
            roster_towns=[town_1],
            sessions=[session(1, 9)],
        ),
        "b_training_in_2": make.activity(
            kind="training", departments=[dept_b], town=town_2, sessions=[session(2, 9)]
        ),
    }
    for title, activity in acts.items():
        activity.title = title
    users = {
        "admin": make.user("admin"),
        "organizer": make.user("organizer", department=dept_a),
        "coordinator": make.user("coordinator", town=town_1),
        "checker": make.user("checker"),
    }
    users["checker"].assigned_activities = [acts["a_outreach"], acts["b_training_in_2"]]
    db.session.commit()
    return acts, users


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (
            "admin",
            {
                "a_outreach",
                "b_outreach_in_1",
                "b_training_in_1",
                "b_training_in_2_for_1",
                "b_training_in_2",
            },
        ),
        ("organizer", {"a_outreach"}),
        ("coordinator", {"b_training_in_1", "b_training_in_2_for_1"}),
        # Assigned to b_training_in_2 too, but that is not today.
        ("checker", {"a_outreach"}),
    ],
)
def test_each_role_sees_exactly_its_scope(make, role, expected):
    _acts, users = _scenario(make)
    board = build_dashboard(users[role], NOW)
    assert set(titles(board.sessions_today + board.sessions_week)) == expected
    if role in ("admin", "organizer"):
        assert board.waitlists is not None
        assert board.towns_below_target is not None
        assert board.own_town is None
    else:
        assert board.waitlists is None
        assert board.missing_summaries is None
        assert board.towns_below_target is None
    if role == "coordinator":
        assert board.own_town is not None
        assert board.own_town.town_id == users["coordinator"].town_id
        invited = {s.title: s.invites_roster for s in board.sessions_week}
        assert invited == {"b_training_in_2_for_1": True}


def test_an_organizer_does_not_see_another_departments_session_on_the_page(client, make, auth):
    acts, users = _scenario(make)
    for activity in acts.values():  # today, by the real clock
        starts = utcnow() + timedelta(minutes=5)
        activity.sessions[0].starts_at = starts
        activity.sessions[0].ends_at = starts + timedelta(hours=1)
    db.session.commit()
    auth.login(users["organizer"])
    page = client.get("/manage/").get_data(as_text=True)
    assert "a_outreach" in page
    assert "b_outreach_in_1" not in page
    auth.logout()
    auth.login(users["coordinator"])
    page = client.get("/manage/").get_data(as_text=True)
    assert "b_training_in_1" in page
    assert "b_training_in_2_for_1" in page
    assert "a_outreach" not in page
    assert "b_training_in_2<" not in page


def test_an_activity_without_a_summary_a_week_after_it_ended_is_listed_until_one_exists(make):
    organizer = make.user("organizer")
    mine = [organizer.department]
    late = make.activity(title="八天前", departments=mine, sessions=[session(-8, 9)])
    make.activity(title="六天前", departments=mine, sessions=[session(-6, 9)])
    make.activity(title="取消了", departments=mine, status="cancelled", sessions=[session(-8, 9)])
    make.activity(title="别的部门", sessions=[session(-8, 9)])
    # Its first session long ago, its last one yesterday: not yet due.
    make.activity(title="两场", departments=mine, sessions=[session(-20, 9), session(-1, 9)])

    board = build_dashboard(organizer, NOW)
    assert [m.title for m in board.missing_summaries] == ["八天前"]
    assert board.missing_summaries_total == 1
    assert "别的部门" in [
        m.title for m in build_dashboard(make.user("admin"), NOW).missing_summaries
    ]

    db.session.add(ActivitySummary(activity_id=late.id, people_reached=120))
    db.session.commit()
    board = build_dashboard(organizer, NOW)
    assert board.missing_summaries == []
    assert board.missing_summaries_total == 0


def test_a_missing_summary_links_to_the_summary_page(client, make, auth):
    organizer = make.user("organizer")
    ended = utcnow() - timedelta(days=8)
    activity = make.activity(
        title="没写总结",
        departments=[organizer.department],
        sessions=[(ended, ended + timedelta(hours=1))],
    )
    auth.login(organizer)
    page = client.get("/manage/").get_data(as_text=True)
    section = page[page.index('id="missing-summaries"') :]
    section = section[: section.index("</section>")]
    assert f'href="/manage/activities/{activity.id}/summary">没写总结' in section


def _coverage_towns(make, year):
    """Behind: 4 cadres, 1 trained, target 80 % (gap 3). Close: 10 cadres, 7 trained, target
    75 % (gap 1). Reached: 2 of 2 at 50 %. No target: 1 cadre, none trained."""
    towns = {}
    spec = {
        "behind": (4, 1, "80"),
        "close": (10, 7, "75"),
        "reached": (2, 2, "50"),
        "none": (1, 0, None),
    }
    for name, (cadres, trained, target) in spec.items():
        town = make.town(name=f"{name}镇", code=name, villages=["一村"])
        people = [cadre(town) for _ in range(cadres)]
        held = training(make, town, [(year, 1, 10)])
        for person in people[:trained]:
            attend(held, person.phone)
        if target is not None:
            set_target(town.id, year, Decimal(target), None)
        towns[name] = town
    db.session.commit()
    return towns


def test_towns_below_target_with_the_coverage_pages_gap(make, runner):
    towns = _coverage_towns(make, NOW.year)
    board = build_dashboard(make.user("organizer"), NOW)
    assert [(t.code, t.gap, t.status) for t in board.towns_below_target] == [
        ("behind", 3, "behind"),
        ("close", 1, "close"),
    ]
    result = runner.invoke(args=["coverage", "--year", str(NOW.year), "--format", "json"])
    assert result.exit_code == 0, result.output
    gaps = {t["code"]: t["gap"] for t in json.loads(result.output)["towns"]}
    assert {t.code: t.gap for t in board.towns_below_target} == {
        code: gaps[code] for code in ("behind", "close")
    }
    assert towns["behind"].id == board.towns_below_target[0].town_id


def test_a_coordinator_sees_their_towns_coverage_and_untrained_count(client, make, auth):
    year = local_today().year
    towns = _coverage_towns(make, year)
    coordinator = make.user("coordinator", town=towns["behind"])
    board = build_dashboard(coordinator, utcnow())
    own = board.own_town
    expected = coverage_by_town(year, [towns["behind"].id]).towns[0]
    assert (own.trained, own.cadres, own.target_percent, own.gap) == (1, 4, Decimal(80), 3)
    assert (own.trained, own.cadres, own.gap) == (expected.trained, expected.cadres, expected.gap)
    assert own.untrained == len(untrained_cadres(towns["behind"].id, year)) == 3

    auth.login(coordinator)
    page = client.get("/manage/").get_data(as_text=True)
    assert "未训干部 3 人" in page
    assert f'href="/manage/training/towns/{towns["behind"].id}?year={year}"' in page
    assert "close镇" not in page  # the district's list of towns is not theirs


def test_a_checker_gets_a_door_link_for_todays_assigned_session(client, make, auth):
    checker = make.user("checker")
    starts = utcnow() + timedelta(minutes=1)
    activity = make.activity(title="门口", sessions=[(starts, starts + timedelta(hours=1))])
    checker.assigned_activities = [activity]
    db.session.commit()
    auth.login(checker)
    page = client.get("/manage/").get_data(as_text=True)
    session_id = activity.sessions[0].id
    assert f'href="/manage/activities/{activity.id}/scan?session={session_id}"' in page


def _many_sessions(make, department, town, n, start):
    """``n`` activities with two sessions each in the week from ``start`` (one registrant
    each), and ``n`` that ended without a summary."""
    for i in range(n):
        first = start + timedelta(days=i % 7, minutes=i)
        activity = make.activity(
            departments=[department],
            town=town,
            kind="training" if i % 2 else "outreach",
            capacity=5,
            sessions=[
                (first, first + timedelta(hours=1)),
                (first + timedelta(days=1), first + timedelta(days=1, hours=1)),
            ],
        )
        register_person(activity, "某人", f"137{start.day:02d}{n:02d}{i:04d}")
        ended = start - timedelta(days=10 + i)
        make.activity(departments=[department], sessions=[(ended, ended + timedelta(hours=1))])


def _assign_all(checker):
    checker.assigned_activities = list(db.session.scalars(select(Activity)))
    db.session.commit()


@pytest.mark.parametrize("role", ["admin", "organizer", "coordinator", "checker"])
def test_the_number_of_queries_does_not_grow_with_sessions(make, role):
    department, town = make.department(), make.town()
    user = make.user(
        role,
        department=department if role == "organizer" else None,
        town=town if role == "coordinator" else None,
    )
    _coverage_towns(make, NOW.year)
    _many_sessions(make, department, town, 3, NOW + timedelta(minutes=30))
    if role == "checker":
        _assign_all(user)
    db.session.expire_all()
    with count_queries() as few:
        small = build_dashboard(user, NOW)
    _many_sessions(make, department, town, 30, NOW + timedelta(minutes=40))
    if role == "checker":
        _assign_all(user)
    db.session.expire_all()
    with count_queries() as many:
        large = build_dashboard(user, NOW)
    shown = len(large.sessions_today + large.sessions_week)
    assert shown > len(small.sessions_today + small.sessions_week)
    if role in ("admin", "organizer"):  # the admin sees the four trainings of the towns too
        assert large.missing_summaries_total == 33 + (4 if role == "admin" else 0)
    assert len(many) == len(few), many
    print(role, len(many), "queries for", shown, "sessions")
    assert len(many) <= 12


def test_the_page_sends_as_many_queries_for_many_sessions_as_for_few(client, make, auth):
    organizer = make.user("organizer")
    town = make.town()
    auth.login(organizer)
    _many_sessions(make, organizer.department, town, 2, utcnow() + timedelta(minutes=5))
    client.get("/manage/")
    with count_queries() as few:
        page = client.get("/manage/").get_data(as_text=True)
    assert page.count('class="board-session"') == 4
    _many_sessions(make, organizer.department, town, 20, utcnow() + timedelta(minutes=6))
    with count_queries() as many:
        page = client.get("/manage/").get_data(as_text=True)
    assert page.count('class="board-session"') > 20
    assert len(many) == len(few), many


CHINESE = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def test_the_dashboard_in_english_has_no_chinese_left(client, make, auth):
    # Data in ASCII: any Chinese character or full-width mark on the page comes from the code.
    client.get("/manage/?lang=en")
    town = make.town(name="Qingshan", code="qs", villages=["East"])
    for person in [cadre(town, name="Wang"), cadre(town, name="Li")]:
        assert person.id
    set_target(town.id, local_today().year, Decimal("50"), None)
    department = make.department(name="Science Bureau")
    soon = utcnow() + timedelta(minutes=5)
    for n, days in enumerate((0, 2)):
        activity = make.activity(
            title=f"Pruning class {n}",
            kind="training",
            town=town,
            roster_towns=[town],
            departments=[department],
            venue="Hall",
            capacity=1,
            sessions=[(soon + timedelta(days=days), soon + timedelta(days=days, hours=1))],
        )
        register_person(activity, "Zhang", f"1380013800{n}")
        register_person(activity, "Zhao", f"1390013900{n}")  # waitlisted
    ended = utcnow() - timedelta(days=9)
    make.activity(
        title="Fair", departments=[department], sessions=[(ended, ended + timedelta(hours=2))]
    )
    for user in (make.user("admin"), make.user("coordinator", town=town), make.user("checker")):
        auth.login(user)
        html = client.get("/manage/").get_data(as_text=True)
        text = re.sub(r"<[^>]+>", " ", html[html.index("<main>") :])
        assert CHINESE.findall(text) == [], (user.role, text)
        auth.logout()


def test_a_waitlist_links_to_the_waitlisted_registrants(client, make, auth):
    organizer = make.user("organizer")
    starts = utcnow() + timedelta(days=3)
    activity = make.activity(
        title="满员讲座",
        departments=[organizer.department],
        capacity=1,
        sessions=[(starts, starts + timedelta(hours=1))],
    )
    register_person(activity, "甲", "13800138000")
    register_person(activity, "乙", "13800138001")
    auth.login(organizer)
    page = client.get("/manage/").get_data(as_text=True)
    link = f'href="/manage/activities/{activity.id}/registrations?status=waitlisted">满员讲座'
    assert link in page
    assert "候补 1 人" in page
