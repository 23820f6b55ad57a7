"""Security headers on every response: pages, API, feeds, images, static files, errors.

A view may set its own value first (ticket pages: ``Referrer-Policy: no-referrer``; the
scanner: the camera for itself, ``allow_camera``); these are defaults, not overrides.
"""

from __future__ import annotations

from flask import Flask, Response
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        # Scripts and styles only from this site's static/ files: no inline <script>, no
        # on*= handlers, no javascript: URLs, no <style> blocks or style= attributes
        # (tests/test_csp.py checks every template and page). Pages pass data to their
        # scripts in data-* attributes; scripts may still set styles through the CSSOM.
        # No 'unsafe-eval': nothing needs it (jsQR included).
        "script-src 'self'",
        "style-src 'self'",
        # The projector receives its rotating QR code as a data: PNG (checkin.self_code).
        "img-src 'self' data:",
        # The scanner's service worker is served from this site (/manage/activities/scan-sw.js).
        "worker-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# Powerful features nobody here needs; the camera only where the scanner asks for it.
_NO_FEATURES = "microphone=(), geolocation=(), payment=(), usb=()"
PERMISSIONS_POLICY = f"camera=(), {_NO_FEATURES}"
CAMERA_PERMISSIONS_POLICY = f"camera=(self), {_NO_FEATURES}"

# One year, this host only: other sites under the district's domain may still be HTTP.
HSTS = "max-age=31536000"


def allow_camera(response: Response) -> Response:
    """Let this page (the door scanner) use the camera."""
    response.headers["Permissions-Policy"] = CAMERA_PERMISSIONS_POLICY
    return response


# A photo opened on its own (the summary's full view): browsers show it in an image document
# whose centring and zoom are inline styles of their own. Nothing else may load or run.
IMAGE_DOCUMENT_POLICY = (
    "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'; sandbox"
)


def as_image_document(response: Response) -> Response:
    """An image served from this site to be opened by itself in the browser."""
    response.headers["Content-Security-Policy"] = IMAGE_DOCUMENT_POLICY
    return response


_DEFAULT_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Frame-Options", "DENY"),  # browsers without frame-ancestors
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Permissions-Policy", PERMISSIONS_POLICY),
)


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once per set of
    keys instead of on every request (Flask builds a new one each time, even for an API
    request that carries no cookie)."""

    def __init__(self) -> None:
        self._serializers: dict[tuple, URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = super().get_signing_serializer(app)
            self._serializers = {keys: serializer}  # the keys in use; the old ones go
        return serializer


def init_app(app: Flask) -> None:
    production = app.config["SCIWEEK_ENV"] == "production"
    defaults = _DEFAULT_HEADERS + ((("Strict-Transport-Security", HSTS),) if production else ())
    app.session_interface = SessionCookies()

    @app.after_request
    def security_headers(response: Response) -> Response:
        # One pass over the response's headers instead of one per default (setdefault).
        headers = response.headers
        present = {name.lower() for name, _value in headers.items()}
        for name, value in defaults:
            if name.lower() not in present:
                headers.add(name, value)
        return response
