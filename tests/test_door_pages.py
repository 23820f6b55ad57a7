"""The door pages as a new checker or organizer meets them (issue 11, point 8), both databases.

After log-in a checker lands on the check-in list; the list shows today and the next seven
days first and keeps past sessions behind a link; the projector page carries no back-office
chrome and has a small counter URL it polls.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sciweek.extensions import db
from sciweek.i18n import LOCAL_TZ, local_today

from .checkin_support import bearer, issue_ticket, sessions_now, token_for
from .conftest import DEFAULT_PASSWORD


def _today_at(days: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(local_today() + timedelta(days=days), time(hour, minute), LOCAL_TZ)


def test_checker_lands_on_the_checkin_list_after_login(client, make):
    checker = make.user("checker")
    response = client.post(
        "/login", data={"username": checker.username, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/manage/checkin")
    # Organizers and admins still land on the back office; an explicit next wins.
    organizer = make.user("organizer")
    client.post("/logout")
    landed = client.post(
        "/login", data={"username": organizer.username, "password": DEFAULT_PASSWORD}
    )
    assert landed.headers["Location"].endswith("/manage/")
    client.post("/logout")
    followed = client.post(
        "/login?next=/manage/tokens",
        data={"username": checker.username, "password": DEFAULT_PASSWORD, "next": "/manage/tokens"},
    )
    assert followed.headers["Location"].endswith("/manage/tokens")


def test_checkin_list_shows_the_coming_week_first_and_past_sessions_behind_a_link(
    client, auth, make
):
    department = make.department()

    def activity(title, start):
        return make.activity(
            title=title, departments=[department], sessions=[(start, start + timedelta(hours=2))]
        )

    activity("三天后讲座", _today_at(3, 9))
    activity("今天讲座", _today_at(0, 0, 1))  # today, perhaps already over
    activity("第七天讲座", _today_at(7, 20))
    activity("十天后讲座", _today_at(10, 9))
    activity("昨天讲座", _today_at(-1, 9))
    activity("多年前讲座", datetime(2020, 5, 1, 9, tzinfo=LOCAL_TZ))
    auth.login(make.user("organizer", department=department))

    page = client.get("/manage/checkin").get_data(as_text=True)
    order = [page.index(t) for t in ("今天讲座", "三天后讲座", "第七天讲座", "十天后讲座")]
    assert order == sorted(order)
    week, later = page.split('id="later"', 1)
    assert "第七天讲座" in week
    assert "十天后讲座" in later
    assert "昨天讲座" not in page
    assert "多年前讲座" not in page
    assert 'href="/manage/checkin?when=past"' in page

    past = client.get("/manage/checkin?when=past").get_data(as_text=True)
    assert past.index("昨天讲座") < past.index("多年前讲座")  # the most recent first
    assert "今天讲座" not in past
    assert "三天后讲座" not in past
    assert 'href="/manage/checkin"' in past


def test_checkin_list_has_scanner_and_projector_links_per_session(client, auth, make):
    activity = make.activity(
        title="两场培训",
        kind="training",
        sessions=[(_today_at(1, 9), _today_at(1, 11)), (_today_at(2, 9), _today_at(2, 11))],
    )
    checker = make.user("checker")
    checker.assigned_activities.append(activity)
    db.session.commit()
    auth.login(checker)
    page = client.get("/manage/checkin").get_data(as_text=True)
    for session in activity.sessions:
        assert f"/manage/activities/{activity.id}/scan?session={session.id}" in page
        assert f"/manage/activities/{activity.id}/sessions/{session.id}/projector" in page
    # A checker cannot assign checkers: no link for it.
    assert f"/manage/activities/{activity.id}/checkers" not in page


def test_projector_page_has_no_back_office_chrome(client, auth, make):
    activity = make.activity(title="科普展")
    auth.login(make.user("admin"))
    session_id = activity.sessions[0].id
    page = client.get(f"/manage/activities/{activity.id}/sessions/{session_id}/projector")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "科普展" in text
    assert 'class="topbar"' not in text
    assert 'class="footer"' not in text
    assert "/manage/checkin" not in text  # no navigation away on a projected screen
    assert f"/manage/activities/{activity.id}/sessions/{session_id}/counts" in text


def test_projector_counter_url_answers_live_counts(client, auth, make):
    activity = make.activity(capacity=30, sessions=sessions_now())
    checker = make.user("checker")
    checker.assigned_activities.append(activity)
    db.session.commit()
    ticket = issue_ticket(activity)
    session_id = activity.sessions[0].id
    url = f"/manage/activities/{activity.id}/sessions/{session_id}/counts"
    auth.login(checker)
    assert client.get(url).get_json() == {"checked_in": 0, "expected": 1}
    client.post(
        "/api/v1/checkins",
        json={"code": ticket.secret, "activity_id": activity.id, "session_id": session_id},
        headers=bearer(token_for(checker)),
    )
    response = client.get(url)
    assert response.get_json() == {"checked_in": 1, "expected": 1}
    assert response.headers["Cache-Control"] == "no-store"
    auth.logout()
    auth.login(make.user("checker"))  # not assigned to this activity
    assert client.get(url).status_code == 403
