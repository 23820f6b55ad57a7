"""Session time windows: a scan or self check-in counts only from a set time before the
session's start to its end plus a grace (SCIWEEK_CHECKIN_OPENS_BEFORE_MINUTES,
SCIWEEK_CHECKIN_CLOSES_AFTER_MINUTES); outside it the answer is ``not_now`` and nothing but
the scan log is written, unless an organizer checks the person in anyway, with a reason.

Every test runs on SQLite, and on PostgreSQL with the scan fast path on and off.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from sciweek.checkin.codes import make_self_code
from sciweek.extensions import db
from sciweek.i18n import LOCAL_TZ, to_local
from sciweek.models import CheckIn, ScanLog, utcnow
from sciweek.training.coverage import coverage_by_town

from .checkin_support import (  # noqa: F401 - fixtures: SQLite, PostgreSQL fast and general
    app_config,
    backend,
    bearer,
    issue_ticket,
    scan_path,
    token_for,
)
from .training_helpers import cadre


def local_day_at(days_from_now: int, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` Asia/Shanghai on the day ``days_from_now`` days from today."""
    day = to_local(utcnow()).date() + timedelta(days=days_from_now)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LOCAL_TZ)


def scan(client, token, code, activity_id, **extra):
    body = {"code": code, "activity_id": activity_id, **extra}
    return client.post("/api/v1/checkins", json=body, headers=bearer(token))


def live_checkins() -> int:
    return db.session.scalar(select(func.count(CheckIn.id)).where(CheckIn.undone_at.is_(None)))


def logged_results() -> list[str]:
    return list(db.session.scalars(select(ScanLog.result).order_by(ScanLog.id)))


# --- the defects as reported -----------------------------------------------------------------


def test_a_6_december_session_is_not_checked_in_on_27_november(client, make):
    """Reported on 27 Nov: a ticket for a 6 Dec 09:30 session was accepted. Nine days ahead."""
    starts = local_day_at(9, 9, 30)
    activity = make.activity(kind="training", sessions=[(starts, starts + timedelta(hours=2))])
    token = token_for(make.user("admin"))
    ticket = issue_ticket(activity)

    response = scan(client, token, ticket.secret, activity.id)

    assert response.status_code == 200
    body = response.get_json()
    assert body["result"] == "not_now"
    assert body["checked_in_at"] is None
    assert body["checkin_id"] is None
    assert body["message"] == f"本场次 {starts.month}月{starts.day}日 09:30 开始"
    assert body["session"]["starts_at"] == starts.astimezone(utcnow().tzinfo).isoformat()
    assert body["registration"]["name"] == "张三"
    assert live_checkins() == 0
    assert logged_results() == ["not_now"]


@pytest.mark.parametrize("years", [-1, 1], ids=["a year ago", "a year ahead"])
def test_sessions_of_another_year_are_not_checked_in_and_not_counted(client, make, years):
    """Reported: the API accepted check-ins for 2025 and 2027 sessions, all counted for
    coverage."""
    town = make.town(villages=["一村"])
    person = cadre(town)
    starts = local_day_at(400 * years, 9, 30)
    activity = make.activity(
        kind="training", town=town, sessions=[(starts, starts + timedelta(hours=2))]
    )
    token = token_for(make.user("admin"))
    ticket = issue_ticket(activity, phone=person.phone)
    assert ticket.registration.cadre_id == person.id

    body = scan(client, token, ticket.secret, activity.id).get_json()

    assert body["result"] == "not_now"
    ended = starts + timedelta(hours=2)
    when = f"{ended.year}年{ended.month}月{ended.day}日 11:30"
    assert body["message"] == (
        f"本场次已于 {when} 结束" if years < 0 else f"本场次 {starts.year}年{starts.month}月"
        f"{starts.day}日 09:30 开始"
    )
    assert live_checkins() == 0
    report = coverage_by_town(starts.year)
    assert [(t.cadres, t.trained, t.attendances) for t in report.towns] == [(1, 0, 0)]


def test_self_check_in_for_a_session_days_ahead_is_refused(app, client, make):
    starts = local_day_at(9, 9, 30)
    activity = make.activity(kind="training", sessions=[(starts, starts + timedelta(hours=2))])
    ticket = issue_ticket(activity, phone="13800138000")
    code = make_self_code(app.config["SECRET_KEY"], activity.sessions[0].id, utcnow().timestamp())

    response = client.post(
        f"/checkin/self/{code}",
        data={"phone": "13800138000", "short_code": ticket.registration.short_code},
    )

    page = response.get_data(as_text=True)
    assert "签到成功" not in page
    assert f"本场次 {starts.month}月{starts.day}日 09:30 开始" in page
    assert live_checkins() == 0
    assert logged_results() == ["not_now"]
