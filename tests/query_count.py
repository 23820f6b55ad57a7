"""Count the SQL statements a block of code sends (SQLAlchemy's before_cursor_execute)."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from sciweek.extensions import db


@contextmanager
def count_queries():
    """Yield the list the statements executed inside the block are appended to."""
    statements: list[str] = []

    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", before_cursor_execute)
