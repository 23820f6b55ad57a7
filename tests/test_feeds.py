"""Calendar feeds: content checked by two independent parsers, HTTP caching, tokens."""

from __future__ import annotations

import hashlib
import itertools
import re
from datetime import UTC, datetime, timedelta

import flask_babel
import pytest
import vobject
from ical.calendar_stream import IcsCalendarStream
from icalendar import Calendar
from sqlalchemy import select

from sciweek.extensions import db
from sciweek.feeds import services as feed_services
from sciweek.feeds.ical import FeedEvent, build_calendar
from sciweek.i18n import LOCAL_TZ
from sciweek.models import FeedChange, Registration, utcnow

from .query_count import count_queries

BASE = "https://sciweek.example.cn"
_phone_numbers = itertools.count(1)


# --- helpers ---------------------------------------------------------------------------


def days_ahead(days: int, hour: int = 9, minute: int = 0) -> datetime:
    """A local (Asia/Shanghai) time ``days`` from today, so tests never age out."""
    today = datetime.now(LOCAL_TZ).date() + timedelta(days=days)
    return datetime(today.year, today.month, today.day, hour, minute, tzinfo=LOCAL_TZ)


def one_session(days: int, hours: int = 2):
    start = days_ahead(days)
    return [(start, start + timedelta(hours=hours))]


def parse(text: str) -> Calendar:
    """Validate with vobject and ical (independent parsers), check what both miss.

    Returns the icalendar object for convenient reading.
    """
    vobject.readOne(text, validate=True)
    IcsCalendarStream.calendar_from_ics(text)
    cal = Calendar.from_ical(text)
    uids = [str(e["UID"]) for e in cal.walk("VEVENT")]
    assert len(uids) == len(set(uids)), "UIDs must be unique"
    timezones = {str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")}
    used = set(re.findall(r";TZID=([^:;]+)[:;]", text))
    assert used <= timezones, f"TZIDs without VTIMEZONE: {used - timezones}"
    for vevent in cal.walk("VEVENT"):
        assert vevent.decoded("DTEND") > vevent.decoded("DTSTART")
    for line in text.split("\r\n"):
        assert len(line.encode()) <= 75, f"line not folded: {line!r}"
    return cal


def events(cal: Calendar) -> dict[str, object]:
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


def get_feed(client, url: str, **kwargs) -> Calendar:
    response = client.get(url, **kwargs)
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    return parse(response.get_data(as_text=True))


def register(activity, user, status="confirmed") -> Registration:
    n = next(_phone_numbers)
    registration = Registration(
        activity_id=activity.id,
        user_id=user.id,
        name="张三",
        phone=f"138{n:08d}",
        status=status,
        secret_hash=hashlib.sha256(f"ticket{n}".encode()).hexdigest(),
        short_code=f"{n:06d}",
    )
    db.session.add(registration)
    db.session.commit()
    return registration


def edit_form(activity, **changes) -> dict:
    """The back office's edit form for ``activity`` as a browser would post it."""
    data = {
        "title": activity.title,
        "kind": activity.kind,
        "description": activity.description,
        "departments": [d.id for d in activity.departments],
        "campaign_id": str(activity.campaign_id or 0),
        "town_id": str(activity.town_id or 0),
        "village_id": str(activity.village_id or 0),
        "venue": activity.venue,
        "audience": activity.audience,
        "waitlist_enabled": "y",
    }
    for i, session in enumerate(activity.sessions):
        data[f"sessions-{i}-id"] = str(session.id)
        data[f"sessions-{i}-starts_at"] = session.starts_at.astimezone(LOCAL_TZ).strftime(
            "%Y-%m-%dT%H:%M"
        )
        data[f"sessions-{i}-ends_at"] = session.ends_at.astimezone(LOCAL_TZ).strftime(
            "%Y-%m-%dT%H:%M"
        )
    data.update(changes)
    return data


# --- content -------------------------------------------------------------------------


def test_public_feed_has_one_event_per_session_with_all_properties(client, make):
    town = make.town(name="城关镇", code="chengguan", villages=["东村"])
    first, second = one_session(10)[0], one_session(11)[0]
    activity = make.activity(
        title="农技专家进村",
        kind="outreach",
        town=town,
        village=town.villages[0],
        venue="村文化礼堂",
        latitude=30.25,
        longitude=120.125,
        description="水稻病虫害防治咨询",
        sessions=[first, second],
    )

    response = client.get("/calendar.ics")
    text = response.get_data(as_text=True)
    cal = parse(text)

    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert str(cal["PRODID"]).startswith("-//sciweek//")
    assert str(cal["VERSION"]) == "2.0"
    assert str(cal["X-WR-CALNAME"]) == "全部科技活动"
    assert str(cal["X-WR-TIMEZONE"]) == "Asia/Shanghai"
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n" in text
    assert "X-PUBLISHED-TTL:PT1H\r\n" in text
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Asia/Shanghai"]

    found = events(cal)
    uids = [f"activity-{activity.id}-session-{s.id}@sciweek.example.cn" for s in activity.sessions]
    assert sorted(found) == sorted(uids)
    vevent = found[uids[0]]
    assert "DTSTART;TZID=Asia/Shanghai:" in text
    assert vevent.decoded("DTSTART") == first[0]
    assert vevent.decoded("DTEND") == first[1]
    assert str(vevent.decoded("DTSTART").tzinfo) == "Asia/Shanghai"
    assert str(vevent["SUMMARY"]) == "农技专家进村（第 1/2 场）"
    description = str(vevent["DESCRIPTION"])
    assert description.startswith("水稻病虫害防治咨询")
    assert description.endswith(f"{BASE}/activities/{activity.id}")
    assert str(vevent["URL"]) == f"{BASE}/activities/{activity.id}"
    assert str(vevent["LOCATION"]) == "城关镇 · 东村 · 村文化礼堂"
    geo = vevent["GEO"]
    assert (geo.latitude, geo.longitude) == (30.25, 120.125)
    assert [str(c) for c in vevent["CATEGORIES"].cats] == ["科技下乡"]
    assert str(vevent["STATUS"]) == "CONFIRMED"
    assert int(vevent["SEQUENCE"]) == 0
    assert vevent.decoded("CREATED") <= utcnow()
    assert vevent.decoded("LAST-MODIFIED") == activity.updated_at.replace(microsecond=0)
    assert vevent.decoded("DTSTAMP") == activity.updated_at.replace(microsecond=0)


def test_public_feed_keeps_only_published_current_activities(client, make):
    now = utcnow()
    shown = make.activity(title="公开活动", sessions=one_session(5))
    recently_ended = make.activity(title="80天前结束", sessions=one_session(-80))
    recently_cancelled = make.activity(
        title="5天前取消",
        status="cancelled",
        cancelled_at=now - timedelta(days=5),
        sessions=one_session(3),
    )
    make.activity(title="草稿", status="draft", sessions=one_session(5))
    training = make.activity(
        title="干部培训", audience="cadres", kind="training", sessions=one_session(5)
    )
    make.activity(title="91天前结束", sessions=one_session(-91))
    make.activity(
        title="31天前取消",
        status="cancelled",
        cancelled_at=now - timedelta(days=31),
        sessions=one_session(3),
    )

    found = get_feed(client, "/calendar.ics").walk("VEVENT")

    titles = {str(e["SUMMARY"]): e for e in found}
    assert set(titles) == {
        shown.title,
        training.title,  # the listing shows trainings for cadres too (issue 15.2)
        recently_ended.title,
        f"【已取消】{recently_cancelled.title}",
    }
    assert str(titles[f"【已取消】{recently_cancelled.title}"]["STATUS"]) == "CANCELLED"
    assert "天气原因" in str(titles[f"【已取消】{recently_cancelled.title}"]["DESCRIPTION"])


def test_filters_combine_and_name_the_calendar(client, make):
    chengguan = make.town(name="城关镇", code="chengguan")
    other_town = make.town(name="新桥镇", code="xinqiao")
    week = make.campaign(name="2026年科技活动周")
    wanted = make.activity(kind="outreach", town=chengguan, campaign=week, sessions=one_session(4))
    make.activity(kind="outreach", town=other_town, campaign=week, sessions=one_session(4))
    make.activity(kind="st_week", town=chengguan, campaign=week, sessions=one_session(4))
    in_town = make.activity(kind="outreach", town=chengguan, sessions=one_session(4))

    cal = get_feed(client, f"/calendar.ics?kind=outreach&town=chengguan&campaign={week.id}")
    assert str(cal["X-WR-CALNAME"]) == "科技下乡 · 城关镇 · 2026年科技活动周"
    assert {str(e["URL"]) for e in cal.walk("VEVENT")} == {f"{BASE}/activities/{wanted.id}"}

    cal = get_feed(client, "/calendar.ics?kind=outreach&town=chengguan")
    assert str(cal["X-WR-CALNAME"]) == "科技下乡 · 城关镇"
    assert {str(e["URL"]) for e in cal.walk("VEVENT")} == {
        f"{BASE}/activities/{wanted.id}",
        f"{BASE}/activities/{in_town.id}",
    }
    assert len(get_feed(client, "/calendar.ics?kind=st_week").walk("VEVENT")) == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("kind=foo", "未知的活动类型"),
        ("town=nosuch", "未知的镇街代码"),
        ("campaign=abc", "专题编号必须是数字"),
        ("campaign=999999", "未知的专题编号"),
        ("kind=outreach&town=nosuch", "未知的镇街代码"),
    ],
)
def test_unknown_filter_values_are_a_plain_400(client, make, query, message):
    make.activity(sessions=one_session(3))
    response = client.get(f"/calendar.ics?{query}")
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert message in response.get_data(as_text=True)
    assert "BEGIN:VCALENDAR" not in response.get_data(as_text=True)


def test_single_activity_feed_and_404s(client, make):
    activity = make.activity(title="科普日开放", kind="science_day", sessions=one_session(7))
    make.activity(title="别的活动", sessions=one_session(7))
    draft = make.activity(status="draft", sessions=one_session(7))

    cal = get_feed(client, f"/activities/{activity.id}.ics")
    assert str(cal["X-WR-CALNAME"]) == "科普日开放"
    [vevent] = cal.walk("VEVENT")
    assert str(vevent["SUMMARY"]) == "科普日开放"
    assert [str(c) for c in vevent["CATEGORIES"].cats] == ["科普日"]

    assert client.get(f"/activities/{draft.id}.ics").status_code == 404
    assert client.get("/activities/999999.ics").status_code == 404
    assert client.get("/calendar/not-a-real-token.ics").status_code == 404


def test_awkward_text_is_escaped_and_folded_for_both_parsers(client, make):
    title = "讲座：水稻, 小麦; 玉米\\病虫害 🌾🐛 " + "很长的标题" * 25
    description = "第一行, 有逗号; 有分号\n第二行 emoji 🎉\r\n" + "长" * 600
    venue = "礼堂;二楼,东侧"
    activity = make.activity(
        title=title[:200], description=description, venue=venue, sessions=one_session(6)
    )

    response = client.get(f"/activities/{activity.id}.ics")
    text = response.get_data(as_text=True)
    cal = parse(text)  # vobject + ical + line lengths

    [vevent] = cal.walk("VEVENT")
    assert str(vevent["SUMMARY"]) == title[:200]
    assert str(vevent["DESCRIPTION"]).startswith(description.replace("\r\n", "\n"))
    assert str(vevent["LOCATION"]) == venue
    # The other two parsers read the same values back.
    vcal = vobject.readOne(text)
    assert vcal.vevent.summary.value == title[:200]
    assert vcal.vevent.location.value == venue
    ical_cal = IcsCalendarStream.calendar_from_ics(text)
    assert ical_cal.events[0].summary == title[:200]
    assert ical_cal.events[0].location == venue


def test_builder_alone_gives_valid_bytes():
    start = datetime(2026, 5, 17, 1, 30, tzinfo=UTC)
    data = build_calendar(
        "测试",
        [
            FeedEvent(
                uid="activity-1-session-1@example.cn",
                summary="a, b; c",
                starts_at=start,
                ends_at=start + timedelta(hours=2),
                url="https://example.cn/activities/1",
                cancelled=True,
                sequence=4,
            )
        ],
    )
    assert isinstance(data, bytes)
    cal = parse(data.decode())
    [vevent] = cal.walk("VEVENT")
    assert "DTSTART;TZID=Asia/Shanghai:20260517T093000" in data.decode()
    assert str(vevent["STATUS"]) == "CANCELLED"
    assert int(vevent["SEQUENCE"]) == 4


def test_empty_feed_is_still_a_valid_calendar(client, make):
    make.town(code="empty")
    cal = get_feed(client, "/calendar.ics?town=empty")
    assert cal.walk("VEVENT") == []
    # RFC 5545 3.6: a calendar holds at least one component; the time zone is one.
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Asia/Shanghai"]


def test_training_feed_holds_the_trainings_the_listing_shows(client, make):
    """Issue 15.2: the listing filtered by kind offers a subscribe box for that filter;
    its feed holds what the listing shows, trainings for cadres included."""
    trainings = [
        make.activity(
            title=f"农村基层干部培训{n}",
            kind="training",
            audience="cadres",
            sessions=one_session(3 + n),
        )
        for n in range(3)
    ]
    make.activity(title="科技下乡集市", kind="outreach", sessions=one_session(4))

    page = client.get("/?kind=training").get_data(as_text=True)
    assert all(t.title in page for t in trainings)
    assert "科技下乡集市" not in page
    assert 'value="https://sciweek.example.cn/calendar.ics?kind=training"' in page

    cal = get_feed(client, "/calendar.ics?kind=training")
    assert sorted(str(e["SUMMARY"]) for e in cal.walk("VEVENT")) == sorted(
        t.title for t in trainings
    )
    assert str(cal["X-WR-CALNAME"]) == "培训"


# --- changes from the back office ------------------------------------------------------


def test_back_office_time_change_raises_sequence_and_etag(client, make, auth):
    admin = make.user("admin")
    activity = make.activity(sessions=one_session(8))
    url = f"/activities/{activity.id}.ics"
    before = client.get(url)
    [old_event] = parse(before.get_data(as_text=True)).walk("VEVENT")

    auth.login(admin)
    new_start = days_ahead(9, 14)
    response = client.post(
        f"/manage/activities/{activity.id}/edit",
        data=edit_form(
            activity,
            **{
                "sessions-0-starts_at": new_start.strftime("%Y-%m-%dT%H:%M"),
                "sessions-0-ends_at": (new_start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
            },
        ),
    )
    assert response.status_code == 302
    auth.logout()

    after = client.get(url, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert after.headers["ETag"] != before.headers["ETag"]
    [new_event] = parse(after.get_data(as_text=True)).walk("VEVENT")
    assert str(new_event["UID"]) == str(old_event["UID"])
    assert int(new_event["SEQUENCE"]) > int(old_event["SEQUENCE"])
    assert new_event.decoded("DTSTART") == new_start


def test_back_office_cancellation_marks_event_cancelled(client, make, auth):
    admin = make.user("admin")
    activity = make.activity(title="科技下乡集市", sessions=one_session(8))
    [old_event] = get_feed(client, "/calendar.ics").walk("VEVENT")

    auth.login(admin)
    response = client.post(f"/manage/activities/{activity.id}/cancel", data={"reason": "暴雨预警"})
    assert response.status_code == 302
    auth.logout()

    [new_event] = get_feed(client, "/calendar.ics").walk("VEVENT")
    assert str(new_event["UID"]) == str(old_event["UID"])
    assert str(new_event["STATUS"]) == "CANCELLED"
    assert int(new_event["SEQUENCE"]) > int(old_event["SEQUENCE"])
    assert str(new_event["SUMMARY"]) == "【已取消】科技下乡集市"
    assert "暴雨预警" in str(new_event["DESCRIPTION"])


# --- HTTP ----------------------------------------------------------------------------


def backdate_feed_changes(seconds: int = 10) -> None:
    """Move every counted feed change ``seconds`` back: a response gets a Last-Modified
    only once the second of the last change is over."""
    for change in db.session.scalars(select(FeedChange)):
        change.changed_at -= timedelta(seconds=seconds)
    db.session.commit()


def test_conditional_get_answers_304_and_head_works(client, make):
    activity = make.activity(sessions=one_session(5))
    backdate_feed_changes()
    first = client.get("/calendar.ics")
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag
    assert last_modified

    not_modified = client.get("/calendar.ics", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.data == b""
    assert not_modified.headers["ETag"] == etag
    since = client.get("/calendar.ics", headers={"If-Modified-Since": last_modified})
    assert since.status_code == 304
    other_filter = client.get("/calendar.ics?kind=outreach", headers={"If-None-Match": etag})
    assert other_filter.status_code == 200

    head = client.head("/calendar.ics")
    assert head.status_code == 200
    assert head.data == b""
    assert head.headers["ETag"] == etag
    assert head.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert client.head("/calendar.ics", headers={"If-None-Match": etag}).status_code == 304

    activity.title = "改了标题"
    db.session.commit()
    changed = client.get("/calendar.ics", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert (
        client.get("/calendar.ics", headers={"If-Modified-Since": last_modified}).status_code == 200
    )


def test_if_none_match_lists_weak_tags_and_star(client, make):
    make.activity(sessions=one_session(5))
    etag = client.get("/calendar.ics").headers["ETag"]
    for header in (f'"other", W/{etag}', f'{etag}, "x"', "*"):
        assert client.get("/calendar.ics", headers={"If-None-Match": header}).status_code == 304
    for header in ('"other"', etag[:-2] + '"'):
        assert client.get("/calendar.ics", headers={"If-None-Match": header}).status_code == 200
    # If-None-Match decides when both are sent (RFC 9110 13.2.2).
    stale = {"If-None-Match": '"other"', "If-Modified-Since": "Thu, 01 Jan 2099 00:00:00 GMT"}
    assert client.get("/calendar.ics", headers=stale).status_code == 200


def test_new_activity_in_feed_changes_etag(client, make):
    make.activity(sessions=one_session(5))
    etag = client.get("/calendar.ics").headers["ETag"]
    make.activity(sessions=one_session(6))
    assert client.get("/calendar.ics", headers={"If-None-Match": etag}).status_code == 200


def test_304_does_not_build_the_feed(app, client, make, monkeypatch):
    make.activity(sessions=one_session(5))
    etag = client.get("/calendar.ics").headers["ETag"]

    def must_not_build(*args, **kwargs):
        raise AssertionError("a 304 must not build the feed")

    monkeypatch.setattr("sciweek.feeds.services.render_feed", must_not_build)
    # Remembered for a few seconds: a poll then reads nothing at all.
    with count_queries() as statements:
        assert client.get("/calendar.ics", headers={"If-None-Match": etag}).status_code == 304
    assert statements == []
    # Read every time: one statement, the feed's change counter by its primary key.
    app.config["SCIWEEK_FEED_VERSION_CACHE_SECONDS"] = 0
    with count_queries() as statements:
        assert client.get("/calendar.ics", headers={"If-None-Match": etag}).status_code == 304
    [select_statement] = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert "FROM feed_changes" in select_statement
    assert "WHERE feed_changes.scope = " in select_statement
    assert "activities" not in select_statement


def test_a_filtered_feed_is_named_and_built_with_two_reads(app, client, make):
    """The counters and the filters' names in one read, the events in another: no ORM
    object, no other statement."""
    town = make.town(name="城关镇", code="chengguan", villages=["东村"])
    for day in (5, 6):
        make.activity(town=town, sessions=one_session(day))
    app.config["SCIWEEK_FEED_VERSION_CACHE_SECONDS"] = 0
    with count_queries() as statements:
        response = client.get("/calendar.ics?town=chengguan")
    assert response.status_code == 200
    assert "X-WR-CALNAME:城关镇" in response.get_data(as_text=True)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2, selects
    assert "FROM feed_changes" in selects[0]
    assert "towns.name" in selects[0]
    assert "activity_sessions" in selects[1]


def test_unchanged_feed_is_served_from_the_build_cache(client, make, monkeypatch):
    activity = make.activity(sessions=one_session(5))
    built = []
    real_render = feed_services.render_feed

    def counting_render(*args, **kwargs):
        built.append(1)
        return real_render(*args, **kwargs)

    monkeypatch.setattr("sciweek.feeds.services.render_feed", counting_render)
    first = client.get("/calendar.ics").data
    assert client.get("/calendar.ics").data == first
    assert len(built) == 1

    activity.title = "新标题"
    db.session.commit()
    changed = client.get("/calendar.ics").get_data(as_text=True)
    assert len(built) == 2
    assert "SUMMARY:新标题" in changed


def test_build_cache_stays_within_its_size():
    cache = feed_services.RenderedFeedCache(max_bytes=10)
    cache.put("a", b"12345")
    cache.put("b", b"12345")
    assert cache.get("a") == b"12345"  # now the most recently used
    cache.put("c", b"123")
    assert cache.get("b") is None
    assert cache.get("a") == b"12345"
    assert cache.get("c") == b"123"
    cache.put("huge", b"x" * 11)
    assert cache.get("huge") is None


def test_language_changes_the_etag_and_categories(client, make):
    make.activity(sessions=one_session(5))
    zh = client.get("/calendar.ics?lang=zh")
    # The test app context outlives requests, and Flask-Babel caches the locale on it.
    flask_babel.refresh()
    en = client.get("/calendar.ics?lang=en")
    assert zh.headers["ETag"] != en.headers["ETag"]
    [vevent] = parse(en.get_data(as_text=True)).walk("VEVENT")
    # The kind label comes from the English catalogue (compiled by `make install-dev`).
    assert [str(c) for c in vevent["CATEGORIES"].cats] == ["Science to the countryside"]


def test_feed_query_count_does_not_grow_with_size(client, make):
    town = make.town(code="big", villages=["一村"])
    departments = [make.department()]

    def add(n):
        for _ in range(n):
            make.activity(
                town=town,
                village=town.villages[0],
                departments=departments,
                sessions=[one_session(3)[0], one_session(4)[0]],
            )

    def queries_for_feed(expected_events):
        with count_queries() as statements:
            response = client.get("/calendar.ics?town=big")
        assert len(parse(response.get_data(as_text=True)).walk("VEVENT")) == expected_events
        return len(statements)

    add(5)
    small = queries_for_feed(10)
    add(45)
    large = queries_for_feed(100)
    assert small == large
    assert small <= 10


# --- personal feeds ------------------------------------------------------------------


def test_citizen_feed_holds_their_registrations(client, make):
    citizen = make.user("citizen")
    other = make.user("citizen")
    registered = make.activity(title="已报名", sessions=one_session(5))
    cancelled_by_organizer = make.activity(
        title="组织方取消", status="cancelled", cancelled_at=utcnow(), sessions=one_session(6)
    )
    i_cancelled = make.activity(title="我取消了", sessions=one_session(7))
    waitlisted = make.activity(title="候补中", sessions=one_session(8))
    make.activity(title="没报名", sessions=one_session(9))
    someone_elses = make.activity(title="别人的", sessions=one_session(9))
    draft = make.activity(title="草稿", status="draft", sessions=one_session(9))
    register(registered, citizen)
    register(cancelled_by_organizer, citizen)
    register(i_cancelled, citizen, status="cancelled")
    register(waitlisted, citizen, status="waitlisted")
    register(someone_elses, other)
    register(draft, citizen)
    token = feed_services.issue_feed_token(citizen)
    db.session.commit()

    response = client.get(f"/calendar/{token}.ics")
    assert response.headers["Cache-Control"].startswith("private")
    cal = parse(response.get_data(as_text=True))
    assert str(cal["X-WR-CALNAME"]) == "我的报名"
    summaries = {str(e["SUMMARY"]): str(e["STATUS"]) for e in cal.walk("VEVENT")}
    assert summaries == {
        "已报名": "CONFIRMED",
        "【已取消】组织方取消": "CANCELLED",
        "候补中": "CONFIRMED",
    }


def test_staff_feed_holds_the_activities_they_run(client, make):
    organizer = make.user("organizer")
    checker = make.user("checker")
    mine = make.activity(
        title="本部门", departments=[organizer.department], sessions=one_session(5)
    )
    cadres = make.activity(
        title="本部门干部培训",
        kind="training",
        audience="cadres",
        departments=[organizer.department],
        sessions=one_session(6),
    )
    make.activity(title="其他部门", sessions=one_session(5))
    make.activity(title="本部门草稿", status="draft", departments=[organizer.department])
    checker.assigned_activities = [mine]
    db.session.commit()
    organizer_token = feed_services.issue_feed_token(organizer)
    checker_token = feed_services.issue_feed_token(checker)
    db.session.commit()

    cal = get_feed(client, f"/calendar/{organizer_token}.ics")
    assert str(cal["X-WR-CALNAME"]) == "我的活动"
    assert {str(e["URL"]) for e in cal.walk("VEVENT")} == {
        f"{BASE}/activities/{mine.id}",
        f"{BASE}/activities/{cadres.id}",
    }
    cal = get_feed(client, f"/calendar/{checker_token}.ics")
    assert {str(e["URL"]) for e in cal.walk("VEVENT")} == {f"{BASE}/activities/{mine.id}"}


def test_disabled_user_feed_is_gone(client, make):
    citizen = make.user("citizen")
    token = feed_services.issue_feed_token(citizen)
    citizen.is_enabled = False
    db.session.commit()
    assert client.get(f"/calendar/{token}.ics").status_code == 404


def test_account_page_shows_link_once_and_reset_replaces_it(client, make, auth):
    citizen = make.user("citizen")
    registered = make.activity(title="我的活动一", sessions=one_session(5))
    register(registered, citizen)

    assert client.get("/account/calendar").status_code == 302  # login first
    auth.login(citizen)

    first = client.get("/account/calendar")
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "no-store"
    page = first.get_data(as_text=True)
    url = re.search(rf'value="({re.escape(BASE)}/calendar/[A-Za-z0-9_-]{{43}}\.ics)"', page)[1]
    assert f'href="webcal://{url[len("https://") :]}"' in page
    assert db.session.get(type(citizen), citizen.id).feed_token_hash is not None
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    assert token not in (citizen.feed_token_hash or "")  # only the hash is stored
    cal = get_feed(client, url[len(BASE) :])
    assert [str(e["SUMMARY"]) for e in cal.walk("VEVENT")] == ["我的活动一"]

    again = client.get("/account/calendar").get_data(as_text=True)
    assert "/calendar/" not in again.replace("/account/calendar", "")
    assert "重新生成链接" in again

    reset = client.post("/account/calendar").get_data(as_text=True)
    new_url = re.search(rf'value="({re.escape(BASE)}/calendar/[A-Za-z0-9_-]{{43}}\.ics)"', reset)[1]
    assert new_url != url
    assert "旧链接已失效" in reset
    assert client.get(url[len(BASE) :]).status_code == 404
    assert client.get(new_url[len(BASE) :]).status_code == 200


# --- subscribe UI --------------------------------------------------------------------


def test_listing_subscribe_box_carries_valid_filters(client, make):
    make.town(name="城关镇", code="chengguan")
    week = make.campaign()
    make.activity(sessions=one_session(5))

    page = client.get(f"/?kind=outreach&town=chengguan&campaign={week.id}&q=x").get_data(
        as_text=True
    )
    query = f"kind=outreach&amp;town=chengguan&amp;campaign={week.id}"
    assert f'href="webcal://sciweek.example.cn/calendar.ics?{query}"' in page
    assert f'value="{BASE}/calendar.ics?{query}"' in page
    assert f'href="/calendar.ics?{query}" download' in page
    for help_for in ("苹果", "谷歌", "Outlook", "微信"):
        assert help_for in page

    page = client.get("/?kind=foo&town=chengguan").get_data(as_text=True)
    assert 'value="https://sciweek.example.cn/calendar.ics?town=chengguan"' in page


def test_activity_page_offers_its_own_feed(client, make):
    activity = make.activity(sessions=one_session(5))
    page = client.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert f'href="webcal://sciweek.example.cn/activities/{activity.id}.ics"' in page
    assert f'value="{BASE}/activities/{activity.id}.ics"' in page
    assert f'href="/activities/{activity.id}.ics" download' in page


def test_personal_feed_changes_when_its_owner_registers_for_an_older_activity(client, make):
    citizen = make.user("citizen")
    first = make.activity(title="较新的活动", sessions=one_session(5))
    older = make.activity(title="较早编辑的活动", sessions=one_session(6))
    older.updated_at = first.updated_at - timedelta(days=30)  # edited before the other
    register(first, citizen)
    token = feed_services.issue_feed_token(citizen)
    db.session.commit()
    response = client.get(f"/calendar/{token}.ics")
    assert response.status_code == 200
    since = response.headers.get("Last-Modified") or "Thu, 01 Jan 2099 00:00:00 GMT"
    register(older, citizen)
    again = client.get(f"/calendar/{token}.ics", headers={"If-Modified-Since": since})
    assert again.status_code == 200
    assert "较早编辑的活动" in again.get_data(as_text=True)
