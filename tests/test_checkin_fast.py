"""The scan hot path on PostgreSQL (sciweek/checkin/fast.py): cached door permissions and
one statement per scan, with the general path for lost races and repeated nonces.

Tests that are not about the caches or the statement also run with the fast path off
(SCIWEEK_CHECKIN_FAST_PATH=0), and on SQLite.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, insert, select, text, update

from sciweek.checkin import fast, services
from sciweek.extensions import db
from sciweek.models import ActivitySession, ApiToken, CheckIn, ScanLog, utcnow
from sciweek.tokens import hash_secret

from .checkin_support import (  # noqa: F401 - fixtures: SQLite, PostgreSQL fast and general
    app_config,
    backend,
    bearer,
    fast_path,
    issue_ticket,
    scan_path,
)
from .test_checkin_api import checkin_rows, door, scan  # noqa: F401 - door is a fixture
from .waiting import wait_until


def blocked_by(pid: int) -> int:
    """How many sessions of this database wait for a lock that session ``pid`` holds."""
    with db.engine.connect() as probe:  # a new transaction: pg_stat_activity is not cached
        return probe.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND :pid = ANY(pg_blocking_pids(pid))"
            ),
            {"pid": pid},
        ).scalar()


def postgres_only(backend):  # noqa: F811
    if backend != "postgres":
        pytest.skip("the fast path runs on PostgreSQL only")


def fast_path_only(fast_path):  # noqa: F811
    if not fast_path:
        pytest.skip("about the fast path (PostgreSQL, SCIWEEK_CHECKIN_FAST_PATH on)")


def test_race_lost_to_a_checkin_the_statement_cannot_see(app, client, door, backend, monkeypatch):  # noqa: F811
    """The winner commits after the scan's statement began: the insert does nothing and the
    statement cannot see the winner's row, so the general path answers (with its time)."""
    postgres_only(backend)
    ticket = issue_ticket(door.activity)
    general = []
    real_scan_ticket = services._scan_ticket
    monkeypatch.setattr(
        services, "_scan_ticket", lambda *a, **k: general.append(1) or real_scan_ticket(*a, **k)
    )
    first = (utcnow() - timedelta(minutes=1)).replace(microsecond=0)
    other = db.engine.connect()
    transaction = other.begin()
    winner_id = other.execute(
        insert(CheckIn.__table__)
        .values(
            registration_id=ticket.registration.id,
            session_id=door.session_id,
            checked_in_at=first,
            recorded_at=first,
            method="scan",
        )
        .returning(CheckIn.__table__.c.id)
    ).scalar()
    answers = {}
    token, secret, activity_id = door.checker_token, ticket.secret, door.activity.id

    def scan_now():
        answers["response"] = scan(client, token, secret, activity_id)

    holder_pid = other.execute(text("SELECT pg_backend_pid()")).scalar()
    thread = threading.Thread(target=scan_now)
    thread.start()
    wait_until(lambda: blocked_by(holder_pid), what="the scan's INSERT to wait for our check-in")
    transaction.commit()
    other.close()
    thread.join(20)
    body = answers["response"].get_json()
    assert body["result"] == "already_checked_in"
    assert body["checkin_id"] == winner_id
    assert body["checked_in_at"] == first.isoformat()
    assert body["counts"]["checked_in"] == 1
    assert general == [1]
    assert checkin_rows() == 1
    logs = db.session.scalars(select(ScanLog)).all()
    assert [(log.result, log.checkin_id) for log in logs] == [("already_checked_in", winner_id)]


def test_repeated_nonce_after_an_undo_gives_the_stored_answer(client, door):  # noqa: F811
    ticket = issue_ticket(door.activity)
    first = scan(client, door.checker_token, ticket.secret, door.activity.id, nonce="n-1")
    first = first.get_json()
    undo = f"/api/v1/checkins/{first['checkin_id']}/undo"
    assert client.post(undo, headers=bearer(door.organizer_token)).status_code == 200
    again = scan(client, door.checker_token, ticket.secret, door.activity.id, nonce="n-1")
    again = again.get_json()
    assert again["result"] == "ok"
    assert again["checkin_id"] == first["checkin_id"]
    assert again["checked_in_at"] == first["checked_in_at"]
    assert db.session.scalar(select(func.count(CheckIn.id))) == 1
    assert checkin_rows() == 0


def test_revoking_a_used_token_here_is_immediate(client, door):  # noqa: F811
    one, two = issue_ticket(door.activity), issue_ticket(door.activity, phone="13800138001")
    assert scan(client, door.checker_token, one.secret, door.activity.id).status_code == 200
    token = db.session.scalar(select(ApiToken).where(ApiToken.user_id == door.checker.id))
    services.revoke_api_token(token)
    db.session.commit()
    assert scan(client, door.checker_token, two.secret, door.activity.id).status_code == 401


def test_removing_a_checker_here_is_immediate(client, door):  # noqa: F811
    one, two = issue_ticket(door.activity), issue_ticket(door.activity, phone="13800138001")
    assert scan(client, door.checker_token, one.secret, door.activity.id).status_code == 200
    services.remove_checker(door.activity, door.checker)
    db.session.commit()
    assert scan(client, door.checker_token, two.secret, door.activity.id).status_code == 403


def test_revocation_by_another_process_applies_within_the_cache_time(
    client,
    door,  # noqa: F811
    fast_path,  # noqa: F811
    monkeypatch,
):
    fast_path_only(fast_path)
    tickets = [issue_ticket(door.activity, phone=f"1380013800{n}") for n in range(3)]
    assert scan(client, door.checker_token, tickets[0].secret, door.activity.id).status_code == 200
    # Another process revokes the token: nothing is flushed in this one.
    with db.engine.begin() as connection:
        connection.execute(
            update(ApiToken.__table__)
            .where(ApiToken.__table__.c.user_id == door.checker.id)
            .values(revoked_at=utcnow())
        )
    within = scan(client, door.checker_token, tickets[1].secret, door.activity.id)
    assert within.status_code == 200
    later = fast.monotonic() + fast.DEFAULT_CACHE_SECONDS + 1
    monkeypatch.setattr(fast, "monotonic", lambda: later)
    assert scan(client, door.checker_token, tickets[2].secret, door.activity.id).status_code == 401


def test_live_count_adds_this_process_scans_and_recounts_after_an_undo(client, door, make):  # noqa: F811
    tickets = [issue_ticket(door.activity, phone=f"1380013800{n}") for n in range(2)]
    first = scan(client, door.checker_token, tickets[0].secret, door.activity.id).get_json()
    assert first["counts"]["checked_in"] == 1
    again = scan(client, door.organizer_token, tickets[0].secret, door.activity.id).get_json()
    assert again["result"] == "already_checked_in"
    assert again["counts"]["checked_in"] == 1
    second = scan(client, door.checker_token, tickets[1].secret, door.activity.id).get_json()
    assert second["counts"]["checked_in"] == 2
    undo = f"/api/v1/checkins/{second['checkin_id']}/undo"
    assert client.post(undo, headers=bearer(door.organizer_token)).get_json()["counts"] == {
        "checked_in": 1,
        "expected": 2,
    }
    later = scan(client, door.checker_token, tickets[0].secret, door.activity.id).get_json()
    assert later["counts"] == {"checked_in": 1, "expected": 2}


def test_live_count_catches_up_with_other_processes_within_a_second(
    client,
    door,  # noqa: F811
    backend,  # noqa: F811
    monkeypatch,
):
    postgres_only(backend)
    tickets = [issue_ticket(door.activity, phone=f"1380013800{n}") for n in range(2)]
    assert (
        scan(client, door.checker_token, tickets[0].secret, door.activity.id).get_json()["counts"][
            "checked_in"
        ]
        == 1
    )
    # Another process checks someone in (no ORM flush here).
    with db.engine.begin() as connection:
        now = utcnow()
        connection.execute(
            insert(CheckIn.__table__).values(
                registration_id=tickets[1].registration.id,
                session_id=door.session_id,
                checked_in_at=now,
                recorded_at=now,
                method="scan",
            )
        )
    later = fast.monotonic() + fast.COUNT_SECONDS + 0.1
    monkeypatch.setattr(fast, "monotonic", lambda: later)
    body = scan(client, door.checker_token, tickets[0].secret, door.activity.id).get_json()
    assert body["result"] == "already_checked_in"
    assert body["counts"] == {"checked_in": 2, "expected": 2}


def test_session_deleted_by_another_process_is_400_not_a_crash(client, door, make, backend):  # noqa: F811
    postgres_only(backend)
    one, two = issue_ticket(door.activity), issue_ticket(door.activity, phone="13800138001")
    session_id, activity_id = door.session_id, door.activity.id
    assert scan(client, door.checker_token, one.secret, activity_id).status_code == 200
    with db.engine.begin() as connection:
        connection.execute(
            delete(ActivitySession.__table__).where(ActivitySession.__table__.c.id == session_id)
        )
    response = scan(client, door.checker_token, two.secret, activity_id, session_id=session_id)
    assert response.status_code == 400
    assert response.get_json()["error"] == "bad_request"
    assert db.session.scalar(select(func.count(ScanLog.id))) == 0


def test_the_scan_statement_is_compiled_once(client, door, fast_path, monkeypatch):  # noqa: F811
    """The Core statement is built and compiled once per form and app; a scan only binds
    values."""
    fast_path_only(fast_path)
    tickets = [issue_ticket(door.activity, phone=f"1380013800{n}") for n in range(2)]
    built = []
    build = fast._scan_statement

    def counting(kind, count_live):
        built.append((kind, count_live))
        return build(kind, count_live)

    monkeypatch.setattr(fast, "_scan_statement", counting)
    results = [
        scan(client, door.checker_token, ticket.secret, door.activity.id).get_json()["result"]
        for ticket in tickets * 2
    ]
    assert results == ["ok", "ok", "already_checked_in", "already_checked_in"]
    # Four scans, at most two forms (with and without the live count), each built once.
    assert len(built) == len(set(built)) <= 2


def _rows_read_from(plan: dict, table: str) -> int:
    """Rows the plan's scans of ``table`` returned, over all their loops (EXPLAIN ANALYZE)."""
    scans = plan.get("Relation Name") == table and plan["Node Type"].endswith("Scan")
    own = plan["Actual Rows"] * plan["Actual Loops"] if scans else 0
    return own + sum(_rows_read_from(child, table) for child in plan.get("Plans", []))


def test_a_scan_reads_its_own_checkin_not_the_sessions_every_one(client, door, fast_path):  # noqa: F811
    """The statement looks up this ticket's live check-in by (registration, session): its
    cost must not grow with the check-ins the session already has (it read every one of
    them, then kept the ticket's: 0.8 ms of PostgreSQL time per scan at 3,000)."""
    fast_path_only(fast_path)
    now = utcnow()
    door.activity.capacity = 100
    others = [issue_ticket(door.activity, phone=f"1390000{n:04d}") for n in range(60)]
    db.session.execute(
        insert(CheckIn.__table__),
        [
            {
                "registration_id": ticket.registration.id,
                "session_id": door.session_id,
                "checked_in_at": now,
                "recorded_at": now,
                "method": "scan",
            }
            for ticket in others
        ],
    )
    db.session.commit()
    ticket = issue_ticket(door.activity, phone="13800138999")
    assert ticket.registration.status == "confirmed"
    form = fast._form(db.engine.dialect, "secret", False)
    values = form.values(
        {
            "lookup": hash_secret(ticket.secret),
            "activity_id": door.activity.id,
            "session_id": door.session_id,
            "user_id": door.checker.id,
            "nonce": "plan-1",
            "method": "scan",
            "code": "plan",
            "at": now,
            "now": now,
            "scanned_at": None,
            "not_now": False,
        }
    )
    pooled = db.engine.raw_connection()
    try:
        cursor = pooled.driver_connection.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + form.sql, values
        )
        plan = cursor.fetchone()[0][0]["Plan"]
        pooled.driver_connection.rollback()
    finally:
        pooled.close()
    assert _rows_read_from(plan, "checkins") <= 1
