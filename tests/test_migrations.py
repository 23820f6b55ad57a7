"""Upgrading an empty database gives exactly the models' schema, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect

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
