"""Issue 13, points 1–9: every file of the roster folder (``tests/roster_workbooks.py``), as
built and as LibreOffice saves it, gives the right people in the right towns, or a message
naming sheet, row and column."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from sciweek import create_app
from sciweek.extensions import db
from sciweek.models import Cadre, Town, TownAlias, Village
from sciweek.training.export import roster_template_workbook
from sciweek.training.roster import RosterFileError, parse_roster
from sciweek.training.services import check_roster, import_roster, roster_report

from .roster_workbooks import (
    CASES,
    COMMITTED_LIBREOFFICE,
    DISTRICT,
    build_folder,
    libreoffice_copies,
    soffice,
)

VARIANTS = ["built", "libreoffice-committed", "libreoffice-fresh"]


@pytest.fixture(scope="session")
def roster_folder(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """variant -> case -> file. LibreOffice copies exist for the .xlsx files only."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with app.test_request_context():
        template = roster_template_workbook(list(DISTRICT))
    folder = tmp_path_factory.mktemp("roster-files")
    built = build_folder(folder, template)
    variants = {"built": built, "libreoffice-committed": {}, "libreoffice-fresh": {}}
    for key, path in built.items():
        copy = COMMITTED_LIBREOFFICE / path.name
        if path.suffix == ".xlsx" and copy.exists():
            variants["libreoffice-committed"][key] = copy
    if soffice() is not None:
        xlsx = sorted({p for p in built.values() if p.suffix == ".xlsx"})
        libreoffice_copies(xlsx, folder / "libreoffice")
        for key, path in built.items():
            if path.suffix == ".xlsx":
                variants["libreoffice-fresh"][key] = folder / "libreoffice" / path.name
    return variants


@pytest.fixture
def district(make):
    towns = {}
    for name, (code, villages, aliases) in DISTRICT.items():
        town = make.town(name=name, code=code, villages=villages)
        for alias in aliases:
            db.session.add(TownAlias(town_id=town.id, alias=alias))
        towns[name] = town
    db.session.commit()
    return towns


def test_every_xlsx_has_a_committed_libreoffice_copy():
    xlsx = {c.filename for c in CASES.values() if c.filename.endswith(".xlsx")}
    committed = {p.name for p in COMMITTED_LIBREOFFICE.glob("*.xlsx")}
    assert committed == xlsx, "run: python -m tests.roster_workbooks --refresh-libreoffice"


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("key", list(CASES))
def test_roster_file_imports_as_expected(roster_folder, district, variant, key):
    case = CASES[key]
    path = roster_folder[variant].get(key)
    if path is None:
        if variant == "libreoffice-fresh" and case.filename.endswith(".xlsx"):
            pytest.skip("soffice (LibreOffice) not installed: the committed copies stand in")
        pytest.skip("LibreOffice copies are made of .xlsx files only")
    expect = case.expect
    if expect.file_error:
        with pytest.raises(RosterFileError, match=expect.file_error):
            parse_roster(path.name, path.read_bytes())
        return
    parsed = parse_roster(path.name, path.read_bytes(), include_hidden=expect.include_hidden)
    town_id = district[expect.coordinator_of].id if expect.coordinator_of else None
    check = check_roster(parsed, only_town_id=town_id)

    people: dict[str, list[str]] = {}
    for planned in check.importable:
        people.setdefault(planned.town_name, []).append(planned.name)
    assert people == expect.people
    assert_report(roster_report(check), expect)
    by_name = {r.name: r for r in parsed.rows}
    for name, values in expect.values.items():
        for attribute, value in values.items():
            assert getattr(by_name[name], attribute) == value, (name, attribute)

    # Importing gives those people in those towns (new villages confirmed).
    import_roster(
        check,
        active_from=date(2026, 1, 1),
        only_valid=True,
        new_villages=check.new_village_keys,
    )
    db.session.commit()
    stored: dict[str, list[str]] = {}
    for name, town in db.session.execute(
        select(Cadre.name, Town.name).join(Town, Town.id == Cadre.town_id).order_by(Cadre.id)
    ):
        stored.setdefault(town, []).append(name)
    assert stored == expect.people
    for town, village in expect.new_villages:
        assert db.session.scalar(
            select(Village.id).join(Town).where(Town.name == town, Village.name == village)
        )


def assert_report(report: dict, expect) -> None:
    """The JSON report says what ``expect`` says: towns, sheets, rows, messages, villages."""
    by_town = {town: len(names) for town, names in sorted(expect.people.items())}
    assert report["by_town"] == by_town
    assert report["valid_people"] == sum(by_town.values())
    if expect.sheets:
        assert report["sheets"] == expect.sheets
    if expect.rows_read is not None:
        assert report["rows_read"] == expect.rows_read
    found = [(e["sheet"], e["row"], e["column"][:1], e["message"]) for e in report["errors"]]
    assert len(found) == len(expect.errors), found
    for sheet, row, column, fragment in expect.errors:
        assert any((s, r, c) == (sheet, row, column) and fragment in m for s, r, c, m in found), (
            expect.errors,
            found,
        )
    for kind in ("warnings", "skipped"):
        messages = [i["message"] for i in report[kind]]
        for fragment in getattr(expect, kind):
            assert any(fragment in m for m in messages), (fragment, messages)
    assert [(v["town"], v["village"]) for v in report["new_villages"]] == expect.new_villages
