"""The scan decision from one table of cases (tests/scan_cases.json), on every path.

The same cases run in node against static/js/scanner-core.js (tests/js/), which decides
offline; here they run through ``checkin.services.scan`` on SQLite, and on PostgreSQL on
the fast path (one statement) and on the general path.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from sciweek.checkin import services
from sciweek.checkin.codes import parse_scanned_code
from sciweek.checkin.windows import CheckInWindow
from sciweek.extensions import db
from sciweek.models import Activity, CheckIn, Registration, utcnow

from .checkin_support import (  # noqa: F401 - fixtures: SQLite, PostgreSQL fast and general
    app_config,
    backend,
    fast_path,
    issue_ticket,
    scan_path,
)

TABLE = json.loads((Path(__file__).parent / "scan_cases.json").read_text(encoding="utf-8"))
# Where the door's first session lies for a scan now, so that the scan falls where the case
# says against its check-in window (60 min before the start to 30 min after the end).
FIRST_SESSION_STARTS = {
    "open": timedelta(minutes=-30),
    "before": timedelta(hours=3),
    "after": timedelta(hours=-4),
}


def sessions_for(window: str = "open") -> list[tuple[datetime, datetime]]:
    """The door's two sessions (two hours each); the second one is tomorrow."""
    now = utcnow().replace(microsecond=0)
    starts = now + FIRST_SESSION_STARTS[window]
    tomorrow = now + timedelta(days=1)
    return [(starts, starts + timedelta(hours=2)), (tomorrow, tomorrow + timedelta(hours=2))]


def _checkin(registration_id: int, session_id: int, *, undone: bool = False) -> CheckIn:
    at = utcnow() - timedelta(minutes=5)
    return CheckIn(
        registration_id=registration_id,
        session_id=session_id,
        checked_in_at=at,
        recorded_at=at,
        method="scan",
        undone_at=at + timedelta(minutes=1) if undone else None,
    )


def _ticket_in_state(make, door: Activity, ticket: dict, scanned_as: str = "qr") -> str:
    """A ticket in the case's state (built while its activity is open, then changed in the
    database as an organizer or a registrant would have); its secret, or its short code
    when the case types it (``scanned_as``)."""
    session, other_session = door.sessions
    owner = door if ticket["same_activity"] else make.activity(sessions=sessions_for())
    issued = issue_ticket(owner)
    registration_id = issued.registration.id
    db.session.execute(
        update(Registration)
        .where(Registration.id == registration_id)
        .values(status=ticket["registration_status"])
    )
    status = ticket["activity_status"]
    db.session.execute(
        update(Activity)
        .where(Activity.id == owner.id)
        .values(status=status, cancel_reason="天气原因" if status == "cancelled" else "")
    )
    history = ticket.get("history", [])
    if "undone" in history:
        db.session.add(_checkin(registration_id, session.id, undone=True))
    if "other_session" in history:
        db.session.add(_checkin(registration_id, other_session.id))
    if ticket["checked_in"]:
        db.session.add(_checkin(registration_id, session.id))
    db.session.commit()
    if scanned_as == "short_code":
        return db.session.get(Registration, registration_id).short_code
    return issued.secret


def test_scans_answer_as_the_table_says(make, fast_path, monkeypatch):  # noqa: F811
    """Every case at its own door (one database per path, for speed); all mismatches shown."""
    admin = make.user("admin")
    doors = {}
    for case in TABLE["scans"]:
        door = make.activity(sessions=sessions_for(case.get("window", "open")))
        ticket = case["ticket"]
        doors[case["case"]] = (
            door,
            "ZZZZZZ"
            if ticket is None
            else _ticket_in_state(make, door, ticket, case.get("scanned_as", "qr")),
        )
    general = []
    real_general_path = services._scan_ticket
    monkeypatch.setattr(
        services,
        "_scan_ticket",
        lambda *a, **k: general.append(1) or real_general_path(*a, **k),
    )
    answers = {}
    overrides = {case["case"] for case in TABLE["scans"] if case.get("override")}
    for n, (name, (door, text)) in enumerate(doors.items()):
        answers[name] = services.scan(
            admin,
            door.id,
            text,
            base_url=TABLE["base_url"],
            session_id=door.sessions[0].id,
            nonce=f"case-{n}",
            override_reason="提前到场布置会场" if name in overrides else None,
        ).result
    assert answers == {case["case"]: case["result"] for case in TABLE["scans"]}
    # The path this run is about decided every case, not the other one (an organizer's
    # override, rare, always takes the general path).
    assert len(general) == (len(overrides) if fast_path else len(doors))


@pytest.mark.parametrize(
    "item",
    TABLE["windows"],
    ids=[f"{w['at']}-{w['opens_before_minutes']}" for w in TABLE["windows"]],
)
def test_check_in_windows_are_as_the_table_says(item):
    class Session:
        starts_at = datetime.fromisoformat(item["starts_at"])
        ends_at = datetime.fromisoformat(item["ends_at"])

    window = CheckInWindow(
        opens_before=timedelta(minutes=item["opens_before_minutes"]),
        closes_after=timedelta(minutes=item["closes_after_minutes"]),
    )
    at = datetime.fromisoformat(item["at"].replace("Z", "+00:00"))
    assert window.state(Session, at) == item["state"]


@pytest.mark.parametrize("item", TABLE["codes"], ids=[c["text"][:40] for c in TABLE["codes"]])
def test_scanned_text_is_read_as_the_table_says(item):
    code = parse_scanned_code(item["text"], TABLE["base_urls"])
    expected = item["code"]
    assert (None if code is None else {"kind": code.kind, "value": code.value}) == expected
