"""Printable pages drawn as A4 PDFs by WeasyPrint (the 签到表, the annual assessment).

The Chinese text needs a CJK font on the server: Debian's ``fonts-noto-cjk`` (Noto Sans CJK
SC, embedded into the PDF as a subset), and WeasyPrint needs Pango (``libpango-1.0-0``,
``libpangoft2-1.0-0``); README's install notes and ``.ci/run`` install them.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from flask import current_app, render_template
from PIL import ImageFile


class PdfUnavailable(RuntimeError):
    """This server cannot draw PDFs (WeasyPrint or Pango is missing)."""


def weasyprint() -> ModuleType:
    """WeasyPrint, imported on first use, not with the app: importing it takes about a
    second, and it needs Pango, which a server that never prints may lack. Raises
    PdfUnavailable when it cannot be loaded."""
    try:
        module = importlib.import_module("weasyprint")
    except (ImportError, OSError) as exc:  # OSError: Pango's shared libraries are missing
        raise PdfUnavailable(str(exc)) from exc
    # Importing WeasyPrint turns on Pillow's process-wide LOAD_TRUNCATED_IMAGES, under which
    # a half-uploaded or damaged photo would decode silently (padded with grey) in every
    # later request of this worker. Our PDFs embed only images we drew ourselves.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    return module


def render_pdf(template: str, stylesheet: str, **context) -> bytes:
    """``template`` rendered with ``context`` and ``static/css/<stylesheet>``, as PDF bytes.
    Fetches nothing from outside: only ``data:`` URLs are allowed (inline images)."""
    printer = weasyprint()
    fetcher = printer.URLFetcher(allowed_protocols=("data",))
    html = render_template(template, **context)
    css_path = Path(current_app.static_folder or "static") / "css" / stylesheet
    css = printer.CSS(string=css_path.read_text(encoding="utf-8"), url_fetcher=fetcher)
    return printer.HTML(string=html, url_fetcher=fetcher).write_pdf(stylesheets=[css])
