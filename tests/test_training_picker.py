"""The unmatched-attendees page finds cadres by a search (issue 13.13), not a select listing
every cadre on every row: the JSON endpoint, its scope and masking, and the page without
JavaScript."""

from __future__ import annotations

from datetime import date

import pytest

from sciweek.extensions import db
from sciweek.models import Registration
from sciweek.training.periods import move_cadre

from .training_helpers import attend, cadre, training

SEARCH = "/manage/training/cadres/search"


@pytest.fixture
def roster(make):
    north = make.town(name="城关镇", code="a-chengguan", villages=["城关一村", "城关二村"])
    south = make.town(name="河西街道", code="b-hexi", villages=["河西一村"])
    people = {
        "张三": cadre(
            north, "城关一村", name="张三", phone="13800001234", id_number="11010519491231002X"
        ),
        "张四": cadre(south, "河西一村", name="张四", phone="13800005678"),
        "李五": cadre(north, "城关二村", name="李五", phone="13900007777"),
        "王六": cadre(north, "城关一村", name="王六", phone="13700006666"),
    }
    # 王六 serves in 河西街道 from 2027.
    move_cadre(
        people["王六"],
        town_id=south.id,
        village_id=south.villages[0].id,
        posts="",
        on=date(2027, 1, 1),
    )
    db.session.commit()
    return north, south, people


def _names(response) -> list[str]:
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    return [c["name"] for c in response.get_json()["cadres"]]


def test_search_finds_by_name_village_and_last_digits_masked(client, auth, make, roster):
    auth.login(make.user("admin"))
    response = client.get(SEARCH, query_string={"q": "张", "year": 2026})
    assert _names(response) == ["张三", "张四"]
    first = response.get_json()["cadres"][0]
    assert first | {"id": None} == {
        "id": None, "name": "张三", "town": "城关镇", "village": "城关一村", "posts": "",
        "phone_masked": "138****1234", "id_masked": "110105********002X",
        "label": "张三（城关镇·城关一村，138****1234，110105********002X）",
    }  # fmt: skip
    # Never a full phone or ID number.
    assert "13800001234" not in response.get_data(as_text=True)
    assert "11010519491231002X" not in response.get_data(as_text=True)
    assert _names(client.get(SEARCH, query_string={"q": "城关二村", "year": 2026})) == ["李五"]
    assert _names(client.get(SEARCH, query_string={"q": "1234", "year": 2026})) == ["张三"]
    assert _names(client.get(SEARCH, query_string={"q": "002x", "year": 2026})) == ["张三"]
    # Other digit strings find nobody (trying numbers tells nothing), with a hint.
    response = client.get(SEARCH, query_string={"q": "38000012", "year": 2026})
    assert _names(response) == []
    assert "后 4 位" in response.get_json()["hint"]
    # An admin may narrow to a town.
    _north, south, _people = roster
    found = client.get(SEARCH, query_string={"q": "张", "year": 2026, "town_id": south.id})
    assert _names(found) == ["张四"]


def test_search_is_scoped_to_the_coordinators_town_in_that_year(client, auth, make, roster):
    north, south, _people = roster
    auth.login(make.user("coordinator", town=north))
    assert _names(client.get(SEARCH, query_string={"q": "张", "year": 2026})) == ["张三"]
    # Asking for another town changes nothing.
    found = client.get(SEARCH, query_string={"q": "张", "year": 2026, "town_id": south.id})
    assert _names(found) == ["张三"]
    # 王六 was 城关镇's in 2026 and is 河西街道's from 2027.
    assert _names(client.get(SEARCH, query_string={"q": "王六", "year": 2026})) == ["王六"]
    assert _names(client.get(SEARCH, query_string={"q": "王六", "year": 2027})) == []


@pytest.mark.parametrize(("role", "status"), [("organizer", 403), ("checker", 403), (None, 302)])
def test_search_is_for_roster_keepers_only(client, auth, make, roster, role, status):
    if role:
        auth.login(make.user(role))
    assert client.get(SEARCH, query_string={"q": "张"}).status_code == status


def test_page_without_script_searches_one_row_and_links(client, auth, make, roster):
    north, _south, people = roster
    course = training(make, north, [(2026, 4, 1)])
    stranger = attend(course, "13600000001", name="新号码", town_id=north.id)
    auth.login(make.user("coordinator", town=north))
    page = client.get("/manage/training/unmatched?year=2026").get_data(as_text=True)
    assert "<select" not in page  # no cadre list on every row
    assert "李五" not in page
    assert 'data-search-url="/manage/training/cadres/search"' in page
    assert 'src="/static/js/cadre-picker.js"' in page

    page = client.get(
        "/manage/training/unmatched",
        query_string={"year": 2026, "for": stranger.id, "q": "李"},
    ).get_data(as_text=True)
    assert "关联为：李五（城关镇·城关二村，139****7777）" in page
    assert "13900007777" not in page
    response = client.post(
        "/manage/training/unmatched?year=2026",
        data={"registration_id": stranger.id, "cadre_id": people["李五"].id},
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Registration, stranger.id).cadre_id == people["李五"].id

    # A cadre no search of this page offers (another town's) is refused with a message.
    other = attend(course, "13600000002", name="又一个", town_id=north.id)
    response = client.post(
        "/manage/training/unmatched?year=2026",
        data={"registration_id": other.id, "cadre_id": people["张四"].id},
    )
    assert "不在2026年可关联的花名册范围内" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Registration, other.id).cadre_id is None
