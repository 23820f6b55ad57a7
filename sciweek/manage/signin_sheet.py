"""The printable 签到表 of a session: an HTML page rendered to an A4 PDF by WeasyPrint.

The Chinese text needs a CJK font on the server: Debian's ``fonts-noto-cjk`` (Noto Sans CJK
SC, embedded into the PDF as a subset), and WeasyPrint needs Pango (``libpango-1.0-0``,
``libpangoft2-1.0-0``); README's install notes and ``.ci/run`` install them.
"""

from __future__ import annotations

import base64
import importlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import ModuleType

from flask import current_app, render_template
from flask_babel import gettext as _

from ..checkin.codes import make_sheet_code
from ..checkin.paper import SheetRow
from ..links import site_base_url
from ..models import Activity, ActivitySession
from ..registration.qr import qr_png

# Blank lines for people who come without being on the list (walk-ins), by default.
DEFAULT_BLANK_ROWS = 10
MAX_BLANK_ROWS = 200


class SheetUnavailable(RuntimeError):
    """This server cannot draw PDFs (WeasyPrint or Pango is missing)."""


def weasyprint() -> ModuleType:
    """WeasyPrint, imported on first use, not with the app: importing it takes about a
    second, and it needs Pango, which a server that never prints may lack. Raises
    SheetUnavailable when it cannot be loaded."""
    try:
        return importlib.import_module("weasyprint")
    except (ImportError, OSError) as exc:  # OSError: Pango's shared libraries are missing
        raise SheetUnavailable(str(exc)) from exc


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
    printer = weasyprint()
    fetcher = printer.URLFetcher(allowed_protocols=("data",))
    html = render_template("manage/signin_sheet.html", page=page)
    css_path = Path(current_app.static_folder or "static") / "css" / "signin_sheet.css"
    stylesheet = printer.CSS(string=css_path.read_text(encoding="utf-8"), url_fetcher=fetcher)
    document = printer.HTML(string=html, url_fetcher=fetcher)
    return document.write_pdf(stylesheets=[stylesheet])


def sheet_file_name(activity: Activity, session: ActivitySession) -> str:
    """签到表-<activity id>-<session id>.pdf, in the visitor's language."""
    return _("签到表-%(activity)s-%(session)s.pdf", activity=activity.id, session=session.id)
