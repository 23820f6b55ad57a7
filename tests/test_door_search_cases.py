"""The door search from one table of cases (tests/door_search_cases.json), on the server.

The same cases run in node against static/js/scanner-core.js (tests/js/door-search.test.js),
which searches the offline roster's masked values; here ``roster_door.search_door`` searches
the full values in SQL, on SQLite and PostgreSQL. Both must find the same people.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from sciweek.checkin import roster_door
from sciweek.extensions import db
from sciweek.identity import mask_id_number, mask_phone
from sciweek.models import Cadre
from sciweek.person_query import parse_door_query
from sciweek.training.periods import add_to_roster

from .checkin_support import issue_ticket

TABLE = json.loads((Path(__file__).parent / "door_search_cases.json").read_text(encoding="utf-8"))


@pytest.fixture
def searched(make):
    town = make.town(villages=["一村"])
    training = make.activity(kind="training", town=town)
    training.roster_towns = [town]
    for person in TABLE["people"]:
        if person["kind"] in ("cadre", "registered_cadre"):
            add_to_roster(
                Cadre(
                    name=person["name"],
                    town_id=town.id,
                    village_id=town.villages[0].id,
                    phone=person["phone"],
                    id_number=person["id_number"],
                    active_from=date(2020, 1, 1),
                )
            )
    db.session.commit()
    for person in TABLE["people"]:
        if person["kind"] in ("registered_cadre", "registration"):
            issue_ticket(training, name=person["name"], phone=person["phone"])
    return training, make.user("admin")


def test_the_tables_masks_are_the_servers():
    for person in TABLE["people"]:
        assert mask_phone(person["phone"]) == person["phone_masked"]
        assert mask_id_number(person["id_number"]) == person["id_masked"]


def test_door_search_finds_as_the_table_says(searched):
    training, admin = searched
    key_of = {p["name"]: p["key"] for p in TABLE["people"]}
    found = {
        item["query"]: sorted(
            key_of[e["name"]]
            for e in roster_door.search_door(admin, training, item["query"], limit=50).entries
        )
        for item in TABLE["queries"]
    }
    assert found == {item["query"]: item["found"] for item in TABLE["queries"]}


def test_registered_cadres_are_listed_once_as_their_registration(searched):
    training, admin = searched
    entries = roster_door.search_door(admin, training, "赵东山").entries
    assert [(e["kind"], e["id_masked"][-4:]) for e in entries] == [("registration", "4490")]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("", "empty"),
        ("１２３４", "tail"),
        ("002x", "tail"),
        ("+86 138 6172 1234", "phone"),
        ("8613861721234", "phone"),
        ("13800", "digits"),
        ("张\u3000三", "name"),
        ("张" * 500, "name"),
        ("XXXX", "digits"),
    ],
)
def test_door_queries_are_read_as_the_scanner_reads_them(text, kind):
    assert parse_door_query(text).kind == kind
