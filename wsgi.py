"""WSGI entry point: ``gunicorn wsgi:app``."""

from sciweek import create_app

app = create_app()
