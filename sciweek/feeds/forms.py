"""Forms of the calendar feed pages."""

from ..forms import Form


class ResetFeedLinkForm(Form):
    """A POST button with CSRF protection: replace the personal feed link."""
