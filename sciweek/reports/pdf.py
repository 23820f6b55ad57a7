"""The annual assessment as a printable A4 (landscape) PDF, drawn by the shared PDF stack
(``sciweek.pdf``: WeasyPrint with the Noto Sans CJK font embedded), like the 签到表."""

from __future__ import annotations

from ..pdf import render_pdf
from ..spreadsheets import OfficeHeading
from .layout import assessment_layout
from .services import AnnualAssessment


def assessment_pdf(report: AnnualAssessment, heading: OfficeHeading) -> bytes:
    """The three tables as the XLSX has them (the same cells), with the charts, the
    definitions and the lines to sign. Raises ``PdfUnavailable`` without WeasyPrint."""
    return render_pdf(
        "reports/annual_print.html",
        "reports_print.css",
        report=report,
        heading=heading,
        **assessment_layout(report),
    )
