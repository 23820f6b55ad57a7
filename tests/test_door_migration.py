"""The door migration (walk-ins without a phone, admissions over capacity) keeps the data it
finds, up and down, on both databases.

On SQLite, Alembic's batch mode rebuilds a table (copy, DROP, rename); with foreign keys on,
SQLite's DROP deletes the table's rows first and cascades to every table that refers to it:
rebuilding ``activities`` emptied sessions, registrations and check-ins.
"""

from __future__ import annotations

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from sciweek import create_app
from sciweek.extensions import db

BEFORE = "5b1e7c9d2a40"
DOOR = "3ecd30290c24"
TABLES = ("activities", "activity_sessions", "registrations", "checkins", "scan_log")


def _counts(connection) -> dict[str, int]:
    return {t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES}


def test_door_migration_keeps_every_row_up_and_down(empty_database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "TESTING": True})
    with app.app_context():
        upgrade(revision=BEFORE)
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO activities (kind, title, description, venue, audience,"
                    " capacity, confirmed_count, waitlist_enabled, status, cancel_reason,"
                    " sequence, created_at, updated_at) VALUES ('outreach', '集市', '', '',"
                    " 'public', 1, 1, true, 'published', '', 0, :now, :now)"
                ),
                {"now": "2026-11-01 01:00:00"},
            )
            connection.execute(
                text(
                    "INSERT INTO activity_sessions (activity_id, starts_at, ends_at, note,"
                    " created_at) VALUES (1, '2026-12-01 01:00:00', '2026-12-01 03:00:00', '',"
                    " '2026-11-01 01:00:00')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO registrations (activity_id, name, phone, status, secret_hash,"
                    " short_code, walk_in, created_at, updated_at) VALUES (1, '张三',"
                    " '13800138000', 'confirmed', 'h', 'ABCDEF', false, :now, :now)"
                ),
                {"now": "2026-11-01 01:00:00"},
            )
            connection.execute(
                text(
                    "INSERT INTO checkins (registration_id, session_id, checked_in_at,"
                    " recorded_at, method) VALUES (1, 1, :now, :now, 'scan')"
                ),
                {"now": "2026-12-01 01:10:00"},
            )
            connection.execute(
                text(
                    "INSERT INTO scan_log (activity_id, session_id, registration_id,"
                    " checkin_id, method, result, code, recorded_at) VALUES (1, 1, 1, 1,"
                    " 'scan', 'ok', 'ABCDEF', :now)"
                ),
                {"now": "2026-12-01 01:10:00"},
            )
        with db.engine.connect() as connection:
            before = _counts(connection)
        assert before == dict.fromkeys(TABLES, 1)

        upgrade(revision=DOOR)
        with db.engine.begin() as connection:
            assert _counts(connection) == before
            assert (
                connection.execute(text("SELECT over_capacity_count FROM activities")).scalar() == 0
            )
            assert not connection.execute(text("SELECT over_capacity FROM registrations")).scalar()
            # A walk-in without a phone, as the new schema allows.
            connection.execute(text("INSERT INTO towns (code, name) VALUES ('qh', '清河镇')"))
            connection.execute(text("INSERT INTO villages (town_id, name) VALUES (1, '李家村')"))
            connection.execute(
                text(
                    "INSERT INTO registrations (activity_id, name, phone, village_id, status,"
                    " secret_hash, short_code, walk_in, over_capacity, created_at, updated_at)"
                    " VALUES (1, '王大爷', NULL, 1, 'confirmed', 'h2', 'BCDEFG', true, false,"
                    " :now, :now)"
                ),
                {"now": "2026-12-01 01:20:00"},
            )

        downgrade(revision=BEFORE)
        with db.engine.connect() as connection:
            assert _counts(connection) == {**before, "registrations": 2}
            phones = connection.execute(text("SELECT phone FROM registrations ORDER BY id"))
            assert [p for (p,) in phones] == ["13800138000", "x0000000002"]
        db.engine.dispose()
