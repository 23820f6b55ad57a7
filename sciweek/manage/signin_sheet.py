"""The printable 签到表 of a session: an HTML page rendered to an A4 PDF by WeasyPrint.

The PDF stack (WeasyPrint, Pango, the Noto Sans CJK font) is the shared ``sciweek.pdf``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import gettext as _

from ..checkin.codes import make_sheet_code
from ..checkin.paper import SheetRow
from ..links import site_base_url
from ..models import Activity, ActivitySession
from ..pdf import PdfUnavailable, render_pdf
from ..registration.qr import qr_png

# Blank lines for people who come without being on the list (walk-ins), by default.
DEFAULT_BLANK_ROWS = 10
MAX_BLANK_ROWS = 200


# The 签到表 is drawn by the shared PDF stack; its failure keeps the name routes catch.
SheetUnavailable = PdfUnavailable


@dataclass
class SheetPage:
    """What the sheet's template shows."""

    activity: Activity
    session: ActivitySession
    rows: list[SheetRow]
    blank_rows: int
    self_checkin_url: str
    printed_at: datetime

    @property
    def qr_data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(qr_png(self.self_checkin_url)).decode()

    @property
    def session_number(self) -> str | None:
        """第 n/N 场, when the activity has several sessions."""
        sessions = self.activity.sessions
        if len(sessions) < 2:
            return None
        return _("第 %(n)s/%(total)s 场", n=sessions.index(self.session) + 1, total=len(sessions))

    @property
    def place(self) -> str:
        a = self.activity
        parts = [a.town.name if a.town else "", a.village.name if a.village else "", a.venue]
        return " · ".join(p for p in parts if p)


def self_checkin_url(session: ActivitySession, path_for_code) -> str:
    """The address the sheet's QR code opens: self check-in with the printed code."""
    code = make_sheet_code(current_app.config["SECRET_KEY"], session.id)
    return site_base_url() + path_for_code(code)


def render_signin_sheet(page: SheetPage) -> bytes:
    """The sheet as PDF bytes (A4, the CJK font embedded). Fetches nothing from outside:
    the QR code is inline, and every other address is refused."""
    return render_pdf("manage/signin_sheet.html", "signin_sheet.css", page=page)


def sheet_file_name(activity: Activity, session: ActivitySession) -> str:
    """签到表-<activity id>-<session id>.pdf, in the visitor's language."""
    return _("签到表-%(activity)s-%(session)s.pdf", activity=activity.id, session=session.id)
