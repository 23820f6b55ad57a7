"""The public listing, month view and activity page."""

from datetime import date

from sciweek.activities.services import ListingFilters, public_activities
from sciweek.extensions import db

from .conftest import local


def titles(response):
    import re

    return re.findall(
        r'<h2><a href="/activities/\d+">([^<]*)</a></h2>', response.get_data(as_text=True)
    )


def test_listing_shows_upcoming_published_and_cancelled_not_drafts(client, make):
    make.activity(title="将来的活动", sessions=[(local(2099, 1, 5, 9), local(2099, 1, 5, 11))])
    make.activity(
        title="草稿", status="draft", sessions=[(local(2099, 1, 5), local(2099, 1, 5, 12))]
    )
    make.activity(
        title="取消的", status="cancelled", sessions=[(local(2099, 1, 6), local(2099, 1, 6, 12))]
    )
    make.activity(title="过去的", sessions=[(local(2001, 1, 5), local(2001, 1, 5, 12))])
    response = client.get("/")
    assert titles(response) == ["将来的活动", "取消的"]
    assert "已取消" in response.get_data(as_text=True)


def test_filters_combine(client, make):
    town = make.town(code="chengguan", name="城关镇")
    campaign = make.campaign()
    when = [(local(2099, 5, 17, 9, 30), local(2099, 5, 17, 11))]
    make.activity(title="城关下乡", kind="outreach", town=town, sessions=when)
    make.activity(title="城关培训", kind="training", town=town, sessions=when, campaign=campaign)
    make.activity(title="别处下乡", kind="outreach", sessions=when)
    assert titles(client.get("/?kind=outreach&town=chengguan")) == ["城关下乡"]
    assert titles(client.get(f"/?campaign={campaign.id}")) == ["城关培训"]
    assert sorted(titles(client.get("/?kind=outreach"))) == ["别处下乡", "城关下乡"]


def test_date_range_uses_local_days(client, make):
    # 00:30 on 18 May in Shanghai is still 17 May in UTC.
    make.activity(title="午夜后", sessions=[(local(2099, 5, 18, 0, 30), local(2099, 5, 18, 2))])
    assert titles(client.get("/?from=2099-05-18&to=2099-05-18")) == ["午夜后"]
    assert titles(client.get("/?from=2099-05-17&to=2099-05-17")) == []


def test_search_by_words_and_like_characters_are_literal(client, make):
    when = [(local(2099, 1, 5), local(2099, 1, 5, 12))]
    make.activity(title="果树修剪技术", sessions=when)
    make.activity(title="100% 纯科普", sessions=when)
    assert titles(client.get("/?q=果树")) == ["果树修剪技术"]
    assert titles(client.get("/?q=%25")) == ["100% 纯科普"]
    assert titles(client.get("/?q=修剪 果树")) == ["果树修剪技术"]


def test_bad_filter_values_get_messages_not_500(client, make):
    response = client.get("/?kind=nosuch&from=2099-13-40&town=<b>&campaign=abc&to=1800-01-01")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "不是有效的选择" in page
    assert "<b>" not in page


def test_pagination(client, make):
    when = [(local(2099, 1, 5), local(2099, 1, 5, 12))]
    for i in range(25):
        make.activity(title=f"活动{i:02d}", sessions=when)
    first, second = client.get("/"), client.get("/?page=2")
    assert len(titles(first)) == 20
    assert len(titles(second)) == 5
    assert "第 1 / 2 页" in first.get_data(as_text=True)
    assert client.get("/?page=99").status_code == 200


def test_times_shown_in_shanghai_with_chinese_dates(client, make):
    activity = make.activity(sessions=[(local(2099, 5, 17, 9, 30), local(2099, 5, 17, 11))])
    assert activity.sessions[0].starts_at.utcoffset().total_seconds() == 0  # stored UTC
    page = client.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert "2099年5月17日 09:30–11:00" in page


def test_english_is_selectable(client, make):
    activity = make.activity(sessions=[(local(2099, 5, 17, 9, 30), local(2099, 5, 17, 11))])
    page = client.get(f"/activities/{activity.id}?lang=en").get_data(as_text=True)
    assert "17 May 2099 09:30" in page
    assert "Sessions" in page
    # The choice sticks (cookie).
    assert "Sessions" in client.get(f"/activities/{activity.id}").get_data(as_text=True)


def test_month_view_places_sessions_on_local_days(client, make):
    make.activity(
        title="月历里的活动", sessions=[(local(2099, 5, 17, 9, 30), local(2099, 5, 17, 11))]
    )
    page = client.get("/?view=month&month=2099-05").get_data(as_text=True)
    assert "2099年5月" in page
    assert "09:30 月历里的活动" in page
    assert client.get("/?view=month&month=bogus").status_code == 200


def test_activity_page_shows_sessions_place_organizer_and_places_left(client, make):
    town = make.town(name="青山镇", villages=["青山一村"])
    department = make.department(name="区科协")
    activity = make.activity(
        town=town,
        village=town.villages[0],
        departments=[department],
        capacity=50,
        confirmed_count=8,
        kind="training",
        sessions=[
            (local(2099, 3, 1, 9), local(2099, 3, 1, 11)),
            (local(2099, 3, 2, 9), local(2099, 3, 2, 11)),
        ],
    )
    page = client.get(f"/activities/{activity.id}").get_data(as_text=True)
    for text in (
        "青山镇",
        "青山一村",
        "区科协",
        "剩余 42",
        "2099年3月1日 09:00–11:00",
        "2099年3月2日",
        "2 学时",
    ):
        assert text in page


def test_unknown_and_draft_activity_is_404_for_public(client, make):
    draft = make.activity(status="draft")
    assert client.get(f"/activities/{draft.id}").status_code == 404
    assert client.get("/activities/999999").status_code == 404
    assert "页面不存在" in client.get("/activities/999999").get_data(as_text=True)


def test_listing_query_filters_by_session_dates(app, make):
    make.activity(title="A", sessions=[(local(2099, 2, 1), local(2099, 2, 1, 12))])
    stmt = public_activities(ListingFilters(date_from=date(2099, 2, 2)))
    assert db.session.scalars(stmt).all() == []
