"""Registrations keep the roster cadre they belong to: by phone, on import, or by hand."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from sciweek.extensions import db
from sciweek.models import Registration
from sciweek.registration import services as registration
from sciweek.training import services as training_services
from sciweek.training.coverage import coverage_by_town
from sciweek.training.roster import parse_roster

from .training_helpers import cadre, training

HEADER = "序号,姓名,性别,出生年月,职务,所属镇街,村/社区,手机号码,身份证号"


def register(activity, phone, name="参训人"):
    issued = registration.register_for_activity(
        activity.id, registration.RegistrationRequest(name=name, phone=phone), walk_in=True
    )
    return issued.registration


@pytest.fixture
def town(make):
    return make.town(name="城关镇", code="chengguan", villages=["城关一村"])


def test_registering_with_a_roster_phone_links_the_cadre(app, make, town):
    person = cadre(town, phone="13800000011")
    course = training(make, town, [(2026, 3, 1)])
    assert register(course, "138 0000 0011").cadre_id == person.id
    assert register(course, "13800000099").cadre_id is None


def test_importing_a_roster_links_earlier_registrations(app, make, town):
    course = training(make, town, [(2026, 3, 1)])
    early = register(course, "13800000012", name="王五")
    assert early.cadre_id is None
    data = f"{HEADER}\n1,王五,男,1980.01,书记,城关镇,城关一村,13800000012,\n".encode("gbk")
    check = training_services.check_roster(parse_roster("roster.csv", data))

    training_services.import_roster(check, active_from=date(2026, 1, 1))
    db.session.commit()
    db.session.refresh(early)
    assert early.cadre_id is not None


def test_a_cadre_holds_one_active_registration_per_activity(app, make, town):
    person = cadre(town, phone="13800000013")
    course = training(make, town, [(2026, 3, 1)])
    other_phone = register(course, "13900000013")
    # A coordinator links the second phone's registration to the cadre ...
    training_services.link_registration_to_cadre(other_phone, person)
    db.session.commit()
    # ... so the cadre's own phone is now "already registered" for this activity.
    with pytest.raises(registration.AlreadyRegistered):
        register(course, "13800000013")
    # And a second manual link to the same cadre is refused with a message.
    third = register(course, "13700000013")
    with pytest.raises(training_services.TrainingError, match="不能重复关联"):
        training_services.link_registration_to_cadre(third, person)


def test_coverage_counts_each_session_once_per_cadre(app, make, town):
    from sciweek.models import CheckIn

    person = cadre(town, phone="13800000014")
    course = training(make, town, [(2026, 3, 1), (2026, 3, 2)])
    reg = register(course, "13800000014")
    for session in course.sessions:
        db.session.add(CheckIn(registration_id=reg.id, session_id=session.id))
    db.session.commit()
    report = coverage_by_town(2026)
    row = next(t for t in report.towns if t.code == "chengguan")
    assert (row.cadres, row.trained, row.attendances) == (1, 1, 2)
    assert person.id == db.session.scalar(
        select(Registration.cadre_id).where(Registration.id == reg.id)
    )


def test_a_town_import_cannot_take_over_another_towns_cadre(app, make, town):
    other = make.town(name="河西街道", code="hexi", villages=["河西一村"])
    theirs = cadre(other, name="李四", phone="13800000015")
    data = f"{HEADER}\n1,张三,男,1980.01,书记,城关镇,城关一村,13800000015,\n".encode("gbk")
    check = training_services.check_roster(parse_roster("roster.csv", data), only_town_id=town.id)
    assert any("其他镇街（河西街道）" in i.message for i in check.errors)
    with pytest.raises(training_services.RosterImportError):
        training_services.import_roster(check, active_from=date(2026, 1, 1))
    db.session.rollback()
    db.session.refresh(theirs)
    assert (theirs.name, theirs.town_id) == ("李四", other.id)


def test_trainings_not_yet_begun_are_not_counted_as_held(app, make, town):
    from datetime import timedelta

    from sciweek.i18n import local_today

    later = local_today() + timedelta(days=400)
    training(make, town, [(later.year, later.month, later.day)])
    report = coverage_by_town(later.year)
    assert next(t for t in report.towns if t.code == "chengguan").trainings == 0
    assert report.trainings == 0
