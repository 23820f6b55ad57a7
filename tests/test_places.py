"""Towns, villages and campaigns in the web UI (admins): order, renames with history,
merging and moving villages, and the refusals of bad input."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from sciweek.choices import town_choices, village_choices
from sciweek.extensions import db
from sciweek.feed_changes import PUBLIC_SCOPE
from sciweek.models import (
    Activity,
    Cadre,
    CadrePeriod,
    Campaign,
    Registration,
    Town,
    TownAlias,
    Village,
)
from sciweek.placenames import natural_sorted, with_former_name
from sciweek.places.services import PlaceError, add_town, merge_villages
from sciweek.training.coverage import coverage_by_town
from sciweek.training.roster import parse_roster
from sciweek.training.services import check_roster

from .checkin_support import register_person
from .query_count import count_queries
from .test_feed_changes import counter
from .test_training_import import HEADER, xlsx_bytes
from .training_helpers import attend, cadre, training

# --- pure rules -------------------------------------------------------------------------------


def test_villages_read_in_natural_order():
    assert natural_sorted(["10组", "2组", "1组"]) == ["1组", "2组", "10组"]
    assert natural_sorted(["十村", "二村", "十一村", "一村"]) == ["一村", "二村", "十村", "十一村"]
    assert natural_sorted(["城关10村", "城关9村", "城关一村"]) == [
        "城关一村",
        "城关9村",
        "城关10村",
    ]


def test_a_rename_keeps_the_old_name_once():
    assert with_former_name("", "农业局", "农业农村局") == "农业局"
    assert with_former_name("农业局", "农业局", "新名") == "农业局"
    assert with_former_name("甲、乙", "丙", "乙") == "甲、丙"  # a name taken back is current
    assert with_former_name("甲", "", "乙") == "甲"


# --- towns ------------------------------------------------------------------------------------


def test_admin_adds_a_town_and_its_order_is_used_everywhere(client, auth, make, runner):
    make.town(name="阿镇", code="a")
    make.town(name="波镇", code="b")
    auth.login(make.user("admin"))
    response = client.post(
        "/manage/places/towns", data={"name": "城关镇", "code": "chengguan", "position": "0"}
    )
    assert response.status_code == 302
    chengguan = db.session.scalar(select(Town).where(Town.code == "chengguan"))
    # Position 0 with the others at 0: by code, a < b < chengguan; now put it first.
    db.session.execute(Town.__table__.update().values(position=5))
    db.session.commit()
    response = client.post(
        f"/manage/places/towns/{chengguan.id}",
        data={"name": "城关镇", "code": "chengguan", "position": "1", "former_names": ""},
    )
    assert response.status_code == 302
    db.session.expire_all()
    expected = ["城关镇", "阿镇", "波镇"]
    assert [name for _id, name in town_choices()] == expected
    assert [t.name for t in coverage_by_town(2026).towns] == expected
    page = client.get("/manage/places/towns").get_data(as_text=True)
    assert page.index("城关镇") < page.index("阿镇") < page.index("波镇")
    listing = client.get("/").get_data(as_text=True)
    assert listing.index(">城关镇<") < listing.index(">阿镇<") < listing.index(">波镇<")
    assert runner.invoke(args=["town", "list"]).output.splitlines()[0].startswith("1\tchengguan")
    # Without a position a new town comes last.
    client.post("/manage/places/towns", data={"name": "新镇", "code": "new"})
    assert [name for _id, name in town_choices()][-1] == "新镇"


@pytest.mark.parametrize(
    ("data", "field_message"),
    [
        ({"name": "甲\x00镇", "code": "jia2"}, "控制字符"),
        ({"name": "长" * 65, "code": "long"}, "名称不能超过 64 个字"),
        ({"name": "甲镇", "code": "jia2"}, "已是镇街“甲镇”的名称"),
        ({"name": " 甲 镇 ", "code": "jia2"}, "已是镇街“甲镇”的名称"),
        ({"name": "乙镇", "code": "jia"}, "已是镇街“甲镇”的代码"),
        ({"name": "城关", "code": "cg"}, "已是镇街“甲镇”的别名"),
        ({"name": "乙镇", "code": "乙"}, "代码只能用英文字母"),
        ({"name": "乙镇", "code": "x" * 33}, "代码不能超过 32 个字符"),
        ({"name": "乙镇", "code": "yi", "position": "10000"}, "排序号须在 0 到 9999 之间"),
        ({"name": "乙镇", "code": "yi", "position": "一"}, "请填写整数"),
        ({"name": "", "code": "yi"}, "请填写名称"),
    ],
)
def test_bad_towns_are_refused_beside_the_field(client, auth, make, data, field_message):
    town = make.town(name="甲镇", code="jia")
    client.application.test_cli_runner().invoke(args=["town", "alias", "add", "jia", "城关"])
    auth.login(make.user("admin"))
    response = client.post("/manage/places/towns", data=data)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert field_message in page
    assert 'class="error"' in page
    assert db.session.scalar(select(func.count(Town.id))) == 1
    # The same on the edit page of another town.
    other = make.town(name="丙镇", code="bing")
    edit = {"position": "0", **data, "former_names": ""}
    if data.get("name") == "甲镇" or data.get("code") == "jia":
        response = client.post(f"/manage/places/towns/{other.id}", data=edit)
        assert response.status_code == 200
        assert field_message in response.get_data(as_text=True)
    assert town.name == "甲镇"


def test_the_command_line_applies_the_same_rules(runner, make):
    make.town(name="甲镇", code="jia")
    assert runner.invoke(args=["town", "add", "乙镇", "--code", "乙"]).exit_code != 0
    result = runner.invoke(args=["town", "alias", "add", "jia", "乙镇"])
    assert result.exit_code == 0
    result = runner.invoke(args=["town", "add", "乙镇", "--code", "yi"])
    assert result.exit_code != 0
    assert "别名" in result.output
    result = runner.invoke(args=["town", "add", "丙镇", "--code", "bing", "--position", "3"])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(Town.position).where(Town.code == "bing")) == 3


def test_town_aliases_are_added_and_removed_on_the_town_page(client, auth, make):
    town = make.town(name="城关镇", code="chengguan")
    make.town(name="河西街道", code="hexi")
    auth.login(make.user("admin"))
    response = client.post(f"/manage/places/towns/{town.id}/aliases", data={"alias": " 城 关 "})
    assert response.status_code == 302
    assert [a.alias for a in town.aliases] == ["城关"]
    response = client.post(f"/manage/places/towns/{town.id}/aliases", data={"alias": "河西街道"})
    assert response.status_code == 200
    assert "“河西街道”已是镇街“河西街道”的名称" in response.get_data(as_text=True)
    response = client.post(f"/manage/places/towns/{town.id}/aliases", data={"alias": "hexi"})
    assert "“hexi”已是镇街“河西街道”的代码" in response.get_data(as_text=True)
    response = client.post(f"/manage/places/towns/{town.id}/aliases", data={"alias": "城关"})
    assert "“城关”已是镇街“城关镇”的别名" in response.get_data(as_text=True)
    response = client.post(f"/manage/places/towns/{town.id}/aliases", data={"alias": "城\x00"})
    assert "控制字符" in response.get_data(as_text=True)
    alias_id = town.aliases[0].id
    assert client.post(f"/manage/places/aliases/{alias_id}/remove").status_code == 302
    db.session.expire_all()
    assert town.aliases == []


def test_the_towns_page_costs_the_same_queries_for_3_towns_as_for_12(client, auth, make):
    auth.login(make.user("admin"))

    def add_towns(n):
        for _ in range(n):
            town = make.town(villages=["一村", "二村"])
            db.session.add(TownAlias(town_id=town.id, alias=f"别名{town.code}"))
        db.session.commit()

    def queries_for_page(towns):
        db.session.expire_all()  # as a new request: nothing loaded yet
        with count_queries() as statements:
            page = client.get("/manage/places/towns").get_data(as_text=True)
        assert page.count("<td>2</td></tr>") == towns  # each town's two villages
        assert page.count(">别名town") == towns
        return len(statements)

    add_towns(3)
    few = queries_for_page(3)
    add_towns(9)
    assert queries_for_page(12) == few


def _roster_check(rows):
    return check_roster(parse_roster("r.xlsx", xlsx_bytes([HEADER, *rows])))


def test_a_renamed_town_and_village_still_match_old_rosters(client, auth, make):
    town = make.town(name="城关镇", code="chengguan", villages=["东关村"])
    village = town.villages[0]
    auth.login(make.user("admin"))
    response = client.post(
        f"/manage/places/towns/{town.id}",
        data={"name": "城关街道", "code": "chengguan", "position": "0", "former_names": ""},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    response = client.post(
        f"/manage/places/villages/{village.id}", data={"name": "东关社区", "former_names": ""}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert (town.name, town.former_names) == ("城关街道", "城关镇")
    assert (village.name, village.former_names) == ("东关社区", "东关村")
    page = client.get("/manage/places/towns").get_data(as_text=True)
    assert "城关镇" in page  # the former name is shown
    row = ["1", "张三", "男", "1970.01", "村党组织书记", "城关镇", "东关村", "13800138000", ""]
    check = _roster_check([row])
    assert not check.errors, [i.message for i in check.errors]
    assert check.new_villages == []
    assert check.people[0].town_id == town.id
    assert check.people[0].village_id == village.id


def test_a_village_name_is_unique_in_its_town(client, auth, make):
    town = make.town(name="城关镇", code="chengguan", villages=["一村"])
    auth.login(make.user("admin"))
    response = client.post(f"/manage/places/towns/{town.id}/villages", data={"name": "一村"})
    assert response.status_code == 200
    assert "城关镇已有村/社区“一村”" in response.get_data(as_text=True)
    response = client.post(f"/manage/places/towns/{town.id}/villages", data={"name": "村" * 65})
    assert "名称不能超过 64 个字" in response.get_data(as_text=True)
    for name in ("10组", "2组", "二村", "十村"):
        client.post(f"/manage/places/towns/{town.id}/villages", data={"name": name})
    page = client.get(f"/manage/places/towns/{town.id}").get_data(as_text=True)
    shown = [page.index(f">{n}<") for n in ("一村", "二村", "2组", "十村", "10组")]
    assert shown == sorted(shown)


# --- merging villages -------------------------------------------------------------------------


def test_merging_two_villages_moves_everything_to_the_one_kept(client, auth, make):
    town = make.town(name="城关镇", code="chengguan", villages=["城关一村", "城关1村"])
    keep, drop = (next(v for v in town.villages if v.name == n) for n in ("城关一村", "城关1村"))
    person = cadre(town, "城关1村", name="李四")
    activity = make.activity(town=town, village=drop)
    walk_in = register_person(activity, "王五", "13900000001", drop)
    auth.login(make.user("admin"))
    page = client.post(f"/manage/places/villages/{drop.id}/merge", data={"target_id": keep.id})
    assert page.status_code == 200
    assert "确认合并" in page.get_data(as_text=True)
    response = client.post(
        f"/manage/places/villages/{drop.id}/merge", data={"target_id": keep.id, "confirmed": "1"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Village, drop.id) is None
    assert db.session.get(Cadre, person.id).village_id == keep.id
    assert {p.village_id for p in db.session.get(Cadre, person.id).periods} == {keep.id}
    assert db.session.get(Registration, walk_in.id).village_id == keep.id
    assert db.session.get(Activity, activity.id).village_id == keep.id
    assert db.session.get(Village, keep.id).former_names == "城关1村"
    # An old roster writing the merged name finds the village kept.
    row = ["1", "李四", "男", "1970.01", "村委会主任", "城关镇", "城关1村", person.phone, ""]
    assert _roster_check([row]).people[0].village_id == keep.id


def test_a_merge_giving_someone_two_registrations_is_refused_with_the_names(client, auth, make):
    town = make.town(name="城关镇", code="chengguan", villages=["一村", "1村"])
    one, other = (next(v for v in town.villages if v.name == n) for n in ("一村", "1村"))
    # Walk-ins without a phone: one per name and village per activity.
    fair = make.activity(title="科技下乡集市", town=town)
    for village in (one, other):
        db.session.add(
            Registration(
                activity_id=fair.id,
                name="赵六",
                phone=None,
                town_id=town.id,
                village_id=village.id,
                status="confirmed",
                secret_hash=f"h{village.id}",
                short_code=f"S{village.id}",
            )
        )
    db.session.commit()
    # One roster cadre listed in both villages, registered twice for one training.
    course = training(make, town, [(2026, 6, 1)])
    first = cadre(town, "一村", name="钱七")
    second = cadre(town, "1村", name="钱七")
    attend(course, first.phone, name="钱七")
    attend(course, second.phone, name="钱七")
    auth.login(make.user("admin"))
    for confirmed in ("", "1"):
        response = client.post(
            f"/manage/places/villages/{other.id}/merge",
            data={"target_id": one.id, "confirmed": confirmed},
        )
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert "赵六" in page
        assert "科技下乡集市" in page
        assert "钱七" in page
        assert course.title in page
        assert "确认合并" not in page
    db.session.expire_all()
    assert db.session.get(Village, other.id) is not None
    assert db.session.get(Cadre, second.id).village_id == other.id
    with pytest.raises(PlaceError, match="赵六"):
        merge_villages(other, one)


def test_villages_of_different_towns_are_not_merged(client, auth, make):
    a = make.town(villages=["东村"])
    b = make.town(villages=["西村"])
    auth.login(make.user("admin"))
    response = client.post(
        f"/manage/places/villages/{a.villages[0].id}/merge",
        data={"target_id": b.villages[0].id, "confirmed": "1"},
    )
    assert response.status_code == 200  # not a choice of the form
    assert db.session.get(Village, a.villages[0].id) is not None


# --- moving a village -------------------------------------------------------------------------


def test_moving_a_village_warns_about_coverage_then_moves_its_cadres(client, auth, make):
    old = make.town(name="城关镇", code="chengguan", villages=["东村", "西村"])
    new = make.town(name="河西街道", code="hexi", villages=["北村"])
    east = old.villages[0]
    movers = [cadre(old, "东村") for _ in range(3)]
    cadre(old, "西村")
    course = training(make, old, [(2026, 6, 1)])
    attend(course, movers[0].phone)
    make.user("coordinator", username="cg-coordinator", town=old)
    auth.login(make.user("admin"))
    before = {t.name: (t.cadres, t.trained) for t in coverage_by_town(2026).towns}
    assert before == {"城关镇": (4, 1), "河西街道": (0, 0)}

    response = client.post(f"/manage/places/villages/{east.id}/move", data={"town_id": new.id})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "花名册上在任的干部 3 人将从城关镇移到河西街道" in page
    assert "cg-coordinator" in page
    assert "确认移动" in page
    db.session.expire_all()
    assert db.session.get(Village, east.id).town_id == old.id  # nothing moved yet

    response = client.post(
        f"/manage/places/villages/{east.id}/move", data={"town_id": new.id, "confirmed": "1"}
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Village, east.id).town_id == new.id
    assert {db.session.get(Cadre, c.id).town_id for c in movers} == {new.id}
    assert (
        db.session.scalar(
            select(func.count(CadrePeriod.id)).where(
                CadrePeriod.village_id == east.id, CadrePeriod.town_id != new.id
            )
        )
        == 0
    )
    after = {t.name: (t.cadres, t.trained) for t in coverage_by_town(2026).towns}
    assert after == {"城关镇": (1, 0), "河西街道": (3, 1)}
    assert ("河西街道 · 东村") in [label for _id, label in village_choices()]


def test_a_village_is_not_moved_onto_a_village_of_the_same_name(client, auth, make):
    old = make.town(name="城关镇", code="chengguan", villages=["东村"])
    new = make.town(name="河西街道", code="hexi", villages=["东村"])
    auth.login(make.user("admin"))
    response = client.post(
        f"/manage/places/villages/{old.villages[0].id}/move",
        data={"town_id": new.id, "confirmed": "1"},
    )
    assert response.status_code == 200
    assert "河西街道已有同名的村/社区“东村”" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Village, old.villages[0].id).town_id == old.id


# --- campaigns --------------------------------------------------------------------------------


def test_admin_adds_and_renames_a_campaign(client, auth, make):
    auth.login(make.user("admin"))
    data = {
        "name": "2027年科技活动周",
        "kind": "st_week",
        "starts_on": "2027-05-15",
        "ends_on": "2027-05-22",
    }
    assert client.post("/manage/places/campaigns", data=data).status_code == 302
    campaign = db.session.scalar(select(Campaign))
    assert (campaign.kind, campaign.starts_on) == ("st_week", date(2027, 5, 15))
    response = client.post(
        f"/manage/places/campaigns/{campaign.id}",
        data=dict(data, name="2027年全国科技活动周", former_names=""),
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert (campaign.name, campaign.former_names) == ("2027年全国科技活动周", "2027年科技活动周")
    page = client.get("/manage/places/campaigns").get_data(as_text=True)
    assert "2027年全国科技活动周" in page
    assert "科技活动周" in page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ends_on": "2027-05-01"}, "结束日期不能早于开始日期"),
        ({"name": "已有专题"}, "已有名为“已有专题”的专题"),
        ({"name": "周\x00"}, "控制字符"),
        ({"name": "周" * 101}, "名称不能超过 100 个字"),
        ({"starts_on": "2027-13-40"}, "日期"),
        ({"starts_on": "1999-05-01"}, "日期须在 2000 年至 2100 年之间"),
        ({"kind": "party"}, "选择"),
        ({"name": ""}, "请填写名称"),
    ],
)
def test_bad_campaigns_are_refused_beside_the_field(client, auth, make, change, message):
    make.campaign(name="已有专题")
    auth.login(make.user("admin"))
    data = {"name": "新专题", "kind": "science_day", "starts_on": "2027-05-15"}
    data |= {"ends_on": "2027-05-22"} | change
    response = client.post("/manage/places/campaigns", data=data)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert message in page, page[page.find("<main") :][:2000]
    assert 'class="error"' in page
    assert db.session.scalar(select(func.count(Campaign.id))) == 1


def test_a_campaign_renamed_on_its_page_changes_the_public_feed(client, auth, make):
    campaign = make.campaign(name="2026年科技活动周")
    make.activity(campaign=campaign)
    url = f"/calendar.ics?campaign={campaign.id}"
    before = client.get(url)
    assert "2026年科技活动周" in before.get_data(as_text=True)
    auth.login(make.user("admin"))
    response = client.post(
        f"/manage/places/campaigns/{campaign.id}",
        data={
            "name": "2026年全国科技活动周",
            "kind": "st_week",
            "starts_on": "2026-05-16",
            "ends_on": "2026-05-23",
            "former_names": "",
        },
    )
    assert response.status_code == 302
    after = client.get(url, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert "2026年全国科技活动周" in after.get_data(as_text=True)


def test_a_town_added_on_the_page_shows_in_the_feed_town_filter(client, auth, make):
    before = client.get("/calendar.ics")
    auth.login(make.user("admin"))
    client.post("/manage/places/towns", data={"name": "新镇", "code": "xin"})
    after = client.get("/calendar.ics", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200  # the public counter rose


def test_admins_find_the_pages_from_the_back_office(client, auth, make):
    auth.login(make.user("admin"))
    page = client.get("/manage/").get_data(as_text=True)
    assert "/manage/places/towns" in page
    assert "/manage/places/campaigns" in page
    auth.logout()
    auth.login(make.user("organizer"))
    page = client.get("/manage/").get_data(as_text=True)
    assert "/manage/places/" not in page
    add_town("甲镇", "jia")  # the service alone, without a request, flushes
    assert db.session.scalar(select(Town.name).where(Town.code == "jia")) == "甲镇"


def test_moving_and_merging_villages_change_the_public_feeds(client, auth, make):
    old = make.town(name="城关镇", code="chengguan", villages=["东村", "西村"])
    new = make.town(name="河西街道", code="hexi")
    east, west = (next(v for v in old.villages if v.name == n) for n in ("东村", "西村"))
    make.activity(town=old, village=east)
    auth.login(make.user("admin"))
    before = counter(PUBLIC_SCOPE)
    client.post(
        f"/manage/places/villages/{west.id}/merge", data={"target_id": east.id, "confirmed": "1"}
    )
    merged = counter(PUBLIC_SCOPE)
    assert merged > before
    client.post(
        f"/manage/places/villages/{east.id}/move", data={"town_id": new.id, "confirmed": "1"}
    )
    assert counter(PUBLIC_SCOPE) > merged
    assert "河西街道" in client.get("/calendar.ics?town=hexi").get_data(as_text=True)


def test_a_department_rename_that_overflows_its_history_is_refused(client, auth, make):
    department = make.department(name="农业局", code="nyj")
    auth.login(make.user("admin"))
    data = {"code": "nyj", "name": "农业农村局", "former_names": "甲" * 199}
    response = client.post("/manage/departments", data=data)
    assert response.status_code == 200
    assert "曾用名合计不能超过 200 个字" in response.get_data(as_text=True)
    db.session.expire_all()
    assert department.name == "农业局"


def test_a_campaign_date_out_of_range_is_refused_in_english(client, auth, make):
    client.get("/?lang=en")
    auth.login(make.user("admin"))
    data = {"name": "新专题", "kind": "science_day", "starts_on": "1999-05-01"}
    response = client.post("/manage/places/campaigns", data=data | {"ends_on": "2027-05-22"})
    assert "The date must be between 2000 and 2100." in response.get_data(as_text=True)
