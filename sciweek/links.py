"""The site's own absolute address, for links that leave the page: ticket QR codes, SMS,
the projector's and the paper sheet's self check-in codes, calendar feeds.

``SCIWEEK_BASE_URL`` names it. In development it may be left unset: links then follow the
host and port the request came in on (``make run PORT=5077``, or a phone on the LAN at
``http://192.168.1.20:5077``). Production requires it (config.py) and logs a warning, once,
when a request arrives for a host that is not one of the site's configured addresses.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, current_app, has_request_context, request

log = logging.getLogger(__name__)

# Outside a request (CLI commands, jobs) in development with no SCIWEEK_BASE_URL: the
# address `make run` serves by default.
LOCAL_BASE_URL = "http://127.0.0.1:5000"
_WARNED = "sciweek.links.warned_host"


def _configured() -> str:
    return current_app.config.get("SCIWEEK_BASE_URL") or ""


def site_base_url() -> str:
    """Scheme, host, port and path prefix of the site, without a trailing slash."""
    configured = _configured()
    if configured:
        return configured
    if has_request_context():
        return request.host_url.rstrip("/")
    return LOCAL_BASE_URL


def site_base_urls() -> tuple[str, ...]:
    """Every address the site is reached at: ``site_base_url()`` first, then
    ``SCIWEEK_OTHER_BASE_URLS``. The scanner accepts a ticket URL under any of them."""
    urls = [site_base_url(), *current_app.config.get("SCIWEEK_OTHER_BASE_URLS", ())]
    return tuple(dict.fromkeys(urls))


def _host_of(url: str) -> str:
    return urlsplit(url).netloc.lower()


def _warn_about_a_foreign_host() -> None:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.extensions.get(_WARNED):
        return
    known = {_host_of(url) for url in site_base_urls()}
    host = request.host.lower()
    if host in known:
        return
    app.extensions[_WARNED] = host
    log.warning(
        "A request arrived for host %s, which is not SCIWEEK_BASE_URL (%s) nor one of "
        "SCIWEEK_OTHER_BASE_URLS: QR codes, SMS and feed links point at %s. "
        "(Logged once per process.)",
        host,
        _configured(),
        _configured(),
    )


def init_app(app: Flask) -> None:
    if app.config.get("SCIWEEK_ENV") == "production":
        app.before_request(_warn_about_a_foreign_host)
