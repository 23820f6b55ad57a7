"""Upgrading an empty database gives exactly the models' schema, on both databases."""

import ast
import re
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from sciweek import create_app
from sciweek.database import render_migration_item
from sciweek.extensions import db


def _check_constraints(engine) -> set[tuple[str, str]]:
    inspector = inspect(engine)
    found = set()
    for table in inspector.get_table_names():
        for ck in inspector.get_check_constraints(table):
            found.add((table, ck["name"]))
    return found


def test_upgrade_gives_models_schema_without_drift(empty_database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "TESTING": True})
    with app.app_context():
        upgrade()
        engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={"compare_type": True, "render_item": render_migration_item},
            )
            diff = compare_metadata(context, db.metadata)
        assert diff == []

        expected_checks = {
            (table.name, ck.name)
            for table in db.metadata.sorted_tables
            for ck in table.constraints
            if ck.__class__.__name__ == "CheckConstraint"
        }
        assert expected_checks  # the models do declare check constraints
        assert _check_constraints(engine) == expected_checks
        engine.dispose()

        downgrade(revision="base")
        engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        engine.dispose()
        db.engine.dispose()


VERSIONS = Path(__file__).resolve().parent.parent / "migrations" / "versions"


def _revision_and_parent(path: Path) -> tuple[str, str | None]:
    """``revision`` and ``down_revision`` as the migration file assigns them."""
    values = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else None
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            values[target.id] = ast.literal_eval(node.value)
    return values["revision"], values["down_revision"]


def test_migration_file_names_sort_in_chain_order():
    """Names start with the date, hour and minute the migration took its place in the chain
    (YYYYMMDD_HHMM_<revision>_<slug>.py, alembic.ini's file_template). A migration put after
    another one when branches are merged must be renamed to sort after it."""
    files = sorted(p.name for p in VERSIONS.glob("*.py"))
    parent_of = dict(_revision_and_parent(VERSIONS / name) for name in files)
    file_of = {_revision_and_parent(VERSIONS / name)[0]: name for name in files}
    child_of = {parent: revision for revision, parent in parent_of.items()}
    assert len(child_of) == len(parent_of), "the chain has a branch: two migrations share a parent"
    chain, revision = [], child_of.get(None)
    while revision is not None:
        chain.append(file_of[revision])
        revision = child_of.get(revision)
    assert chain == files
    assert all(re.fullmatch(r"\d{8}_\d{4}_[0-9a-f]{12}_\w+\.py", name) for name in files)


def test_upgrading_a_database_with_data_keeps_every_row(empty_database_url, tmp_path, monkeypatch):
    """On SQLite a migration that rebuilds a table (batch mode) must not cascade its DROP into
    the tables that refer to it: an upgrade once emptied sessions, registrations and
    check-ins of a running site."""
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "TESTING": True})
    with app.app_context():
        upgrade(revision="0d7eac1dd0d9")  # the schema of the first wave
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO activities (id, kind, title, description, venue, audience, status,"
                    " cancel_reason, confirmed_count, waitlist_enabled, sequence, created_at,"
                    " updated_at) VALUES (1, 'training', '培训', '', '', 'cadres', 'published', '',"
                    " 1, true, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO activity_sessions (id, activity_id, starts_at, ends_at, note,"
                    " created_at) VALUES (1, 1, :starts, :ends, '', CURRENT_TIMESTAMP)"
                ),
                {"starts": "2026-06-01 01:00:00", "ends": "2026-06-01 03:00:00"},
            )
        upgrade()
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM activities")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM activity_sessions")).scalar() == 1
        db.engine.dispose()


def test_roster_periods_migration_carries_every_cadre_into_a_period(
    empty_database_url, tmp_path, monkeypatch
):
    """Every cadre gets one roster period from what the cadres table held, so earlier
    years' coverage stays as it was; downgrading drops the periods and keeps the cadres."""
    monkeypatch.setenv("SCIWEEK_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database_url, "TESTING": True})
    with app.app_context():
        upgrade(revision="5b1e7c9d2a40")
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO towns (id, code, name) VALUES (1, 'cg', '城关镇')"))
            conn.execute(text("INSERT INTO villages (id, town_id, name) VALUES (1, 1, '一村')"))
            for cadre_id, posts, left_on in ((1, "书记", None), (2, "", "2026-06-15")):
                conn.execute(
                    text(
                        "INSERT INTO cadres (id, name, gender, birth_month, posts, town_id,"
                        " village_id, active_from, left_on, created_at, updated_at) VALUES"
                        " (:id, '甲', '', '', :posts, 1, 1, '2025-01-01', :left_on,"
                        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ),
                    {"id": cadre_id, "posts": posts, "left_on": left_on},
                )
        upgrade(revision="c4d1e8a7b290")
        with db.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT cadre_id, town_id, village_id, posts, starts_on, ends_on"
                    " FROM cadre_periods ORDER BY cadre_id"
                )
            ).all()
        assert [(r[0], r[1], r[2], r[3], str(r[4]), r[5] and str(r[5])) for r in rows] == [
            (1, 1, 1, "书记", "2025-01-01", None),
            (2, 1, 1, "", "2025-01-01", "2026-06-15"),
        ]
        downgrade(revision="5b1e7c9d2a40")
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM cadres")).scalar() == 2
            assert "cadre_periods" not in inspect(conn).get_table_names()
        db.engine.dispose()
