"""A training's door for its roster cadres: search, check-in without a registration, self
check-in with proof, coordinators' own town, the offline roster and coverage (no browser)."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from sciweek.checkin import roster_door, services
from sciweek.checkin.codes import make_self_code
from sciweek.extensions import db
from sciweek.models import (
    Activity,
    Cadre,
    CheckIn,
    Registration,
    RegistrationStatus,
    ScanLog,
    utcnow,
)
from sciweek.training.coverage import coverage_by_town, local_year_today

from .checkin_support import bearer, issue_ticket, token_for
from .roster_door_support import Door, build_door


@pytest.fixture
def door(make) -> Door:
    return build_door(make)


def names(entries) -> list[str]:
    return sorted(e["name"] for e in entries)


def registrations_of(cadre: Cadre) -> list[Registration]:
    return list(db.session.scalars(select(Registration).where(Registration.cadre_id == cadre.id)))


def live_checkins() -> int:
    return db.session.scalar(select(func.count(CheckIn.id)).where(CheckIn.undone_at.is_(None)))


def roster_check_in(client, door: Door, cadre_id, headers=None, **body):
    return client.post(
        f"/api/v1/activities/{door.training.id}/roster-checkins",
        json={"cadre_id": cadre_id, **body},
        headers=headers or {},
    )


def self_code(app, door: Door) -> str:
    session_id = door.training.sessions[0].id
    return make_self_code(app.config["SECRET_KEY"], session_id, utcnow().timestamp())


# --- naming the cadres a training is for (the activity form) --------------------------------


def _form(activity: Activity, **changes) -> dict:
    session = activity.sessions[0]
    data = {
        "title": activity.title,
        "kind": activity.kind,
        "departments": [d.id for d in activity.departments],
        "campaign_id": 0,
        "town_id": activity.town_id or 0,
        "village_id": 0,
        "audience": "cadres",
        "sessions-0-id": str(session.id),
        "sessions-0-starts_at": "2026-12-10T09:00",
        "sessions-0-ends_at": "2026-12-10T11:00",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_organizer_names_the_towns_of_a_training_in_the_activity_form(client, auth, door):
    auth.login(door.organizer)
    url = f"/manage/activities/{door.training.id}/edit"
    page = client.get(url).get_data(as_text=True)
    assert "参训干部" in page
    select_box = re.search(r'<select[^>]*name="roster_towns"[^>]*>(.*?)</select>', page, re.S)
    chosen = re.findall(r'<option selected value="(\d+)">', select_box.group(1))
    assert sorted(int(i) for i in chosen) == sorted([door.chengguan.id, door.dongshan.id])

    response = client.post(url, data=_form(door.training, roster_towns=[door.xihe.id]))
    assert response.status_code == 302
    db.session.expire_all()
    assert [t.code for t in db.session.get(Activity, door.training.id).roster_towns] == ["xihe"]

    client.post(url, data=_form(door.training, roster_whole_district="y"))
    db.session.expire_all()
    training = db.session.get(Activity, door.training.id)
    assert training.roster_whole_district
    assert training.roster_towns == []
    assert training.invites_cadres_of(door.xihe.id)


def test_only_trainings_name_cadres_and_unknown_towns_are_refused(client, auth, door, make):
    auth.login(door.organizer)
    outreach = make.activity(kind="outreach", departments=door.training.departments)
    page = client.post(
        f"/manage/activities/{outreach.id}/edit",
        data=_form(outreach, roster_towns=[door.chengguan.id]),
    )
    assert page.status_code == 200
    assert "只有培训活动可以指定参训干部。" in page.get_data(as_text=True)
    page = client.post(
        f"/manage/activities/{door.training.id}/edit",
        data=_form(door.training, roster_towns=["999999"]),
    )
    assert "所选镇街不存在。" in page.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Activity, outreach.id).roster_towns == []
    assert len(db.session.get(Activity, door.training.id).roster_towns) == 2


# --- searching at the door ---------------------------------------------------------------------


def test_search_finds_registrations_and_invited_cadres_alike(client, door):
    issue_ticket(door.training, name="张三丰", phone="13811112222")  # a public registrant
    token = token_for(door.checker)
    url = f"/api/v1/activities/{door.training.id}/roster/search"

    def search(q):
        response = client.get(url, query_string={"q": q}, headers=bearer(token))
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    assert names(search("张")["entries"]) == ["张三丰", "张建国"]
    assert names(search("1234")["entries"]) == ["张建国"]  # phone tail
    assert names(search("002X")["entries"]) == ["张建国"]  # ID tail
    assert names(search("002x")["entries"]) == ["张建国"]
    assert names(search("１３８６１７２１２３４")["entries"]) == ["张建国"]  # full-width phone
    assert names(search("138 6172 1234")["entries"]) == ["张建国"]
    assert names(search("2222")["entries"]) == ["张三丰"]
    assert names(search("赵")["entries"]) == ["赵东山"]  # another invited town
    assert search("钱西河")["entries"] == []  # a town not invited
    assert search("孙离任")["entries"] == []  # left the roster before the training
    digits = search("13800")
    assert digits["entries"] == []
    assert "后 4 位" in digits["hint"]
    found = search("王老汉")["entries"]
    assert found[0]["kind"] == "cadre"
    assert found[0]["phone_masked"] == ""
    assert found[0]["id_masked"].endswith("0014")
    assert "*" in found[0]["id_masked"]


def test_a_phone_is_matched_on_what_its_mask_shows_only(client, door):
    """The middle digits are never compared, so trying numbers reveals nothing."""
    token = token_for(door.checker)
    url = f"/api/v1/activities/{door.training.id}/roster/search"
    other_middle = client.get(url, query_string={"q": "13899991234"}, headers=bearer(token))
    assert names(other_middle.get_json()["entries"]) == ["张建国"]


def test_search_answers_never_hold_a_full_phone_or_id_number(client, door):
    token = token_for(door.checker)
    data = client.get(
        f"/api/v1/activities/{door.training.id}/roster/search",
        query_string={"q": "张建国"},
        headers=bearer(token),
    ).get_json()
    text = json.dumps(data, ensure_ascii=False)
    assert "张建国" in text
    assert door.zhang.phone not in text
    assert door.zhang.id_number not in text
    assert door.zhang.id_number[-6:] not in text  # the self check-in proof


# --- checking in a cadre -----------------------------------------------------------------------


def test_checking_in_a_cadre_without_registration_makes_one_linked_to_the_cadre(client, door):
    token = token_for(door.checker)
    response = roster_check_in(client, door, door.zhang.id, bearer(token), nonce="n-1")
    data = response.get_json()
    assert response.status_code == 200, data
    assert data["result"] == "ok"
    assert data["registration"]["name"] == "张建国"
    assert data["registration"]["phone_masked"] == "138****1234"
    assert data["cadre_id"] == door.zhang.id
    [registration] = registrations_of(door.zhang)
    assert registration.phone == door.zhang.phone
    assert registration.walk_in
    assert registration.status == RegistrationStatus.CONFIRMED
    assert registration.town_id == door.chengguan.id
    checkin = db.session.scalar(select(CheckIn))
    assert checkin.registration_id == registration.id
    assert checkin.method == "roster"
    assert db.session.scalar(select(ScanLog.method)) == "roster"

    again = roster_check_in(client, door, door.zhang.id, bearer(token), nonce="n-2")
    assert again.get_json()["result"] == "already_checked_in"
    repeated = roster_check_in(client, door, door.zhang.id, bearer(token), nonce="n-1")
    assert repeated.get_json()["result"] == "ok"  # the stored answer
    assert len(registrations_of(door.zhang)) == 1
    assert live_checkins() == 1


def test_roster_check_in_before_the_window_is_overridden_by_organizers_only(client, make):
    """The roster door follows the session window like a scan: not_now registers nobody; an
    organizer may check the cadre in anyway with a reason (kept on the check-in and in the
    log); a checker sending a reason gets 403 (it was ignored: not_now)."""
    door = build_door(make, under_way=False)
    checker, organizer = bearer(token_for(door.checker)), bearer(token_for(door.organizer))
    early = roster_check_in(client, door, door.zhang.id, checker)
    assert early.get_json()["result"] == "not_now"
    refused = roster_check_in(client, door, door.zhang.id, checker, override_reason="来早了")
    assert refused.status_code == 403
    assert refused.get_json()["error"] == "forbidden"
    assert registrations_of(door.zhang) == []
    anyway = roster_check_in(client, door, door.zhang.id, organizer, override_reason="提前报到")
    assert anyway.get_json()["result"] == "ok"
    [registration] = registrations_of(door.zhang)
    checkin = db.session.scalar(select(CheckIn))
    assert (checkin.registration_id, checkin.method) == (registration.id, "roster")
    assert checkin.window_override_reason == "提前报到"
    logged = db.session.execute(
        select(ScanLog.result, ScanLog.window_override_reason).order_by(ScanLog.id)
    ).all()
    assert logged == [("not_now", None), ("ok", "提前报到")]


def test_registration_and_check_in_are_one_transaction(app, client, door, monkeypatch):
    """A failure after the registration was written leaves no registration behind."""
    token = token_for(door.checker)

    def broken(*args, **kwargs):
        raise RuntimeError("the check-in failed")

    monkeypatch.setattr(services, "_record_checkin", broken)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = roster_check_in(client, door, door.zhang.id, bearer(token))
    assert response.status_code == 500
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Registration.id))) == 0


def test_cadre_registered_online_is_checked_in_on_that_registration(client, door):
    ticket = issue_ticket(door.training, name="张建国", phone=door.zhang.phone)
    assert ticket.registration.cadre_id == door.zhang.id  # linked by phone when registering
    token = token_for(door.checker)
    first = roster_check_in(client, door, door.zhang.id, bearer(token)).get_json()
    assert first["result"] == "ok"
    assert first["registration"]["id"] == ticket.registration_id
    scan = client.post(
        "/api/v1/checkins",
        json={"code": ticket.secret, "activity_id": door.training.id},
        headers=bearer(token),
    ).get_json()
    assert scan["result"] == "already_checked_in"
    assert len(registrations_of(door.zhang)) == 1
    assert live_checkins() == 1


def test_ticket_scanned_first_then_roster_gives_one_check_in(client, door):
    ticket = issue_ticket(door.training, name="李秀英", phone=door.li.phone)
    token = token_for(door.checker)
    scan = client.post(
        "/api/v1/checkins",
        json={"code": ticket.registration.short_code, "activity_id": door.training.id},
        headers=bearer(token),
    ).get_json()
    assert scan["result"] == "ok"
    again = roster_check_in(client, door, door.li.id, bearer(token)).get_json()
    assert again["result"] == "already_checked_in"
    assert again["checked_in_at"] == scan["checked_in_at"]
    assert live_checkins() == 1


def test_registration_unlinked_by_hand_is_used_and_linked_at_the_door(client, door):
    ticket = issue_ticket(door.training, name="李秀英", phone=door.li.phone)
    ticket.registration.cadre_id = None
    db.session.commit()
    token = token_for(door.checker)
    data = roster_check_in(client, door, door.li.id, bearer(token)).get_json()
    assert data["result"] == "ok"
    assert data["registration"]["id"] == ticket.registration_id
    db.session.expire_all()
    assert db.session.get(Registration, ticket.registration_id).cadre_id == door.li.id
    assert db.session.scalar(select(func.count(Registration.id))) == 1


def test_cadre_without_a_phone_is_checked_in_once(client, auth, door):
    token = token_for(door.checker)
    first = roster_check_in(client, door, door.wang.id, bearer(token)).get_json()
    assert first["result"] == "ok"
    assert first["registration"]["phone_masked"] == ""
    second = roster_check_in(client, door, door.wang.id, bearer(token)).get_json()
    assert second["result"] == "already_checked_in"
    [registration] = registrations_of(door.wang)
    assert registration.phone == roster_door.no_phone_key(door.wang.id)
    assert not any(c.isdigit() for c in registration.phone)
    auth.login(door.organizer)
    page = client.get(f"/manage/activities/{door.training.id}/registrations")
    assert "王老汉" in page.get_data(as_text=True)
    assert "无手机" in page.get_data(as_text=True)
    assert registration.phone not in page.get_data(as_text=True)


def test_full_training_waitlists_the_cadre_as_any_registration(client, make):
    door = build_door(make, capacity=0)
    token = token_for(door.checker)
    data = roster_check_in(client, door, door.zhang.id, bearer(token)).get_json()
    assert data["result"] == "waitlisted"
    assert live_checkins() == 0
    [registration] = registrations_of(door.zhang)
    assert registration.status == RegistrationStatus.WAITLISTED


def test_full_training_without_waitlist_refuses_with_a_message(client, make):
    door = build_door(make, capacity=0, waitlist=False)
    token = token_for(door.checker)
    response = roster_check_in(client, door, door.zhang.id, bearer(token))
    assert response.status_code == 400
    assert response.get_json()["error"] == "registration_refused"
    assert "名额已满" in response.get_json()["message"]
    assert registrations_of(door.zhang) == []


@pytest.mark.parametrize("who", ["qian", "sun"])
def test_cadres_not_invited_are_refused(client, door, who):
    token = token_for(door.checker)
    response = roster_check_in(client, door, getattr(door, who).id, bearer(token))
    assert response.status_code == 400
    assert response.get_json()["error"] == "not_invited"
    assert db.session.scalar(select(func.count(Registration.id))) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"cadre_id": "1"},
        {"cadre_id": -1},
        {"cadre_id": 2**40},
        {"cadre_id": 1.5},
        {"cadre_id": None},
        {},
        {"cadre_id": 1, "session_id": "x"},
        {"cadre_id": 1, "nonce": "a\x00b"},
        {"cadre_id": 1, "scanned_at": "yesterday"},
    ],
)
def test_bad_roster_check_in_bodies_are_a_clear_400(client, door, body):
    token = token_for(door.checker)
    response = client.post(
        f"/api/v1/activities/{door.training.id}/roster-checkins",
        json=body,
        headers=bearer(token),
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid"


# --- who may work the roster door ---------------------------------------------------------------


def test_coordinator_sees_and_checks_in_own_town_cadres_only(client, auth, door):
    auth.login(door.coordinator)
    page = client.get(f"/manage/activities/{door.training.id}/cadres")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "张建国" in text
    assert "李秀英" in text
    assert "王老汉" in text
    assert "赵东山" not in text  # 东山镇, also invited, is not theirs
    assert "钱西河" not in text
    assert door.zhang.phone not in text
    assert "138****1234" in text

    found = client.get(f"/manage/activities/{door.training.id}/cadres", query_string={"q": "赵"})
    assert "赵东山" not in found.get_data(as_text=True)
    assert "其他镇街的干部不在您的名单中" in found.get_data(as_text=True)

    done = client.post(
        f"/manage/activities/{door.training.id}/cadres/checkin",
        data={"cadre_id": door.zhang.id, "session_id": door.training.sessions[0].id},
    )
    assert done.status_code == 302
    assert "签到成功" in client.get(done.headers["Location"]).get_data(as_text=True)
    assert registrations_of(door.zhang)[0].checkins[0].checked_in_by_id == door.coordinator.id


def test_coordinator_roster_search_for_another_towns_cadre_is_refused(client, auth, door):
    auth.login(door.coordinator)
    api = f"/api/v1/activities/{door.training.id}/roster/search"
    refused = client.get(api, query_string={"q": "赵东山", "town_id": door.dongshan.id})
    assert refused.status_code == 403
    assert refused.get_json()["error"] == "not_your_town"
    own = client.get(api, query_string={"q": "赵东山"})
    assert own.status_code == 200
    assert own.get_json()["entries"] == []
    assert "其他镇街" in own.get_json()["hint"]
    page = client.get(
        f"/manage/activities/{door.training.id}/cadres", query_string={"town": door.dongshan.id}
    )
    assert page.status_code == 403
    check_in = roster_check_in(client, door, door.zhao.id)
    assert check_in.status_code == 403
    assert check_in.get_json()["error"] == "not_your_town"
    form = client.post(
        f"/manage/activities/{door.training.id}/cadres/checkin",
        data={"cadre_id": door.zhao.id, "session_id": door.training.sessions[0].id},
    )
    assert form.status_code == 403
    assert registrations_of(door.zhao) == []


def test_coordinator_of_a_town_not_invited_and_unassigned_checker_are_refused(
    client, auth, door, make
):
    urls = [
        ("GET", f"/manage/activities/{door.training.id}/cadres"),
        ("POST", f"/manage/activities/{door.training.id}/cadres/checkin"),
        ("GET", f"/api/v1/activities/{door.training.id}/roster/search?q=张"),
        ("POST", f"/api/v1/activities/{door.training.id}/roster-checkins"),
    ]
    for user in (door.other_coordinator, make.user("checker"), make.user("citizen")):
        auth.login(user)
        for method, url in urls:
            kwargs = {"json": {"cadre_id": door.zhang.id}} if "api" in url else {}
            if method == "POST" and not kwargs:
                kwargs = {"data": {"cadre_id": door.zhang.id, "session_id": 1}}
            response = client.open(url, method=method, **kwargs)
            assert response.status_code == 403, (user.role, method, url)
        auth.logout()
    assert registrations_of(door.zhang) == []


def test_door_staff_see_every_invited_town_and_may_narrow_to_one(client, auth, door):
    auth.login(door.checker)
    text = client.get(f"/manage/activities/{door.training.id}/cadres").get_data(as_text=True)
    assert "张建国" in text
    assert "赵东山" in text
    assert "钱西河" not in text
    narrowed = client.get(
        f"/manage/activities/{door.training.id}/cadres", query_string={"town": door.dongshan.id}
    ).get_data(as_text=True)
    assert "赵东山" in narrowed
    assert "张建国" not in narrowed


def test_coordinator_finds_the_door_from_their_towns_page(client, auth, door):
    auth.login(door.coordinator)
    page = client.get(f"/manage/training/towns/{door.chengguan.id}").get_data(as_text=True)
    assert "农村基层干部科技培训" in page
    assert f"/manage/activities/{door.training.id}/cadres" in page


# --- self check-in ----------------------------------------------------------------------------


def _self_post(client, code, phone, id_tail):
    return client.post(
        f"/checkin/self/{code}", data={"cadre-phone": phone, "cadre-id_tail": id_tail}
    )


def test_roster_cadre_checks_in_themself_with_phone_and_id_tail(app, client, door):
    code = self_code(app, door)
    page = client.get(f"/checkin/self/{code}").get_data(as_text=True)
    assert 'name="cadre-id_tail"' in page
    done = _self_post(client, code, "138 6172 1234", "3１００２x")  # full-width, small x
    text = done.get_data(as_text=True)
    assert done.status_code == 200, text
    assert "签到成功" in text
    assert "张**" in text
    assert "张建国" not in text
    [registration] = registrations_of(door.zhang)
    assert registration.checkins[0].method == "self"


def test_phone_alone_or_a_wrong_tail_never_checks_a_cadre_in(app, client, door):
    code = self_code(app, door)
    alone = _self_post(client, code, door.zhang.phone, "")
    assert alone.status_code == 400
    assert "请填写身份证号后 6 位。" in alone.get_data(as_text=True)
    wrong = _self_post(client, code, door.zhang.phone, "41002X")
    assert wrong.status_code == 400
    message = "手机号与身份证号后 6 位不符"
    assert message in wrong.get_data(as_text=True)
    assert "张建国" not in wrong.get_data(as_text=True)
    # The same answer for a cadre without an ID number, a town not invited, a stranger.
    for phone, tail in (
        (door.li.phone, "123456"),
        (door.qian.phone, door.qian.id_number[-6:]),
        ("13312345678", "123456"),
    ):
        response = _self_post(client, code, phone, tail)
        assert response.status_code == 400
        assert message in response.get_data(as_text=True)
    bad = _self_post(client, code, door.zhang.phone, "12345")
    assert "后 6 位" in bad.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Registration.id))) == 0
    assert live_checkins() == 0


def test_cadre_self_check_in_after_the_door_gives_one_check_in(app, client, door):
    token = token_for(door.checker)
    roster_check_in(client, door, door.zhang.id, bearer(token))
    code = self_code(app, door)
    done = _self_post(client, code, door.zhang.phone, door.zhang.id_number[-6:])
    assert "已签到" in done.get_data(as_text=True)
    assert live_checkins() == 1
    assert len(registrations_of(door.zhang)) == 1


def test_a_training_without_a_roster_offers_no_cadre_form(app, client, make):
    training = make.activity(kind="training")
    code = make_self_code(app.config["SECRET_KEY"], training.sessions[0].id, utcnow().timestamp())
    assert 'name="cadre-id_tail"' not in client.get(f"/checkin/self/{code}").get_data(as_text=True)


# --- the offline roster -------------------------------------------------------------------------


def test_offline_roster_carries_the_cadres_masked(client, door):
    ticket = issue_ticket(door.training, name="李秀英", phone=door.li.phone)
    token = token_for(door.checker)
    response = client.get(f"/api/v1/activities/{door.training.id}/roster", headers=bearer(token))
    data = response.get_json()
    # Everything but the ticket hashes (random hex), as text.
    text = json.dumps(
        [data["cadres"], [{**r, "secret_sha256": ""} for r in data["registrations"]]],
        ensure_ascii=False,
    )
    assert names(data["cadres"]) == ["张建国", "王老汉", "赵东山"]  # 李秀英 holds a registration
    [li] = data["registrations"]
    assert li["id"] == ticket.registration_id
    assert li["cadre_id"] == door.li.id
    assert li["village"] == "城关二村"
    zhang = next(c for c in data["cadres"] if c["name"] == "张建国")
    assert zhang["phone_masked"] == "138****1234"
    assert zhang["id_masked"] == "110105********002X"
    assert zhang["village"] == "城关一村"
    for person in (door.zhang, door.li, door.wang, door.zhao):
        for secret in (person.phone, person.id_number):
            if secret:
                assert secret not in text
                assert secret[3:7] not in text  # not even the masked middle


def test_cadre_checked_in_at_the_door_moves_to_the_registrations(client, door):
    token = token_for(door.checker)
    roster_check_in(client, door, door.zhao.id, bearer(token))
    data = client.get(
        f"/api/v1/activities/{door.training.id}/roster", headers=bearer(token)
    ).get_json()
    assert "赵东山" not in names(data["cadres"])
    [zhao] = data["registrations"]
    assert zhao["name"] == "赵东山"
    assert zhao["id_masked"].endswith(door.zhao.id_number[-4:])
    assert zhao["checked_in"] == {
        str(door.training.sessions[0].id): zhao["checked_in"][str(door.training.sessions[0].id)]
    }


# --- coverage -------------------------------------------------------------------------------------


def test_roster_and_self_check_ins_count_for_coverage(app, client, auth, door, make):
    token = token_for(door.checker)
    roster_check_in(client, door, door.zhang.id, bearer(token))
    roster_check_in(client, door, door.wang.id, bearer(token))  # no phone
    code = self_code(app, door)
    assert _self_post(client, code, door.zhao.phone, door.zhao.id_number[-6:]).status_code == 200

    year = local_year_today()
    report = coverage_by_town(year)
    chengguan = next(t for t in report.towns if t.town_id == door.chengguan.id)
    dongshan = next(t for t in report.towns if t.town_id == door.dongshan.id)
    assert (chengguan.cadres, chengguan.trained, chengguan.attendances) == (3, 2, 2)
    assert (dongshan.cadres, dongshan.trained) == (1, 1)

    auth.login(make.user("admin"))
    page = client.get("/manage/training/", query_string={"year": year}).get_data(as_text=True)
    rows = re.findall(r"<tr class=\"status-\w+\">(.*?)</tr>", page, flags=re.S)
    cells = {
        re.sub(r"<[^>]+>", "", row.split("</td>")[0]).strip(): [
            re.sub(r"<[^>]+>", "", c).strip() for c in row.split("</td>")[1:4]
        ]
        for row in rows
    }
    assert cells["城关镇"] == ["3", "2", "66.7%"]
    assert cells["东山镇"] == ["1", "1", "100.0%"]
    assert re.search(r"<dt>已训人数</dt><dd>3</dd>", page)
