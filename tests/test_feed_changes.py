"""Every change a calendar feed shows changes its ETag (issue 15, feeds at the speed of a
static file): the ETag comes from change counters (sciweek/feed_changes.py), so each
writer of what feeds show is checked here, through the pages and services that write.
Byte-identity of unchanged feeds and the comparison with the icalendar writer are here too.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from sciweek.demo import seed_demo
from sciweek.extensions import db
from sciweek.feeds import services as feed_services
from sciweek.feeds.ical import build_calendar
from sciweek.i18n import LOCAL_TZ
from sciweek.models import Activity, FeedChange, User, utcnow

from .feeds_reference import build_calendar_with_icalendar
from .test_feeds import edit_form, one_session, parse
from .test_registration import register, ticket_secret


def etag(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.data[:300]
    return response.headers["ETag"]


def counter(scope: str) -> int:
    db.session.expire_all()
    return db.session.scalar(select(FeedChange.counter).where(FeedChange.scope == scope)) or 0


# --- the back office and the other writers of public feeds -----------------------------


def test_back_office_edit_of_words_only_changes_the_etags(client, make, auth):
    activity = make.activity(title="旧标题", sessions=one_session(8))
    urls = ["/calendar.ics", f"/activities/{activity.id}.ics", "/calendar.ics?kind=outreach"]
    before = {url: etag(client, url) for url in urls}

    auth.login(make.user("admin"))
    response = client.post(
        f"/manage/activities/{activity.id}/edit", data=edit_form(activity, title="新标题")
    )
    assert response.status_code == 302
    auth.logout()

    for url in urls:
        changed = client.get(url, headers={"If-None-Match": before[url]})
        assert changed.status_code == 200, url
        assert "SUMMARY:新标题" in changed.get_data(as_text=True)


def test_publishing_a_draft_changes_the_feed(client, make, auth):
    draft = make.activity(title="草稿活动", status="draft", sessions=one_session(8))
    before = etag(client, "/calendar.ics")
    assert client.get(f"/activities/{draft.id}.ics").status_code == 404

    auth.login(make.user("admin"))
    assert client.post(f"/manage/activities/{draft.id}/publish").status_code == 302
    auth.logout()

    after = client.get("/calendar.ics", headers={"If-None-Match": before})
    assert after.status_code == 200
    assert "SUMMARY:草稿活动" in after.get_data(as_text=True)
    assert client.get(f"/activities/{draft.id}.ics").status_code == 200


def test_back_office_cancellation_changes_the_etag(client, make, auth):
    activity = make.activity(sessions=one_session(8))
    before = etag(client, f"/activities/{activity.id}.ics")
    auth.login(make.user("admin"))
    client.post(f"/manage/activities/{activity.id}/cancel", data={"reason": "暴雨预警"})
    auth.logout()
    after = client.get(f"/activities/{activity.id}.ics", headers={"If-None-Match": before})
    assert after.status_code == 200
    assert "STATUS:CANCELLED" in after.get_data(as_text=True)


def test_department_rename_in_the_back_office_changes_the_etag(client, make, auth):
    department = make.department(name="区农业局", code="nyj")
    make.activity(departments=[department], sessions=one_session(8))
    before = etag(client, "/calendar.ics")
    auth.login(make.user("admin"))
    response = client.post(
        "/manage/departments", data={"code": "nyj", "name": "区农业农村局", "former_names": ""}
    )
    assert response.status_code == 302
    auth.logout()
    assert client.get("/calendar.ics", headers={"If-None-Match": before}).status_code == 200


@pytest.mark.parametrize("what", ["town", "village", "campaign", "session", "new session"])
def test_renames_and_session_changes_change_the_etag(client, make, what):
    town = make.town(name="城关镇", code="chengguan", villages=["东村"])
    campaign = make.campaign(name="2026年科技活动周")
    activity = make.activity(
        town=town, village=town.villages[0], campaign=campaign, sessions=one_session(8)
    )
    url = f"/calendar.ics?town=chengguan&campaign={campaign.id}"
    before = etag(client, url)
    shown = {
        "town": "城关街道",
        "village": "东村社区",
        "campaign": "2026年全国科技活动周",
        "session": "DTSTART;TZID=Asia/Shanghai:",
        "new session": "（第 2/2 场）",
    }[what]
    if what == "town":
        town.name = shown
    elif what == "village":
        town.villages[0].name = shown
    elif what == "campaign":
        campaign.name = shown
    elif what == "session":
        activity.sessions[0].starts_at += timedelta(hours=1)
        activity.sessions[0].ends_at += timedelta(hours=1)
    else:
        start = activity.sessions[0].starts_at + timedelta(days=1)
        activity.sessions.append(
            type(activity.sessions[0])(starts_at=start, ends_at=start + timedelta(hours=2))
        )
    db.session.commit()

    after = client.get(url, headers={"If-None-Match": before})
    assert after.status_code == 200
    assert shown in after.get_data(as_text=True)


def test_seeding_the_demo_changes_the_feeds(client, make):
    before = etag(client, "/calendar.ics")
    seed_demo()
    db.session.commit()
    after = client.get("/calendar.ics", headers={"If-None-Match": before})
    assert after.status_code == 200
    assert after.get_data(as_text=True).count("BEGIN:VEVENT") > 10


# --- registrations and users: the personal feeds ----------------------------------------


def personal_url(user) -> str:
    token = feed_services.issue_feed_token(user)
    db.session.commit()
    return f"/calendar/{token}.ics"


def test_registering_and_cancelling_change_the_personal_feed_not_the_public_one(client, make, auth):
    citizen = make.user("citizen")
    activity = make.activity(title="报名的活动", capacity=10, sessions=one_session(8))
    url = personal_url(citizen)
    personal_before = etag(client, url)
    public_before = etag(client, "/calendar.ics")
    public_counter = counter("public")

    auth.login(citizen)
    secret = ticket_secret(register(client, activity))
    auth.logout()

    registered = client.get(url, headers={"If-None-Match": personal_before})
    assert registered.status_code == 200
    assert "SUMMARY:报名的活动" in registered.get_data(as_text=True)
    # Taking a place is not something a feed shows: the shared counter row is left alone,
    # so a rush of registrations never queues on it.
    assert counter("public") == public_counter
    assert client.get("/calendar.ics", headers={"If-None-Match": public_before}).status_code == 304

    client.post(f"/t/{secret}/cancel")
    cancelled = client.get(url, headers={"If-None-Match": registered.headers["ETag"]})
    assert cancelled.status_code == 200
    assert "报名的活动" not in cancelled.get_data(as_text=True)
    assert counter("public") == public_counter


def test_assigning_a_checker_changes_their_feed(client, make, auth):
    checker = make.user("checker", username="door1")
    activity = make.activity(title="要签到的活动", sessions=one_session(8))
    url = personal_url(checker)
    before = etag(client, url)
    auth.login(make.user("admin"))
    response = client.post(f"/manage/activities/{activity.id}/checkers", data={"username": "door1"})
    assert response.status_code in (200, 302, 303)
    auth.logout()
    after = client.get(url, headers={"If-None-Match": before})
    assert after.status_code == 200
    assert "SUMMARY:要签到的活动" in after.get_data(as_text=True)


@pytest.mark.parametrize("change", ["role", "department"])
def test_a_users_role_or_department_changes_their_feed(client, make, change):
    organizer = make.user("organizer")
    other_department = make.department()
    make.activity(title="本部门活动", departments=[organizer.department], sessions=one_session(8))
    make.activity(title="别的部门活动", departments=[other_department], sessions=one_session(8))
    url = personal_url(organizer)
    before = etag(client, url)
    if change == "role":
        organizer.role = "admin"
    else:
        organizer.department = other_department
    db.session.commit()
    after = client.get(url, headers={"If-None-Match": before})
    assert after.status_code == 200
    assert "SUMMARY:别的部门活动" in after.get_data(as_text=True)


def test_a_feed_change_is_counted_only_when_its_transaction_commits(client, make):
    activity = make.activity(title="原标题", sessions=one_session(8))
    before = etag(client, "/calendar.ics")
    activity.title = "不会保存的标题"
    db.session.flush()
    db.session.rollback()
    assert client.get("/calendar.ics", headers={"If-None-Match": before}).status_code == 304


def test_another_process_change_is_seen_within_the_remembered_time(app, client, make):
    """What another process commits is not announced here: it shows once the remembered
    counters expire (0 s: at once)."""
    activity_id = make.activity(title="原标题", sessions=one_session(8)).id
    before = etag(client, "/calendar.ics")
    db.session.close()  # SQLite: no reading transaction left holding the file
    with db.engine.begin() as connection:  # as another process would: no session, no hook
        connection.execute(
            FeedChange.__table__.update()
            .where(FeedChange.scope == "public")
            .values(counter=FeedChange.counter + 1)
        )
        connection.execute(
            Activity.__table__.update().where(Activity.id == activity_id).values(title="别处改的")
        )
    assert client.get("/calendar.ics", headers={"If-None-Match": before}).status_code == 304
    app.config["SCIWEEK_FEED_VERSION_CACHE_SECONDS"] = 0
    after = client.get("/calendar.ics", headers={"If-None-Match": before})
    assert after.status_code == 200
    assert "SUMMARY:别处改的" in after.get_data(as_text=True)


def test_midnight_changes_the_etag_old_activities_drop_out(app, make):
    make.activity(sessions=one_session(3))
    feed = feed_services.public_feed({})
    now = utcnow()
    today = feed_services.feed_version(feed, "zh", "https://x.cn", now)
    same_day = feed_services.feed_version(
        feed, "zh", "https://x.cn", now.astimezone(LOCAL_TZ).replace(hour=23, minute=59)
    )
    tomorrow = feed_services.feed_version(feed, "zh", "https://x.cn", now + timedelta(days=1))
    assert today.etag == same_day.etag
    assert today.etag != tomorrow.etag


# --- the same bytes for the same data ----------------------------------------------------


def test_two_builds_of_an_unchanged_feed_are_byte_identical(app, make):
    town = make.town(name="城关镇", code="chengguan", villages=["东村"])
    for n in range(3):
        make.activity(
            title=f"活动{n}, 含逗号; 分号",
            town=town,
            village=town.villages[0],
            description="第一行\n第二行 " + "长" * 80,
            latitude=30.25,
            longitude=120.125,
            sessions=[one_session(3 + n)[0], one_session(4 + n)[0]],
        )
    feed = feed_services.public_feed({})
    first = feed_services.render_feed(feed, "https://sciweek.example.cn")
    db.session.expire_all()
    second = feed_services.render_feed(feed, "https://sciweek.example.cn")
    assert first == second
    assert first.count(b"BEGIN:VEVENT") == 6


def test_direct_writer_gives_icalendars_bytes_on_the_demo_data(app):
    """The text writer against the icalendar object model it replaced, on every feed of
    the demo data: the same bytes (so also the same meaning for every parser)."""
    seed_demo()
    db.session.commit()
    base = "https://sciweek.example.cn"
    feeds = [feed_services.public_feed({})]
    feeds += [feed_services.public_feed({"kind": k}) for k in ("outreach", "training")]
    ids = db.session.scalars(select(Activity.id).order_by(Activity.id)).all()
    feeds += [f for f in (feed_services.activity_feed(i) for i in ids) if f is not None]
    staff = db.session.scalars(select(User).where(User.username.in_(["organizer", "admin"])))
    feeds += [feed_services.personal_feed(u) for u in staff]
    total = 0
    for feed in feeds:
        name, events = feed_services.feed_events(feed, base)
        written = feed_services.render_feed(feed, base)
        assert written == build_calendar(name, events)
        assert written == build_calendar_with_icalendar(name, events), feed.key
        total += len(events)
    assert total > 50
    parse(feed_services.render_feed(feeds[0], base).decode())
