"""Cancelling after the fact: sessions that have begun stay held, their attendance counts."""

from __future__ import annotations

from datetime import UTC, timedelta

from flask_migrate import upgrade
from sqlalchemy import MetaData, Table, insert, select

from sciweek import create_app
from sciweek.extensions import db
from sciweek.i18n import to_local
from sciweek.models import Activity, ActivitySession, utcnow
from sciweek.registration.services import registrant_counts
from sciweek.training.coverage import coverage_by_town

from .conftest import local
from .training_helpers import attend, cadre


def _town(report, town):
    return next(t for t in report.towns if t.town_id == town.id)


def _held_and_coming_training(make, town, organizer=None):
    """A training whose first session was two days ago and whose second is next week."""
    now = utcnow()
    held, coming = now - timedelta(days=2), now + timedelta(days=5)
    return make.activity(
        kind="training",
        town=town,
        departments=[organizer.department] if organizer is not None else None,
        sessions=[(held, held + timedelta(hours=2)), (coming, coming + timedelta(hours=2))],
    )


def test_cancelling_a_held_training_keeps_its_attendance_in_coverage(client, make, auth):
    town = make.town(villages=["一村"])
    person = cadre(town)
    cadre(town)
    organizer = make.user("organizer")
    course = _held_and_coming_training(make, town, organizer)
    attend(course, person.phone, sessions=[course.sessions[0]])
    year = to_local(course.sessions[0].starts_at).year
    before = _town(coverage_by_town(year), town)
    assert (before.trained, before.attendances, before.trainings) == (1, 1, 1)

    auth.login(organizer)
    client.post(f"/manage/activities/{course.id}/cancel", data={"reason": "第二场因故取消"})
    db.session.expire_all()
    assert db.session.get(Activity, course.id).status == "cancelled"

    after = _town(coverage_by_town(year), town)
    assert (after.cadres, after.trained) == (2, 1)
    assert after.attendances == 1  # 人次 of the held session
    assert after.trainings == 1  # 期数: it was held
    assert after.hours == before.hours
    assert registrant_counts(course.id)["checked_in"] == 1  # the activity's own count


def test_cancelling_cancels_only_the_sessions_to_come_and_says_so(client, make, auth):
    organizer = make.user("organizer")
    course = _held_and_coming_training(make, make.town(villages=["一村"]), organizer)
    held_id, coming_id = (s.id for s in course.sessions)
    auth.login(organizer)

    page = client.get(f"/manage/activities/{course.id}/cancel").get_data(as_text=True)
    assert "将取消" in page
    assert "已开始，保留为已举行" in page
    assert page.index("已开始，保留为已举行") > page.index("将取消")

    response = client.post(
        f"/manage/activities/{course.id}/cancel",
        data={"reason": "第二场因故取消"},
        follow_redirects=True,
    )
    assert "已开始的 1 个场次保留为已举行" in response.get_data(as_text=True)
    db.session.expire_all()
    sessions = {s.id: s for s in db.session.get(Activity, course.id).sessions}
    assert sessions[held_id].cancelled_at is None
    assert sessions[coming_id].cancelled_at is not None


def test_an_activity_whose_sessions_have_all_begun_cannot_be_cancelled(client, make, auth):
    organizer = make.user("organizer")
    began = utcnow() - timedelta(minutes=30)
    activity = make.activity(
        departments=[organizer.department], sessions=[(began, began + timedelta(hours=2))]
    )
    auth.login(organizer)
    page = client.get(f"/manage/activities/{activity.id}/cancel").get_data(as_text=True)
    assert "所有场次都已开始，活动不能再取消" in page
    assert "确认取消" not in page

    response = client.post(f"/manage/activities/{activity.id}/cancel", data={"reason": "下雨"})
    assert "所有场次都已开始，活动不能再取消" in response.get_data(as_text=True)
    db.session.expire_all()
    activity = db.session.get(Activity, activity.id)
    assert activity.status == "published"
    assert activity.sessions[0].cancelled_at is None


def test_check_ins_at_a_session_cancelled_before_it_began_do_not_count(client, make, auth):
    town = make.town(villages=["一村"])
    person = cadre(town)
    organizer = make.user("organizer")
    coming = utcnow() + timedelta(days=3)
    course = make.activity(
        kind="training",
        town=town,
        departments=[organizer.department],
        sessions=[(coming, coming + timedelta(hours=2))],
    )
    attend(course, person.phone)  # checked in early, at a session still to come
    year = to_local(coming).year
    assert _town(coverage_by_town(year), town).trained == 1

    auth.login(organizer)
    client.post(f"/manage/activities/{course.id}/cancel", data={"reason": "延期"})
    report = _town(coverage_by_town(year), town)
    assert (report.trained, report.attendances, report.trainings) == (0, 0, 0)


def test_migration_keeps_sessions_held_before_an_earlier_cancellation(
    empty_database_url, tmp_path, monkeypatch
):
    """Activities cancelled before the migration: the sessions that had begun when the
    activity was cancelled stay held, the others are cancelled at that time."""
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "TESTING": True})
    cancelled_at = local(2026, 6, 2, 12)
    with app.app_context():
        upgrade(revision="5e1d2c7a9b30-1")  # just before this migration
        rows = {"cancelled": "cancelled", "on": "published"}
        ids = {}
        # The tables as they are at that revision (the models have columns added since); their
        # plain DateTime columns take UTC.
        tables = MetaData()
        cancelled_utc = cancelled_at.astimezone(UTC)
        activities = Table("activities", tables, autoload_with=db.engine)
        sessions = Table("activity_sessions", tables, autoload_with=db.engine)
        for key, status in rows.items():
            ids[key] = db.session.execute(
                insert(activities)
                .values(
                    kind="training",
                    title=key,
                    description="",
                    venue="",
                    audience="cadres",
                    status=status,
                    cancel_reason="改期" if status == "cancelled" else "",
                    cancelled_at=cancelled_utc if status == "cancelled" else None,
                    sequence=0,
                    confirmed_count=0,
                    waitlist_enabled=True,
                    created_at=cancelled_utc,
                    updated_at=cancelled_utc,
                )
                .returning(activities.c.id)
            ).scalar_one()
            for day in (1, 3):  # one session before the cancellation, one after
                db.session.execute(
                    insert(sessions).values(
                        activity_id=ids[key],
                        starts_at=local(2026, 6, day, 9).astimezone(UTC),
                        ends_at=local(2026, 6, day, 11).astimezone(UTC),
                        note="",
                        created_at=cancelled_utc,
                    )
                )
        db.session.commit()

        upgrade()
        found = {
            (row.activity_id, row.starts_at.day): row.cancelled_at
            for row in db.session.execute(
                select(
                    ActivitySession.activity_id,
                    ActivitySession.starts_at,
                    ActivitySession.cancelled_at,
                )
            )
        }
        assert found == {
            (ids["cancelled"], 1): None,
            (ids["cancelled"], 3): cancelled_at,
            (ids["on"], 1): None,
            (ids["on"], 3): None,
        }
        db.session.remove()
        db.engine.dispose()
