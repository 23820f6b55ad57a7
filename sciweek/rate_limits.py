"""Per-address limits shared by several features' routes (Flask-Limiter).

SMS verification codes — asking for one and checking one, on every page that does
(找回我的票, 报名需短信验证, a roster cadre's self check-in) — share one budget per client
address, ``SCIWEEK_VERIFICATION_RATE_LIMIT`` (``notifications.verification`` counts the
per-phone limits).
"""

from __future__ import annotations

from flask import current_app, request

from .extensions import limiter

VERIFICATION_SCOPE = "sms-verification"


def verification_rate_limit() -> str:
    return current_app.config["SCIWEEK_VERIFICATION_RATE_LIMIT"]


# Every POST of the route counts against the SMS verification budget.
verification_limit = limiter.shared_limit(
    verification_rate_limit, scope=VERIFICATION_SCOPE, methods=["POST"]
)


def verification_limit_when_posted(field: str):
    """The SMS verification budget for the route's POSTs that send ``field`` only (a form
    whose other buttons or sibling forms use no code)."""
    return limiter.shared_limit(
        verification_rate_limit,
        scope=VERIFICATION_SCOPE,
        methods=["POST"],
        exempt_when=lambda: field not in request.form,
    )
