"""Forms of the calendar feed pages."""

from flask_wtf import FlaskForm


class ResetFeedLinkForm(FlaskForm):
    """A POST button with CSRF protection: replace the personal feed link."""
