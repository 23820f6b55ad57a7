"""``flask --app sciweek report annual --year YEAR --output FILE.xlsx|FILE.pdf``."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from ..pdf import PdfUnavailable
from ..spreadsheets import district_name, office_heading
from ..training.coverage import local_year_today
from .pdf import assessment_pdf
from .services import ReportYearError, annual_assessment, parse_report_year
from .xlsx import assessment_workbook


def init_app(app: Flask) -> None:
    app.cli.add_command(report_group)


@click.group("report")
def report_group():
    """Reports handed upward (年度目标考核)."""


@report_group.command("annual")
@click.option("--year", "raw_year", default="", help="Year (default: this year in Asia/Shanghai).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="FILE.xlsx (the office's workbook) or FILE.pdf (the printable A4 pages).",
)
@with_appcontext
def annual_command(raw_year: str, output: Path):
    """Write the annual assessment as XLSX or PDF (by the output's extension)."""
    try:
        year = parse_report_year(raw_year, local_year_today())
    except ReportYearError as exc:
        raise click.BadParameter(str(exc), param_hint="--year") from exc
    kind = output.suffix.lower()
    if kind not in (".xlsx", ".pdf"):
        raise click.BadParameter("the file name must end in .xlsx or .pdf", param_hint="--output")
    report = annual_assessment(year, district_name=district_name())
    if kind == ".xlsx":
        data = assessment_workbook(report, office_heading())
    else:
        try:
            data = assessment_pdf(report, office_heading())
        except PdfUnavailable as exc:
            raise click.ClickException(
                f"cannot draw PDFs here (WeasyPrint, Pango, fonts-noto-cjk): {exc}"
            ) from exc
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc}") from exc
    click.echo(f"{report.title}: {output} ({len(data)} bytes)")
