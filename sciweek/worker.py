"""The Celery application for the job engine: ``celery -A sciweek.worker worker`` (and
``beat``). Configured from the same ``SCIWEEK_*`` environment as the web application;
``SCIWEEK_BROKER_URL`` must name the broker (e.g. ``redis://127.0.0.1:6379/1``)."""

from __future__ import annotations

from . import create_app

flask_app = create_app()
celery = flask_app.extensions["celery"]
