"""What the assessment's page and its printable PDF draw: the workbook's three sheets (the
same cells as the XLSX) and the two charts, assembled here once for both."""

from __future__ import annotations

from typing import TypedDict

from ..spreadsheets import OfficeSheet
from .charts import MonthChart, TownChart, month_chart, town_chart
from .services import AnnualAssessment
from .xlsx import assessment_sheets


class AssessmentLayout(TypedDict):
    sheets: list[OfficeSheet]
    town_chart: TownChart
    month_chart: MonthChart


def assessment_layout(report: AnnualAssessment) -> AssessmentLayout:
    """The template context the page and the PDF share (``**`` it into the template)."""
    return {
        "sheets": assessment_sheets(report),
        "town_chart": town_chart(report.towns.towns),
        "month_chart": month_chart(report.months),
    }
