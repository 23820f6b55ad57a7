"""Coverage by the counting rules in DOMAIN.md, computed without HTTP."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import event

from sciweek.extensions import db
from sciweek.i18n import to_local
from sciweek.models import CheckIn, utcnow
from sciweek.training.coverage import coverage_by_town, unmatched_attendees, untrained_cadres
from sciweek.training.periods import move_cadre
from sciweek.training.services import mark_cadre_left, set_district_target, set_target

from .training_helpers import attend, cadre, training


def _town(report, town):
    return next(t for t in report.towns if t.town_id == town.id)


def test_cadre_trained_twice_counts_once(make):
    town = make.town(villages=["一村"])
    a = cadre(town)
    cadre(town)
    course = training(make, town, [(2026, 3, 1), (2026, 4, 1)])
    attend(course, a.phone)
    other = training(make, town, [(2026, 5, 1)])
    attend(other, a.phone)

    t = _town(coverage_by_town(2026), town)
    assert (t.cadres, t.trained) == (2, 1)
    assert t.coverage == 0.5
    assert t.attendances == 3  # 人次: three sessions
    assert t.trainings == 2  # 期数
    assert t.hours == Decimal("6")


def test_cadre_counts_for_own_town_not_host_town(make):
    home = make.town(villages=["家村"])
    host = make.town(villages=["主村"])
    person = cadre(home)
    cadre(host)
    course = training(make, host, [(2026, 6, 1)])
    attend(course, person.phone)

    report = coverage_by_town(2026)
    assert _town(report, home).trained == 1
    assert _town(report, host).trained == 0
    assert _town(report, host).trainings == 1
    assert _town(report, home).trainings == 0


def test_cadre_who_left_in_june_counts_for_that_year_only(make):
    town = make.town(villages=["一村"])
    person = cadre(town, active_from=date(2025, 1, 1))
    mark_cadre_left(person, date(2026, 6, 15))
    db.session.commit()

    assert _town(coverage_by_town(2026), town).cadres == 1
    assert _town(coverage_by_town(2027), town).cadres == 0
    assert db.session.get(type(person), person.id) is not None  # kept, never deleted


def test_cadre_who_joined_counts_from_joining(make):
    town = make.town(villages=["一村"])
    cadre(town, active_from=date(2026, 7, 1))
    assert _town(coverage_by_town(2025), town).cadres == 0
    assert _town(coverage_by_town(2026), town).cadres == 1


def test_district_figure_from_people_not_averaged_percentages(make):
    small = make.town(villages=["小村"])
    big = make.town(villages=["大村"])
    trained_small = cadre(small)
    course = training(make, small, [(2026, 3, 3)])
    attend(course, trained_small.phone)
    for _ in range(9):
        cadre(big)
    report = coverage_by_town(2026)
    # 1 of 10 people trained: 10 %, not the 50 % average of 100 % and 0 %.
    assert report.cadres == 10
    assert report.trained == 1
    assert report.coverage == 0.1


def test_threshold_hours(make):
    town = make.town(villages=["一村"])
    short = cadre(town)
    long = cadre(town)
    course = training(make, town, [(2026, 3, 1), (2026, 3, 2)], hours="2")
    attend(course, short.phone, sessions=course.sessions[:1])
    attend(course, long.phone)
    set_target(town.id, 2026, Decimal("80"), Decimal("4"))
    db.session.commit()

    t = _town(coverage_by_town(2026), town)
    assert t.trained == 1  # 2 h < 4 h; 4 h reaches it
    assert t.target == 0.8
    assert t.gap == 1  # ceil(0.8 × 2) = 2 needed
    assert [c.name for c in untrained_cadres(town.id, 2026)] == [short.name]


def test_default_threshold_is_any_attended_session(make):
    town = make.town(villages=["一村"])
    person = cadre(town)
    course = training(make, town, [(2026, 3, 1)], hours=None)
    attend(course, person.phone)
    set_target(town.id, 2026, Decimal("50"), None)
    db.session.commit()
    assert _town(coverage_by_town(2026), town).trained == 1


def test_only_checked_in_training_sessions_in_the_year_count(make):
    town = make.town(villages=["一村"])
    registered_only = cadre(town)
    undone = cadre(town)
    other_year = cadre(town)
    not_training = cadre(town)
    course = training(make, town, [(2026, 3, 1)])
    attend(course, registered_only.phone, sessions=[])
    reg = attend(course, undone.phone)
    reg.checkins[0].undone_at = reg.checkins[0].checked_in_at
    db.session.commit()
    attend(training(make, town, [(2025, 12, 31)]), other_year.phone)
    outreach = make.activity(kind="outreach", town=town)
    attend(outreach, not_training.phone)
    assert _town(coverage_by_town(2026), town).trained == 0
    assert _town(coverage_by_town(2025), town).trained == 1


def test_attendee_linked_by_hand_counts_and_leaves_unmatched_list(make):
    town = make.town(villages=["一村"])
    person = cadre(town)
    course = training(make, town, [(2026, 3, 1)])
    stranger = attend(course, "13700000001", name="换了号码的人", town_id=town.id)
    assert [a.registration_id for a in unmatched_attendees(2026, town.id)] == [stranger.id]
    assert _town(coverage_by_town(2026), town).trained == 0

    stranger.cadre_id = person.id
    db.session.commit()
    assert unmatched_attendees(2026, town.id) == []
    assert _town(coverage_by_town(2026), town).trained == 1


def test_query_count_does_not_grow_with_towns_or_cadres(make, app):
    def count_queries(year):
        statements = []

        def listener(*args):
            if not args[2].lstrip().upper().startswith("BEGIN"):
                statements.append(args[2])

        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            coverage_by_town(year)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(statements)

    town = make.town(villages=["一村"])
    attend(training(make, town, [(2026, 3, 1)]), cadre(town).phone)
    small = count_queries(2026)
    for _ in range(5):
        other = make.town(villages=["甲村", "乙村"])
        for _ in range(4):
            attend(training(make, other, [(2026, 4, 1)]), cadre(other).phone)
    assert db.session.query(CheckIn).count() == 21
    assert count_queries(2026) == small <= 5


def test_district_target_of_its_own_else_the_towns_over_all_cadres(make):
    with_target = make.town(villages=["一村"])
    without = make.town(villages=["二村"])
    people = [cadre(with_target) for _ in range(4)] + [cadre(without) for _ in range(6)]
    course = training(make, with_target, [(2026, 3, 1)])
    for person in people[:3]:
        attend(course, person.phone)
    set_target(with_target.id, 2026, Decimal("50"), None)
    db.session.commit()

    report = coverage_by_town(2026)
    # No district target: 50 % of the 4 cadres of the town with one, over all 10 cadres;
    # the town without a target asks for nobody.
    assert not report.target_is_own
    assert report.target == 0.2
    assert (report.needed, report.gap, report.town_gaps) == (2, 0, 0)

    set_district_target(2026, Decimal("70"))
    db.session.commit()
    report = coverage_by_town(2026)
    assert report.target_is_own
    assert report.target == 0.7
    # District 差额 = ceil(70 % × 10) − 3 trained; the towns' gaps add up to 0.
    assert (report.needed, report.gap, report.town_gaps) == (7, 4, 0)
    assert report.as_json()["district"] | {"coverage": None} == {
        "cadres": 10, "trained": 3, "coverage": None, "target": 0.7,
        "target_source": "district", "gap": 4, "town_gaps": 0,
    }  # fmt: skip
    assert coverage_by_town(2027).target is None  # a target is for its year

    set_district_target(2026, None)
    db.session.commit()
    assert not coverage_by_town(2026).target_is_own


def test_district_gap_is_not_the_sum_of_town_gaps(make):
    ahead = make.town(villages=["一村"])
    behind = make.town(villages=["二村"])
    course = training(make, ahead, [(2026, 3, 1)])
    for _ in range(3):
        attend(course, cadre(ahead).phone)
    for _ in range(3):
        cadre(behind)
    for town in (ahead, behind):
        set_target(town.id, 2026, Decimal("50"), None)
    db.session.commit()
    report = coverage_by_town(2026)
    # Each town needs ceil(1.5) = 2; the district ceil(50 % × 6) = 3, reached by 3 people.
    assert (_town(report, ahead).gap, _town(report, behind).gap) == (0, 2)
    assert (report.gap, report.town_gaps) == (0, 2)


def test_the_threshold_of_the_town_a_cadre_counts_for_applies_not_the_host_towns(make):
    strict = make.town(villages=["一村"])  # 4 hours needed
    lenient = make.town(villages=["二村"])  # no threshold: any session
    from_strict = cadre(strict)
    from_lenient = cadre(lenient)
    set_target(strict.id, 2026, Decimal("50"), Decimal("4"))
    set_target(lenient.id, 2026, Decimal("50"), None)
    db.session.commit()
    # Each attends one 2-hour session of a training held in the other town.
    attend(training(make, lenient, [(2026, 3, 1)]), from_strict.phone)
    attend(training(make, strict, [(2026, 3, 2)]), from_lenient.phone)

    report = coverage_by_town(2026)
    assert _town(report, strict).trained == 0  # 2 h < its own town's 4 h
    assert _town(report, lenient).trained == 1  # its own town asks for any session
    # Moved to the lenient town in 2026 (after the training): that year its rule applies.
    move_cadre(
        from_strict, town_id=lenient.id, village_id=lenient.villages[0].id, posts="",
        on=date(2026, 6, 1),
    )  # fmt: skip
    db.session.commit()
    report = coverage_by_town(2026)
    assert (_town(report, strict).cadres, _town(report, strict).trained) == (0, 0)
    assert (_town(report, lenient).cadres, _town(report, lenient).trained) == (2, 2)


def test_trainings_count_once_held_so_far_in_the_host_town_and_the_district(make):
    town = make.town(villages=["一村"])
    now = utcnow()
    held = [(now - timedelta(hours=2), now - timedelta(hours=1))]
    coming = [(now + timedelta(hours=1), now + timedelta(hours=2))]
    make.activity(kind="training", town=town, sessions=held)
    make.activity(kind="training", town=town, sessions=coming)  # later today: not yet held
    make.activity(kind="training", town=None, sessions=held)  # a district training
    make.activity(kind="outreach", town=town, sessions=held)  # not a training

    report = coverage_by_town(to_local(now - timedelta(hours=2)).year)
    assert _town(report, town).trainings == 1
    assert report.trainings == 2  # the district's include the one without a town


def test_a_session_without_credit_hours_credits_its_duration(make):
    """学时 of a session: its credit hours when set, else its length (09:00–11:30 is 2.5)."""
    town = make.town(villages=["一村"])
    person = cadre(town)
    course = training(make, town, [(2026, 3, 1)], hours=None)
    course.sessions[0].ends_at = course.sessions[0].starts_at + timedelta(hours=2, minutes=30)
    db.session.commit()
    attend(course, person.phone)
    set_target(town.id, 2026, Decimal("50"), Decimal("2.5"))
    db.session.commit()

    t = _town(coverage_by_town(2026), town)
    assert t.hours == Decimal("2.5")
    assert t.trained == 1  # 2.5 h reach the threshold
    assert coverage_by_town(2026).as_json()["towns"][0]["hours"] == 2.5


def test_a_draft_training_was_never_held(make):
    """期数 counts published trainings (cancelled ones too, for the sessions they held),
    never a draft whose date has passed."""
    town = make.town(villages=["一村"])
    training(make, town, [(2026, 3, 1)])
    training(make, town, [(2026, 3, 2)], status="draft")
    assert _town(coverage_by_town(2026), town).trainings == 1
