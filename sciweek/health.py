"""``/healthz``: a trivial endpoint for load balancers and for benchmark ceilings."""

from flask import Blueprint

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    return "ok", 200, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}
