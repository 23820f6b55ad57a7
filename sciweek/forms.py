"""Forms shared by several features."""

from __future__ import annotations

from flask_wtf import FlaskForm


class ConfirmForm(FlaskForm):
    """An empty form: a POST button with CSRF protection."""
