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
        # The round trip is the checkout: with the app's pool_pre_ping (config.py) the pool
        # sends the dialect's cheapest statement (PostgreSQL: an empty query) on a pooled
        # connection before handing it out, and reconnects if it is dead; a new connection
        # has just been opened. A SELECT through the Connection would add a second round
        # trip (and BEGIN, which on SQLite takes the write lock).
        with db.engine.connect():
            pass
    except SQLAlchemyError as exc:
        current_app.logger.warning("healthz/db: database unreachable: %s", exc)
        body = jsonify(error="database_unavailable", message=_("数据库暂时无法连接。"))
        return body, 503, _HEADERS
    return "ok", 200, {**_HEADERS, "Content-Type": "text/plain; charset=utf-8"}
