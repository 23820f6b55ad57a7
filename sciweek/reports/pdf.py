"""The annual assessment as a printable A4 (landscape) PDF, drawn by the shared PDF stack
(``sciweek.pdf``: WeasyPrint with the Noto Sans CJK font embedded), like the 签到表."""

from __future__ import annotations

from ..pdf import render_pdf
from ..spreadsheets import OfficeHeading
from .charts import month_chart, town_chart
from .services import AnnualAssessment
from .xlsx import campaigns_sheet, departments_sheet, towns_sheet


def assessment_pdf(report: AnnualAssessment, heading: OfficeHeading) -> bytes:
    """The three tables as the XLSX has them (the same cells), with the charts, the
    definitions and the lines to sign. Raises ``PdfUnavailable`` without WeasyPrint."""
    return render_pdf(
        "reports/annual_print.html",
        "reports_print.css",
        report=report,
        heading=heading,
        sheets=[towns_sheet(report), departments_sheet(report), campaigns_sheet(report)],
        town_chart=town_chart(report.towns.towns),
        month_chart=month_chart(report.months),
    )
