"""Every back-office and API URL refuses people without the role, on the server."""

from __future__ import annotations

import pytest

PUBLIC_UNDER_PROTECTED_PREFIXES = {
    "/account/signup",
    "/manage/activities/scan-sw.js",  # the scanner's service worker script, no data
}


def protected_urls(app):
    for rule in app.url_map.iter_rules():
        path = rule.rule
        if not path.startswith(("/manage", "/api/", "/my/", "/account/")):
            continue
        if path in PUBLIC_UNDER_PROTECTED_PREFIXES:
            continue
        url = path
        for argument in rule.arguments:
            url = url.replace(f"<int:{argument}>", "1").replace(f"<{argument}>", "x")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, url


def test_anonymous_visitors_are_refused_everywhere(app, client, make):
    make.activity()
    checked = 0
    for method, url in protected_urls(app):
        response = client.open(url, method=method)
        checked += 1
        assert response.status_code in (302, 401, 403), (
            method,
            url,
            response.status_code,
        )
        if response.status_code == 302:
            assert "/login" in response.headers["Location"], (method, url)
    assert checked > 40


@pytest.mark.parametrize("role", ["citizen", "checker", "coordinator"])
def test_roles_without_editing_rights_cannot_edit(app, client, make, auth, role):
    activity = make.activity()
    auth.login(make.user(role))
    editing = [
        ("GET", f"/manage/activities/{activity.id}/edit"),
        ("POST", f"/manage/activities/{activity.id}/publish"),
        ("POST", f"/manage/activities/{activity.id}/cancel"),
        ("GET", f"/manage/activities/{activity.id}/registrations"),
        ("GET", f"/manage/activities/{activity.id}/registrations.xlsx"),
        ("GET", f"/manage/activities/{activity.id}/checkers"),
        ("GET", f"/manage/activities/{activity.id}/notifications"),
        ("GET", "/manage/departments"),
        ("GET", "/manage/training/targets"),
        ("GET", f"/manage/sessions/{activity.sessions[0].id}/paper"),
        ("POST", f"/manage/sessions/{activity.sessions[0].id}/paper"),
        # The printed sheet: also coordinators, but only of trainings in their town.
        ("GET", f"/manage/sessions/{activity.sessions[0].id}/signin-sheet.pdf"),
        ("GET", f"/manage/activities/{activity.id}/sessions"),
        ("GET", "/manage/training/town-aliases"),
        # The annual assessment: admins and organizers only.
        ("GET", "/manage/reports/annual"),
        ("GET", "/manage/reports/annual.xlsx"),
        ("GET", "/manage/reports/annual.pdf"),
        # Activity summaries (活动总结) and their photos: the activity's organizers, admins.
        ("GET", f"/manage/activities/{activity.id}/summary"),
        ("GET", f"/manage/activities/{activity.id}/summary/edit"),
        ("POST", f"/manage/activities/{activity.id}/summary/edit"),
        ("GET", "/manage/summary-photos/1/x.jpg"),
        ("POST", "/manage/summary-photos/1/delete"),
        ("POST", "/manage/summary-photos/1/move/later"),
        ("GET", "/manage/places/towns"),
        ("POST", "/manage/places/towns"),
        ("GET", "/manage/places/campaigns"),
    ]
    for method, url in editing:
        assert client.open(url, method=method).status_code == 403, (method, url)


@pytest.mark.parametrize("role", ["citizen", "checker", "organizer"])
def test_training_records_are_for_coordinators_and_admins(app, client, make, auth, role):
    """A cadre's 培训台账 and a town's 台账 XLSX: admins and the town's coordinator only
    (``tests/test_training_ledger.py`` checks a coordinator of another town)."""
    from .training_helpers import cadre

    town = make.town(villages=["一村"])
    person = cadre(town)
    auth.login(make.user(role))
    for url in (
        f"/manage/training/cadres/{person.id}/ledger",
        f"/manage/training/towns/{town.id}/ledger.xlsx",
    ):
        assert client.get(url).status_code == 403, url


@pytest.mark.parametrize("role", ["organizer", "coordinator", "checker", "citizen"])
def test_only_admins_reach_places_and_campaigns(app, client, make, auth, role):
    town = make.town(villages=["东村", "西村"])
    campaign = make.campaign()
    auth.login(make.user(role))
    village = town.villages[0]
    both, post = ("GET", "POST"), ("POST",)
    urls = [
        (both, "/manage/places/towns"),
        (both, f"/manage/places/towns/{town.id}"),
        (post, f"/manage/places/towns/{town.id}/aliases"),
        (post, f"/manage/places/towns/{town.id}/villages"),
        (post, "/manage/places/aliases/1/remove"),
        (both, f"/manage/places/villages/{village.id}"),
        (both, f"/manage/places/villages/{village.id}/merge"),
        (both, f"/manage/places/villages/{village.id}/move"),
        (both, "/manage/places/campaigns"),
        (both, f"/manage/places/campaigns/{campaign.id}"),
    ]
    rules = {r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/manage/places")}
    assert len(rules) == len(urls)  # a new places URL is added here too
    for methods, url in urls:
        for method in methods:
            response = client.open(url, method=method, data={"name": "x", "code": "x"})
            assert response.status_code == 403, (method, url, response.status_code)


@pytest.mark.parametrize("role", ["organizer", "coordinator", "checker", "citizen"])
def test_only_admins_reach_the_account_pages(app, client, make, auth, role):
    """Every URL under /manage/users (accounts, links, lockouts, the audit log)."""
    user = make.user(role)
    auth.login(user)
    urls = [(m, u) for m, u in protected_urls(app) if u.startswith("/manage/users")]
    assert len(urls) >= 9
    for method, url in urls:
        assert client.open(url, method=method).status_code == 403, (method, url)
