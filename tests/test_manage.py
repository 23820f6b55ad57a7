"""Back office: scheduling, validation beside fields, roles and department scoping."""

import pytest
from sqlalchemy import select

from sciweek.extensions import db
from sciweek.models import Activity

from .conftest import local


def activity_form(department_ids, **overrides):
    data = {
        "title": "果树修剪现场指导",
        "kind": "outreach",
        "audience": "public",
        "description": "现场讲解",
        "departments": [str(i) for i in department_ids],
        "campaign_id": "0",
        "town_id": "0",
        "village_id": "0",
        "venue": "村委会礼堂",
        "capacity": "30",
        "waitlist_enabled": "y",
        "registration_opens_at": "",
        "registration_closes_at": "",
        "sessions-0-id": "",
        "sessions-0-starts_at": "2026-12-10T09:00",
        "sessions-0-ends_at": "2026-12-10T11:30",
        "sessions-0-credit_hours": "",
        "sessions-0-note": "",
    }
    data.update(overrides)
    return data


def errors_in(response):
    import re

    return re.findall(r'class="error[^"]*" role="alert">([^<]*)<', response.get_data(as_text=True))


def test_organizer_creates_activity_in_local_time(client, make, auth):
    organizer = make.user("organizer")
    auth.login(organizer)
    response = client.post("/manage/activities/new", data=activity_form([organizer.department_id]))
    assert response.status_code == 302
    activity = db.session.scalar(select(Activity))
    assert activity.status == "draft"
    assert activity.departments == [organizer.department]
    # 09:00 in Asia/Shanghai is 01:00 UTC.
    assert activity.sessions[0].starts_at.hour == 1
    assert activity.sessions[0].starts_at == local(2026, 12, 10, 9)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"title": ""}, "请填写标题"),
        ({"title": "长" * 201}, "200"),
        ({"capacity": "-1"}, "名额须在"),
        ({"sessions-0-ends_at": "2026-12-10T08:00"}, "结束时间必须晚于开始时间"),
        ({"sessions-0-starts_at": "1899-12-10T09:00"}, "2000 年至 2100 年"),
        ({"sessions-0-starts_at": "not a date"}, "不是有效的"),
        ({"sessions-0-starts_at": "", "sessions-0-ends_at": ""}, "至少需要一个场次"),
        ({"departments": []}, "至少选择一个主办部门"),
        ({"latitude": "91", "longitude": "120"}, "纬度"),
        ({"latitude": "30"}, "经纬度须同时填写"),
        (
            {
                "registration_opens_at": "2026-12-05T09:00",
                "registration_closes_at": "2026-12-01T09:00",
            },
            "报名截止时间必须晚于报名开始时间",
        ),
    ],
)
def test_bad_values_get_messages_beside_fields(client, make, auth, overrides, message):
    organizer = make.user("organizer")
    auth.login(organizer)
    response = client.post(
        "/manage/activities/new", data=activity_form([organizer.department_id], **overrides)
    )
    assert response.status_code == 200
    errors = errors_in(response)
    assert errors, response.get_data(as_text=True)[:2000]
    assert any(message in e for e in errors), errors
    assert db.session.scalar(select(Activity)) is None


def test_village_must_belong_to_town(client, make, auth):
    organizer = make.user("organizer")
    town_a = make.town(villages=["甲村"])
    town_b = make.town(villages=["乙村"])
    auth.login(organizer)
    response = client.post(
        "/manage/activities/new",
        data=activity_form(
            [organizer.department_id],
            town_id=str(town_a.id),
            village_id=str(town_b.villages[0].id),
        ),
    )
    assert any("不属于所选镇街" in e for e in errors_in(response))


def test_organizer_cannot_touch_another_departments_activity(client, make, auth):
    organizer = make.user("organizer")
    other = make.activity(departments=[make.department()])
    auth.login(organizer)
    assert client.get(f"/manage/activities/{other.id}/edit").status_code == 403
    response = client.post(
        f"/manage/activities/{other.id}/edit",
        data=activity_form([organizer.department_id], title="改掉"),
    )
    assert response.status_code == 403
    assert client.post(f"/manage/activities/{other.id}/publish").status_code == 403
    assert (
        client.post(f"/manage/activities/{other.id}/cancel", data={"reason": "x"}).status_code
        == 403
    )
    db.session.refresh(other)
    assert other.title != "改掉"
    assert other.status == "published"


def test_organizer_cannot_hand_activity_to_unknown_department(client, make, auth):
    organizer = make.user("organizer")
    mine = make.activity(departments=[organizer.department], status="draft")
    auth.login(organizer)
    response = client.post(f"/manage/activities/{mine.id}/edit", data=activity_form([999999]))
    assert response.status_code == 200
    assert any("所选部门不存在" in e for e in errors_in(response))


def test_organizer_keeps_own_department_when_adding_partner(client, make, auth):
    organizer = make.user("organizer")
    partner = make.department()
    mine = make.activity(departments=[organizer.department], status="draft")
    auth.login(organizer)
    response = client.post(
        f"/manage/activities/{mine.id}/edit",
        data=activity_form([partner.id], **{"sessions-0-id": str(mine.sessions[0].id)}),
    )
    assert response.status_code == 302
    db.session.refresh(mine)
    assert {d.id for d in mine.departments} == {organizer.department_id, partner.id}


@pytest.mark.parametrize("role", ["coordinator", "checker", "citizen"])
def test_other_roles_get_403(client, make, auth, role):
    activity = make.activity()
    auth.login(make.user(role))
    assert client.get("/manage/activities/new").status_code == 403
    assert client.get(f"/manage/activities/{activity.id}/edit").status_code == 403
    assert client.post(f"/manage/activities/{activity.id}/publish").status_code == 403


def test_citizen_cannot_open_back_office(client, make, auth):
    auth.login(make.user("citizen"))
    assert client.get("/manage/").status_code == 403
    assert "没有权限" in client.get("/manage/").get_data(as_text=True)


def test_anonymous_is_sent_to_login(client, make):
    response = client.get("/manage/activities/new")
    assert response.status_code == 302
    assert "/login?next=" in response.headers["Location"]


def test_unknown_activity_is_404(client, make, auth):
    auth.login(make.user("admin"))
    assert client.get("/manage/activities/424242/edit").status_code == 404


def test_admin_edits_any_activity_and_edit_raises_sequence(client, make, auth):
    activity = make.activity()
    auth.login(make.user("admin"))
    session_id = activity.sessions[0].id
    data = activity_form(
        [activity.departments[0].id],
        title=activity.title,
        venue=activity.venue,
        **{
            "sessions-0-id": str(session_id),
            "sessions-0-starts_at": "2026-12-11T14:00",
            "sessions-0-ends_at": "2026-12-11T16:00",
        },
    )
    assert client.post(f"/manage/activities/{activity.id}/edit", data=data).status_code == 302
    db.session.refresh(activity)
    assert activity.sequence == 1
    assert activity.sessions[0].starts_at == local(2026, 12, 11, 14)
    # Saving again without changes leaves the sequence alone.
    client.post(f"/manage/activities/{activity.id}/edit", data=data)
    db.session.refresh(activity)
    assert activity.sequence == 1


def test_publish_and_cancel_keep_activity(client, make, auth):
    organizer = make.user("organizer")
    activity = make.activity(departments=[organizer.department], status="draft")
    auth.login(organizer)
    assert client.get(f"/activities/{activity.id}").status_code == 200  # own draft
    client.post(f"/manage/activities/{activity.id}/publish")
    db.session.refresh(activity)
    assert activity.status == "published"
    response = client.post(f"/manage/activities/{activity.id}/cancel", data={"reason": ""})
    assert "请说明取消原因" in response.get_data(as_text=True)
    client.post(f"/manage/activities/{activity.id}/cancel", data={"reason": "暴雨预警"})
    db.session.refresh(activity)
    assert activity.status == "cancelled"
    assert activity.cancel_reason == "暴雨预警"
    page = client.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert "此活动已取消" in page
    assert "暴雨预警" in page


def test_overlapping_sessions_at_same_venue_warn(client, make, auth):
    organizer = make.user("organizer")
    make.activity(
        title="已排的讲座",
        venue="村委会礼堂",
        sessions=[(local(2026, 12, 10, 10), local(2026, 12, 10, 12))],
    )
    auth.login(organizer)
    response = client.post(
        "/manage/activities/new",
        data=activity_form([organizer.department_id]),
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "时间重叠" in page
    assert "已排的讲座" in page


def test_html_typed_into_fields_is_shown_as_text(client, make, auth):
    organizer = make.user("organizer")
    auth.login(organizer)
    client.post(
        "/manage/activities/new",
        data=activity_form(
            [organizer.department_id], title="<script>alert(1)</script>", description="<b>x</b>"
        ),
    )
    activity = db.session.scalar(select(Activity))
    page = client.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_capacity_cannot_drop_below_confirmed(client, make, auth):
    organizer = make.user("organizer")
    activity = make.activity(departments=[organizer.department], capacity=10, confirmed_count=5)
    auth.login(organizer)
    response = client.post(
        f"/manage/activities/{activity.id}/edit",
        data=activity_form(
            [organizer.department_id],
            capacity="3",
            **{"sessions-0-id": str(activity.sessions[0].id)},
        ),
    )
    assert "名额不能少于此数" in response.get_data(as_text=True)
    db.session.refresh(activity)
    assert activity.capacity == 10


def test_department_list_is_editable_by_admin_only(client, make, auth):
    department = make.department(name="区农业局", code="ny")
    auth.login(make.user("organizer"))
    assert client.get("/manage/departments").status_code == 403
    auth.logout()
    auth.login(make.user("admin"))
    client.post("/manage/departments", data={"code": "ny", "name": "区农业农村局"})
    db.session.refresh(department)
    assert department.name == "区农业农村局"
    assert "区农业局" in department.former_names


@pytest.mark.parametrize(
    ("role", "present", "absent"),
    [
        ("admin", ["/manage/checkin", "/manage/training/", "/manage/departments"], []),
        ("organizer", ["/manage/checkin", "/manage/training/"], ["/manage/departments"]),
        ("coordinator", ["/manage/training/", "/manage/training/roster"], ["/manage/checkin"]),
        ("checker", ["/manage/checkin"], ["/manage/training/", "/manage/activities/new"]),
    ],
)
def test_each_role_sees_its_own_back_office_links(client, make, auth, role, present, absent):
    auth.login(make.user(role))
    page = client.get("/manage/").get_data(as_text=True)
    for link in present:
        assert f'href="{link}"' in page, link
    for link in absent:
        assert f'href="{link}"' not in page, link


def test_raising_capacity_in_the_back_office_promotes_the_waitlist(client, make, auth):
    from sciweek.models import Registration
    from sciweek.registration.services import RegistrationRequest, register_for_activity

    organizer = make.user("organizer")
    activity = make.activity(
        departments=[organizer.department],
        capacity=1,
        sessions=[(local(2099, 6, 1, 9), local(2099, 6, 1, 11))],
    )
    for n in range(3):
        register_for_activity(activity.id, RegistrationRequest(name="x", phone=f"1380000000{n}"))
    auth.login(organizer)
    response = client.post(
        f"/manage/activities/{activity.id}/edit",
        data=activity_form(
            [organizer.department_id],
            title=activity.title,
            capacity="2",
            **{
                "sessions-0-id": str(activity.sessions[0].id),
                "sessions-0-starts_at": "2099-06-01T09:00",
                "sessions-0-ends_at": "2099-06-01T11:00",
            },
        ),
    )
    assert response.status_code == 302
    db.session.expire_all()
    statuses = db.session.scalars(select(Registration.status).order_by(Registration.id)).all()
    assert statuses == ["confirmed", "confirmed", "waitlisted"]
    assert db.session.get(Activity, activity.id).confirmed_count == 2


def test_a_session_with_check_ins_cannot_be_deleted(client, make, auth):
    from sciweek.models import CheckIn
    from sciweek.registration.services import RegistrationRequest, register_for_activity

    organizer = make.user("organizer")
    activity = make.activity(
        departments=[organizer.department],
        sessions=[
            (local(2099, 6, 1, 9), local(2099, 6, 1, 11)),
            (local(2099, 6, 2, 9), local(2099, 6, 2, 11)),
        ],
    )
    first, second = activity.sessions
    issued = register_for_activity(activity.id, RegistrationRequest(name="x", phone="13800000001"))
    db.session.add(CheckIn(registration_id=issued.registration_id, session_id=first.id))
    db.session.commit()
    auth.login(organizer)
    rows = {
        "sessions-0-id": str(first.id),
        "sessions-0-starts_at": "2099-06-01T09:00",
        "sessions-0-ends_at": "2099-06-01T11:00",
        "sessions-1-id": str(second.id),
        "sessions-1-starts_at": "2099-06-02T09:00",
        "sessions-1-ends_at": "2099-06-02T11:00",
    }
    form = activity_form([organizer.department_id], title=activity.title, **rows)
    response = client.post(
        f"/manage/activities/{activity.id}/edit", data={**form, "sessions-0-remove": "y"}
    )
    assert "该场次已有签到记录" in response.get_data(as_text=True)
    response = client.post(
        f"/manage/activities/{activity.id}/edit", data={**form, "sessions-1-remove": "y"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert [s.id for s in db.session.get(Activity, activity.id).sessions] == [first.id]
    assert db.session.scalar(select(CheckIn.session_id)) == first.id
