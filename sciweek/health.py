"""Health endpoints for load balancers, and the ceilings benchmarks compare against.

``/healthz`` touches nothing: the cost of a request through gunicorn and Flask.
``/healthz/db`` adds exactly one database round trip through the app's own engine and
pool: the least any view that reads or writes the database can cost.
"""

from flask import Blueprint, current_app, jsonify
from flask_babel import gettext as _
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db

bp = Blueprint("health", __name__)

_HEADERS = {"Cache-Control": "no-store"}


@bp.route("/healthz")
def healthz():
    return "ok", 200, {**_HEADERS, "Content-Type": "text/plain; charset=utf-8"}


@bp.route("/healthz/db")
def healthz_db():
    """200 when the database answers one round trip, 503 with a JSON body when it does not."""
    try:
        # PostgreSQL: one round trip, a SELECT in autocommit (no BEGIN or COMMIT). A pooled
        # connection idle for a while is also checked at checkout (database.py) and
        # replaced if dead; a busy one is not. SQLite: opening the file is the check (a
        # statement would BEGIN, see database.py).
        with db.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
                autocommit.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as exc:
        current_app.logger.warning("healthz/db: database unreachable: %s", exc)
        body = jsonify(error="database_unavailable", message=_("数据库暂时无法连接。"))
        return body, 503, _HEADERS
    return "ok", 200, {**_HEADERS, "Content-Type": "text/plain; charset=utf-8"}
