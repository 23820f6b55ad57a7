"""sciweek.permissions: the roles' links in the pages follow the rules the URLs enforce."""

from __future__ import annotations

import pytest
from flask import url_for

from sciweek.extensions import db
from sciweek.permissions import can

# The back-office links each role sees on its dashboard, and the URL each opens.
LINKS = {
    "door": "checkin.door_activities",
    "coverage": "training.coverage",
    "roster": "training.roster",
}
SEES = {
    "admin": {"door", "coverage", "roster"},
    "organizer": {"door", "coverage"},
    "checker": {"door"},
    "coordinator": {"coverage", "roster"},
}


@pytest.mark.parametrize("role", sorted(SEES))
def test_dashboard_links_follow_the_role_and_each_link_opens(app, client, make, auth, role):
    auth.login(make.user(role))
    page = client.get("/manage/").get_data(as_text=True)
    with app.test_request_context():
        urls = {name: url_for(endpoint) for name, endpoint in LINKS.items()}
    shown = {name for name, url in urls.items() if f'href="{url}"' in page}
    assert shown == SEES[role]
    for name in shown:
        assert client.get(urls[name]).status_code == 200, name
    for name in set(urls) - shown:
        assert client.get(urls[name]).status_code == 403, name


def test_checkers_link_only_for_managers_of_the_activity(app, client, make, auth):
    activity = make.activity()
    checker = make.user("checker")
    checker.assigned_activities.append(activity)
    db.session.commit()
    checkers_url = f"/manage/activities/{activity.id}/checkers"

    auth.login(checker)
    page = client.get("/manage/checkin").get_data(as_text=True)
    assert activity.title in page
    assert checkers_url not in page
    assert client.get(checkers_url).status_code == 403

    auth.logout()
    auth.login(make.user("organizer", department=activity.departments[0]))
    page = client.get("/manage/checkin").get_data(as_text=True)
    assert checkers_url in page
    assert client.get(checkers_url).status_code == 200


def test_can_scopes_activities_by_department_and_assignment(app, make):
    activity = make.activity()
    own = make.user("organizer", department=activity.departments[0])
    other = make.user("organizer")
    checker = make.user("checker")
    with app.test_request_context():
        assert can("manage", activity, user=own)
        assert not can("manage", activity, user=other)
        assert can("door", user=checker)
        assert not can("door", activity, user=checker)
        checker.assigned_activities.append(activity)
        assert can("door", activity, user=checker)
        assert not can("manage", activity, user=checker)
        with pytest.raises(ValueError, match="unknown permission"):
            can("fly", user=own)


@pytest.mark.parametrize(("role", "drills"), [("coordinator", True), ("organizer", False)])
def test_coverage_links_a_town_only_for_those_who_may_open_it(
    app, client, make, auth, role, drills
):
    town = make.town()
    auth.login(make.user(role, town=town if role == "coordinator" else None))
    page = client.get("/manage/training/").get_data(as_text=True)
    detail = f"/manage/training/towns/{town.id}"
    assert (detail in page) is drills
    assert client.get(detail).status_code == (200 if drills else 403)
