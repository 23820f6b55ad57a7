"""Column types shared by the models, and ``first_case`` for rules that Python and SQL share."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import DateTime, Enum, Numeric, case, literal, not_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC (evaluated per row, never at import)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timezone-aware datetime stored as UTC on every database.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so the value is
    stored as naive UTC and given its zone back when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; sciweek stores timezone-aware values only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def str_enum(enum_class: type[enum.StrEnum], length: int = 20) -> Enum:
    """A column type for a ``StrEnum``: stored as the members' values in a VARCHAR, read back
    as members.

    The values are the very strings stored before the columns were typed, so no data
    changes; the tables keep their own named CHECK constraints (``_in_check``), so the type
    makes none (``create_constraint=False``).
    """
    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
    )


# --- rules written once, for Python and SQL --------------------------------------------


def _sql(value) -> bool:
    """A SQL expression (a column, a model attribute, an expression), not a Python value."""
    return isinstance(value, ClauseElement) or hasattr(value, "__clause_element__")


def first_case(*cases: tuple, default=None):
    """The value of the first ``(condition, value)`` whose condition holds, else ``default``.

    The conditions are Python values when a rule is applied to a loaded row, and SQL
    expressions when it is applied to model attributes or columns: then the same ordered
    cases become a ``CASE`` expression. So a rule that both Python and a statement need
    (``Registration.scan_refusal``) is written once. Write conditions with ``==``, ``!=``,
    ``&``, ``|`` and ``negate``, which mean the same on both sides (never ``not``, ``and``,
    ``or`` or ``~``).
    """
    if any(_sql(condition) for condition, _value in cases) or _sql(default):
        return case(
            *((condition, _sql_value(value)) for condition, value in cases),
            else_=_sql_value(default) if default is not None else None,
        )
    for condition, value in cases:
        if condition:
            return value
    return default


def _sql_value(value):
    if _sql(value):
        return value
    # A str enum member binds as its plain value, typed, so the CASE has a type.
    return literal(str(value) if isinstance(value, str) else value)


def negate(condition):
    """``not condition`` in Python, ``NOT condition`` in SQL (see ``first_case``)."""
    return not_(condition) if _sql(condition) else not condition


class hours_between(FunctionElement):  # noqa: N801 - used like func.xxx(...)
    """``hours_between(start, end)``: the hours from one UTC timestamp column to another,
    rounded to one decimal, on PostgreSQL and SQLite alike (``ActivitySession.hours``)."""

    type = Numeric(7, 1)
    name = "hours_between"
    inherit_cache = True


@compiles(hours_between, "postgresql")
def _hours_between_postgresql(element, compiler, **kw):
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"ROUND(CAST(EXTRACT(EPOCH FROM ({end} - {start})) / 3600 AS NUMERIC), 1)"


@compiles(hours_between, "sqlite")
def _hours_between_sqlite(element, compiler, **kw):
    # SQLite stores naive UTC text ('2026-03-01 01:00:00.000000'), which julianday reads.
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"ROUND((julianday({end}) - julianday({start})) * 24, 1)"


def hours_of(start: datetime, end: datetime) -> Decimal:
    """Python's ``hours_between``: the hours from ``start`` to ``end``, to one decimal."""
    seconds = Decimal((end - start).total_seconds())
    return (seconds / 3600).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
