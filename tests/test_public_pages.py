"""The public pages as a citizen on a phone meets them: listing filters, the month view's
day list, tickets people can keep, and the place on a map."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from sciweek.extensions import db
from sciweek.models import Registration, utcnow

from .conftest import local
from .test_activities import titles
from .test_registration import register, ticket_secret

UPCOMING = [(local(2099, 5, 17, 9, 30), local(2099, 5, 17, 11))]
FINISHED = [(local(2001, 5, 17, 9, 30), local(2001, 5, 17, 11))]
# What the filter form sends when someone only picks a kind.
KIND_ONLY = "/?q=&kind=outreach&town=&campaign=&from=&to="


def test_choosing_a_kind_keeps_from_today(client, make):
    make.activity(title="过去的下乡", kind="outreach", capacity=50, sessions=FINISHED)
    make.activity(title="将来的下乡", kind="outreach", capacity=50, sessions=UPCOMING)
    make.activity(title="将来的培训", kind="training", sessions=UPCOMING)
    assert titles(client.get(KIND_ONLY)) == ["将来的下乡"]


def test_finished_activities_say_so_and_show_no_places_left(client, make):
    activity = make.activity(title="过去的下乡", capacity=50, sessions=FINISHED)
    page = client.get("/?from=2001-01-01&to=2001-12-31").get_data(as_text=True)
    assert titles_of(page) == ["过去的下乡"]
    assert "已结束" in page
    assert "剩余名额" not in page
    detail = client.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert "已结束" in detail
    assert "剩余" not in detail


def titles_of(page: str) -> list[str]:
    return re.findall(r'<h2><a href="/activities/\d+">([^<]*)</a></h2>', page)


def test_a_reversed_date_range_shows_the_error_and_no_results(client, make):
    make.activity(title="五月的活动", sessions=UPCOMING)
    page = client.get("/?from=2099-05-18&to=2099-05-01").get_data(as_text=True)
    assert "结束日期不能早于开始日期。" in page
    assert titles_of(page) == []
    assert "没有符合条件的活动。" not in page  # the error says why, not "nothing matches"


def test_month_view_lists_the_days_with_time_title_and_place(client, make):
    town = make.town(name="青山镇")
    make.activity(title="果树修剪", town=town, venue="文化礼堂", sessions=UPCOMING)
    page = client.get("/?view=month&month=2099-05").get_data(as_text=True)
    day_list = page[page.index('class="day-list"') :]
    assert "5月17日" in day_list
    assert "09:30" in day_list
    assert "果树修剪" in day_list
    assert "青山镇 · 文化礼堂" in day_list
    empty = client.get("/?view=month&month=2099-06").get_data(as_text=True)
    assert "本月没有活动。" in empty


@pytest.fixture
def open_activity(make):
    return make.activity(title="果树修剪", capacity=1, sessions=UPCOMING)


def test_ticket_shows_a_png_qr_with_a_save_button(client, open_activity):
    secret = ticket_secret(register(client, open_activity))
    page = client.get(f"/t/{secret}").get_data(as_text=True)
    png = f"/t/{secret}/qr.png"
    assert re.search(rf'<img [^>]*src="{re.escape(png)}"', page)
    assert re.search(rf'<a [^>]*href="{re.escape(png)}"[^>]*download="[^"]+\.png"', page)
    assert "保存二维码" in page
    response = client.get(png)
    assert response.mimetype == "image/png"
    assert response.data.startswith(b"\x89PNG")


def test_a_cancelled_ticket_does_not_ask_to_show_its_qr(client, open_activity):
    secret = ticket_secret(register(client, open_activity))
    client.post(f"/t/{secret}/cancel")
    page = client.get(f"/t/{secret}").get_data(as_text=True)
    assert "已取消" in page
    assert "出示二维码" not in page
    assert "保存二维码" not in page
    assert "此报名已取消，票码不能再入场。" in page


def test_waitlisted_cancel_confirmation_does_not_promise_a_place_to_others(client, open_activity):
    ticket_secret(register(client, open_activity, phone="13800138000"))
    waiting = ticket_secret(register(client, open_activity, phone="13900139000"))
    page = client.get(f"/t/{waiting}/cancel").get_data(as_text=True)
    assert "候补" in page
    assert "名额将让给" not in page
    assert "确定要退出“果树修剪”的候补吗？退出后不能恢复。" in page


def test_confirmed_cancel_confirmation_still_mentions_the_waitlist(client, open_activity):
    secret = ticket_secret(register(client, open_activity))
    page = client.get(f"/t/{secret}/cancel").get_data(as_text=True)
    assert "取消后名额将让给候补的人" in page


def test_a_replaced_ticket_link_says_a_newer_one_exists_and_how_to_find_it(client, open_activity):
    old = ticket_secret(register(client, open_activity))
    registration = db.session.scalar(select(Registration))
    found = client.post(
        "/tickets/find", data={"phone": "13800138000", "short_code": registration.short_code}
    )
    assert found.status_code == 303
    response = client.get(f"/t/{old}")
    assert response.status_code == 410
    page = response.get_data(as_text=True)
    assert "这张电子票已有更新的链接" in page
    assert "用报名手机号找回" in page
    assert 'href="/tickets/find"' in page
    # A made-up link is only "not found": it says nothing about newer links.
    unknown = client.get("/t/" + "Q" * 32)
    assert unknown.status_code == 404
    assert "更新的链接" not in unknown.get_data(as_text=True)


def test_registration_not_yet_open_says_when_it_opens(client, make):
    opens = local(2099, 5, 1, 9)
    activity = make.activity(sessions=UPCOMING, registration_opens_at=opens)
    page = client.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert "报名尚未开始，将于 2099年5月1日 09:00 开放。" in page


def test_finished_activity_registration_problem_unchanged(client, make):
    # (guard) an activity that ended long ago still refuses registration
    activity = make.activity(sessions=FINISHED)
    assert activity.ends_at < utcnow() - timedelta(days=1)
    page = client.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert "活动已结束。" in page


def test_a_ticket_of_a_cancelled_activity_does_not_ask_to_show_its_qr(
    client, open_activity, make, auth
):
    secret = ticket_secret(register(client, open_activity))
    open_activity.status = "cancelled"
    open_activity.cancel_reason = "暴雨"
    db.session.commit()
    page = client.get(f"/t/{secret}").get_data(as_text=True)
    assert "出示二维码" not in page
    assert "/qr.png" not in page
    assert "票码不能再入场" in page


def test_login_asks_for_the_phone_number_and_accepts_it_as_typed(client, make):
    page = client.get("/login").get_data(as_text=True)
    assert re.search(r'<label for="username">手机号</label>', page)
    assert "工作人员请填写用户名" in page
    client.post(
        "/account/signup",
        data={"phone": "13800138000", "password": "secret-pass-1", "confirm": "secret-pass-1"},
    )
    client.post("/logout")
    response = client.post(
        "/login", data={"username": "+86 138-0013-8000", "password": "secret-pass-1"}
    )
    assert response.status_code == 302
    assert "我的报名" in client.get("/").get_data(as_text=True)


def test_every_page_names_a_favicon_that_is_served(client):
    page = client.get("/").get_data(as_text=True)
    icons = re.findall(r'<link rel="icon" href="([^"]+)"', page)
    assert "/favicon.ico" in icons
    for href in icons:
        with client.get(href) as response:
            assert response.status_code == 200, href
            assert response.mimetype in (
                "image/svg+xml",
                "image/vnd.microsoft.icon",
                "image/x-icon",
            )


def test_the_phone_format_error_is_english_under_lang_en(client, open_activity):
    client.get("/?lang=en")
    response = register(client, open_activity, phone="12345")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "手机号" not in page
    assert "11-digit" in page or "mobile number" in page
