"""Registrations keep the roster cadre they belong to: by phone, on import, or by hand."""

from __future__ import annotations

import io
from datetime import date

import pytest
from sqlalchemy import select

from sciweek.extensions import db
from sciweek.models import Registration
from sciweek.registration import services as registration
from sciweek.training import services as training_services
from sciweek.training.coverage import coverage_by_town
from sciweek.training.roster import parse_roster

from .training_helpers import attend, cadre, training

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


# --- late joiners: attended before being on the roster (issue 9, point 2) ------------------


def late_joiner_roster(name: str, phone: str) -> bytes:
    return f"{HEADER}\n1,{name},男,1980.01,委员,城关镇,城关一村,{phone},\n".encode("gbk")


@pytest.fixture
def late_joiners(make, town):
    """One training in March; two people registered and checked in, neither on the roster."""
    course = training(make, town, [(2026, 3, 1)])
    early = [attend(course, "13800000021", name="赵六"), attend(course, "13800000022", name="钱七")]
    assert all(r.cadre_id is None for r in early)
    # Someone who is never listed: their registration must stay unlinked.
    attend(course, "13800000029", name="路人")
    return course, early


def trained_in_chengguan(year=2026) -> tuple[int, int]:
    db.session.expire_all()
    row = next(t for t in coverage_by_town(year).towns if t.code == "chengguan")
    return row.cadres, row.trained


def test_late_joiners_listed_in_two_web_imports_are_both_trained(
    client, auth, make, town, late_joiners
):
    auth.login(make.user("admin"))
    pages = []
    for count, (name, phone) in enumerate([("赵六", "13800000021"), ("钱七", "13800000022")], 1):
        upload = {"file": (io.BytesIO(late_joiner_roster(name, phone)), "roster.csv")}
        preview = client.post("/manage/training/import", data=upload)
        assert preview.status_code == 302, preview.get_data(as_text=True)
        response = client.post(
            preview.headers["Location"], data={"active_from": "2026-06-01"}, follow_redirects=True
        )
        assert response.status_code == 200
        pages.append(response.get_data(as_text=True))
        assert "新增 1 人" in pages[-1], pages[-1]
        assert trained_in_chengguan() == (count, count)
    assert all("关联此前的报名 1 条" in html for html in pages)
    linked = db.session.scalars(select(Registration).order_by(Registration.id)).all()
    assert [r.cadre_id is not None for r in linked] == [True, True, False]


def test_late_joiners_listed_in_two_cli_imports_are_both_trained(
    runner, town, late_joiners, tmp_path
):
    outputs = []
    for count, (name, phone) in enumerate([("赵六", "13800000021"), ("钱七", "13800000022")], 1):
        path = tmp_path / f"roster{count}.csv"
        path.write_bytes(late_joiner_roster(name, phone))
        result = runner.invoke(args=["import-cadres", str(path), "--active-from", "2026-06-01"])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
        assert trained_in_chengguan() == (count, count)
    assert all("关联此前的报名 1 条" in output for output in outputs)


@pytest.mark.parametrize("via", ["web", "cli"])
def test_a_registration_the_cadre_cannot_hold_is_left_unlinked_with_a_warning(
    client, auth, runner, make, town, tmp_path, via
):
    """One cadre, two registrations of one activity: the import links one and says so."""
    person = cadre(town, name="孙八", phone="13800000031")
    course = training(make, town, [(2026, 3, 1)])
    attend(course, "13800000031", name="孙八")  # linked when registering
    second = attend(course, "13800000032", name="孙八")  # a second phone, unlisted then
    assert second.cadre_id is None
    # The new roster gives the cadre the second phone.
    roster = late_joiner_roster("孙八", "13800000032")
    if via == "web":
        auth.login(make.user("admin"))
        upload = {"file": (io.BytesIO(roster), "roster.csv")}
        preview = client.post("/manage/training/import", data=upload).headers["Location"]
        response = client.post(preview, data={"active_from": "2026-06-01"}, follow_redirects=True)
        assert response.status_code == 200
        shown = response.get_data(as_text=True)
    else:
        path = tmp_path / "roster.csv"
        path.write_bytes(roster)
        result = runner.invoke(args=["import-cadres", str(path)])
        assert result.exit_code == 0, result.output
        shown = result.output
    assert "更新 1 人" in shown
    assert "关联此前的报名 0 条" in shown
    db.session.expire_all()
    assert db.session.get(Registration, second.id).cadre_id is None
    assert db.session.get(type(person), person.id).phone == "13800000032"
    assert trained_in_chengguan() == (1, 1)
    assert "孙八" in shown
    assert course.title in shown
    assert "已有此活动的报名" in shown
