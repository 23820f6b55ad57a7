"""Cancelling after the fact: sessions that have begun stay held, their attendance counts."""

from __future__ import annotations

from datetime import timedelta

from sciweek.extensions import db
from sciweek.i18n import to_local
from sciweek.models import Activity, utcnow
from sciweek.training.coverage import coverage_by_town

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
