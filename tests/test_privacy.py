"""显示完整号码 (issue 12.6): masked by default, revealed on purpose by those who need it,
each reveal logged (who, whom, when) and listed for admins."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from sciweek import create_app
from sciweek.extensions import db
from sciweek.models import Cadre, PhoneReveal, Village
from sciweek.registration.services import RegistrationRequest, register_for_activity

PHONE = "13912345678"
CADRE_PHONE = "13787654321"


def registrant(activity, phone=PHONE):
    issued = register_for_activity(activity.id, RegistrationRequest(name="张三", phone=phone))
    db.session.commit()
    return issued.registration


def cadre_of(town, phone=CADRE_PHONE):
    village = Village(name="东村", town=town)
    cadre = Cadre(
        name="李支书", town=town, village=village, phone=phone, active_from=date(2025, 1, 1)
    )
    db.session.add(cadre)
    db.session.commit()
    return cadre


def reveals() -> int:
    return db.session.scalar(select(func.count()).select_from(PhoneReveal))


def test_organizers_reveal_their_registrants_phone_and_it_is_logged(client, make, auth):
    organizer = make.user("organizer")
    activity = make.activity(departments=[organizer.department])
    registration = registrant(activity)
    auth.login(organizer)
    page = client.get(f"/manage/activities/{activity.id}/registrations").get_data(as_text=True)
    assert PHONE not in page  # masked by default
    assert "139****5678" in page
    assert f'action="/manage/registrations/{registration.id}/phone"' in page

    assert client.get(f"/manage/registrations/{registration.id}/phone").status_code == 405
    response = client.post(f"/manage/registrations/{registration.id}/phone")
    assert response.status_code == 200
    assert PHONE in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "private, no-store"
    [reveal] = db.session.scalars(select(PhoneReveal)).all()
    assert reveal.user_id == organizer.id
    assert reveal.registration_id == registration.id
    assert reveal.cadre_id is None
    assert reveal.subject_name == "张三"
    assert reveal.created_at is not None
    # Still masked on the list afterwards: the reveal shows one number, once.
    page = client.get(f"/manage/activities/{activity.id}/registrations").get_data(as_text=True)
    assert PHONE not in page


def test_nobody_else_reveals_a_registrants_phone(client, make, auth):
    activity = make.activity()
    registration = registrant(activity)
    other_organizer = make.user("organizer")
    checker = make.user("checker")
    checker.assigned_activities.append(activity)
    coordinator = make.user("coordinator")
    db.session.commit()
    url = f"/manage/registrations/{registration.id}/phone"
    for user in (other_organizer, checker, coordinator):
        auth.login(user)
        response = client.post(url)
        assert response.status_code == 403, user.role
        assert PHONE not in response.get_data(as_text=True)
        auth.logout()
    assert client.post(url).status_code == 302  # anonymous: to the log-in page
    assert reveals() == 0


def test_coordinators_reveal_their_own_towns_cadres_only(client, make, auth):
    town, other_town = make.town(), make.town()
    coordinator = make.user("coordinator", town=town)
    own = cadre_of(town)
    foreign = cadre_of(other_town, phone="13600000001")
    auth.login(coordinator)
    page = client.get("/manage/training/roster").get_data(as_text=True)
    assert CADRE_PHONE not in page
    assert f'action="/manage/training/cadres/{own.id}/phone"' in page

    response = client.post(f"/manage/training/cadres/{own.id}/phone")
    assert response.status_code == 200
    assert CADRE_PHONE in response.get_data(as_text=True)
    response = client.post(f"/manage/training/cadres/{foreign.id}/phone")
    assert response.status_code == 403
    assert "13600000001" not in response.get_data(as_text=True)
    [reveal] = db.session.scalars(select(PhoneReveal)).all()
    assert (reveal.user_id, reveal.cadre_id, reveal.subject_name) == (
        coordinator.id,
        own.id,
        "李支书",
    )


def test_organizers_and_checkers_do_not_reveal_cadres(client, make, auth):
    cadre = cadre_of(make.town())
    for role in ("organizer", "checker"):
        auth.login(make.user(role))
        assert client.post(f"/manage/training/cadres/{cadre.id}/phone").status_code == 403
        auth.logout()
    assert reveals() == 0


def test_admins_see_the_list_of_reveals_and_nobody_else_does(client, make, auth):
    town = make.town(name="城关镇")
    coordinator = make.user("coordinator", town=town)
    cadre = cadre_of(town)
    organizer = make.user("organizer")
    activity = make.activity(title="果树修剪", departments=[organizer.department])
    registration = registrant(activity)
    auth.login(coordinator)
    client.post(f"/manage/training/cadres/{cadre.id}/phone")
    assert client.get("/manage/phone-reveals").status_code == 403
    auth.logout()
    auth.login(organizer)
    client.post(f"/manage/registrations/{registration.id}/phone")
    assert client.get("/manage/phone-reveals").status_code == 403
    auth.logout()

    auth.login(make.user("admin"))
    assert "/manage/phone-reveals" in client.get("/manage/").get_data(as_text=True)
    page = client.get("/manage/phone-reveals").get_data(as_text=True)
    assert coordinator.username in page
    assert organizer.username in page
    assert "李支书" in page
    assert "张三" in page
    assert "果树修剪" in page
    assert "城关镇" in page
    assert PHONE not in page
    assert CADRE_PHONE not in page
    # Newest first.
    assert page.index(organizer.username) < page.index(coordinator.username)


def test_a_reveal_needs_the_forms_csrf_token(app_config, make, tmp_path, monkeypatch):
    organizer = make.user("organizer")
    registration = registrant(make.activity(departments=[organizer.department]))
    organizer_name, registration_id = organizer.username, registration.id
    db.session.remove()
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "csrf"))
    strict = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    with strict.app_context():
        client = strict.test_client()
        login = client.get("/login").get_data(as_text=True)
        token = login.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
        client.post(
            "/login",
            data={"username": organizer_name, "password": "correct-horse-9", "csrf_token": token},
        )
        refused = client.post(f"/manage/registrations/{registration_id}/phone")
        logged = db.session.scalar(select(func.count()).select_from(PhoneReveal))
        db.session.remove()
        db.engine.dispose()
    assert refused.status_code == 400
    assert PHONE not in refused.get_data(as_text=True)
    assert logged == 0
