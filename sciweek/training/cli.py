"""``flask --app sciweek import-cadres`` and ``flask --app sciweek coverage``."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..i18n import local_today
from ..transactions import all_or_nothing, commits
from .coverage import coverage_by_town, local_year_today
from .roster import RosterFileError, RosterLimits, parse_roster
from .services import (
    RosterCheck,
    RosterImportError,
    check_roster,
    import_roster,
    roster_report,
    unreadable_report,
)

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2


def init_app(app: Flask) -> None:
    app.cli.add_command(import_cadres_command)
    app.cli.add_command(coverage_command)


def format_report(check: RosterCheck) -> str:
    """The preview report as plain text: sheets read, problems by sheet, row and column,
    rows passed over, new villages, counts per town."""
    report = roster_report(check)
    lines = [f"文件：{check.parsed.filename}"]
    if report["sheets"]:
        lines.append(f"读取工作表：{'、'.join(report['sheets'])}")
    lines.append(
        f"读取数据行：{report['rows_read']}；可导入：{report['valid_people']} 人；"
        f"数据行：{check.row_count}，无误：{check.valid_row_count}，"
        f"有错误：{check.row_count - check.valid_row_count}"
    )
    for key, label in (("errors", "错误"), ("warnings", "提醒"), ("skipped", "跳过")):
        for issue in report[key]:
            lines.append(f"[{label}] {_where(issue)}：{issue['message']}")
    for village in report["new_villages"]:
        rows = "、".join(str(r) for r in village["rows"])
        lines.append(f"[新村/社区] {village['town']} {village['village']}（第 {rows} 行）")
    lines.append("各镇街：")
    for town, c in check.town_counts.items():
        lines.append(
            f"  {town}：{c.rows} 行，{c.people} 人（新增 {c.new}，更新 {c.updated}，"
            f"不变 {c.unchanged}，合并 {c.merged}，新村/社区 {c.new_villages}），"
            f"错误行 {c.error_rows}"
        )
    return "\n".join(lines)


def _where(issue: dict) -> str:
    sheet = f"工作表“{issue['sheet']}” " if issue["sheet"] else ""
    row = f"第 {issue['row']} 行" if issue["row"] else "全表"
    column = f" {issue['column']}" if issue["column"] else ""
    return f"{sheet}{row}{column}"


def _echo_json(report: dict) -> None:
    click.echo(json.dumps(report, ensure_ascii=False, indent=2))


@click.command("import-cadres")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check and report; write nothing.")
@click.option("--only-valid", is_flag=True, help="Import the rows without errors, skip the rest.")
@click.option(
    "--create-villages",
    is_flag=True,
    help="Create the villages the file names that are not on the list yet (listed by a dry run).",
)
@click.option(
    "--skip-hidden", is_flag=True, help="Leave out rows hidden in the sheet (by hand or a filter)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: the report as one JSON object on standard output.",
)
@click.option(
    "--active-from",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Date new cadres join the roster (default: today).",
)
@with_appcontext
@commits
def import_cadres_command(
    file: Path,
    dry_run: bool,
    only_valid: bool,
    create_villages: bool,
    skip_hidden: bool,
    fmt: str,
    active_from,
):
    """Import a cadre roster (.xlsx; .csv or .txt in UTF-8, GBK or UTF-16).

    Exit status: 0 imported or clean dry run, 1 validation errors (or unconfirmed new
    villages), 2 unreadable file.
    """
    as_json = fmt == "json"
    limits = RosterLimits.from_config(current_app.config)
    try:
        with file.open("rb") as fh:
            data = fh.read(limits.max_file_bytes + 1)  # one byte more says "too big"
        parsed = parse_roster(file.name, data, limits, include_hidden=not skip_hidden)
    except (OSError, RosterFileError) as exc:
        message = f"无法读取文件：{exc}" if isinstance(exc, OSError) else f"无法导入：{exc}"
        if as_json:
            _echo_json(unreadable_report(message))
        else:
            click.echo(message, err=True)
        sys.exit(EXIT_UNREADABLE)
    check = check_roster(parsed)
    if as_json:
        _echo_json(roster_report(check))
    else:
        click.echo(format_report(check))
    if dry_run:
        db.session.rollback()  # a dry run writes nothing, whatever the checks loaded
        sys.exit(EXIT_INVALID if check.has_errors else EXIT_OK)
    if check.has_errors and not only_valid:
        click.echo("有错误，未导入任何数据（可加 --only-valid 只导入无误的行）。", err=True)
        sys.exit(EXIT_INVALID)
    try:
        with all_or_nothing():
            result = import_roster(
                check,
                active_from=active_from.date() if active_from else local_today(),
                only_valid=only_valid,
                new_villages=check.new_village_keys if create_villages else (),
            )
    except RosterImportError as exc:
        hint = "（新村/社区需加 --create-villages 确认新建）" if check.new_villages else ""
        click.echo(f"{exc}{hint}", err=True)
        sys.exit(EXIT_INVALID)
    except IntegrityError:
        click.echo(
            "导入失败：数据与其他记录冲突（可能有人同时在修改花名册），未导入任何数据。", err=True
        )
        sys.exit(EXIT_INVALID)
    click.echo(
        f"已导入：新增 {result.created} 人，更新 {result.updated} 人，不变 {result.unchanged} 人，"
        f"新建村/社区 {result.villages_created} 个，跳过 {result.skipped_rows} 行，"
        f"关联此前的报名 {result.linked_registrations} 条。",
        err=as_json,
    )
    for refused in result.refused_links:
        click.echo(f"[提醒] {refused.message}", err=as_json)
    sys.exit(EXIT_OK)


@click.command("coverage")
@click.option("--year", type=int, default=None, help="Year (default: this year in Asia/Shanghai).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@with_appcontext
def coverage_command(year: int | None, fmt: str):
    """Cadre training coverage per town and for the district."""
    report = coverage_by_town(year or local_year_today())
    if fmt == "json":
        click.echo(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
        return
    header = [
        "code",
        "name",
        "cadres",
        "trained",
        "coverage",
        "target",
        "gap",
        "attendances",
        "trainings",
        "hours",
    ]
    rows = [
        [
            t["code"],
            t["name"],
            t["cadres"],
            t["trained"],
            f"{t['coverage']:.4f}",
            "" if t["target"] is None else f"{t['target']:.4f}",
            "" if t["gap"] is None else t["gap"],
            t["attendances"],
            t["trainings"],
            t["hours"],
        ]
        for t in (town.as_json() for town in report.towns)
    ]
    district = report.as_json()["district"]
    total = [
        "",
        "全区",
        district["cadres"],
        district["trained"],
        f"{district['coverage']:.4f}",
        "" if district["target"] is None else f"{district['target']:.4f}",
        "" if district["gap"] is None else district["gap"],
        report.attendances,
        report.trainings,
        float(report.hours),
    ]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        writer.writerow(["district", *total[1:]])
        click.echo(out.getvalue(), nl=False)
        return
    click.echo(f"{report.year} 年农村基层干部培训覆盖率")
    table = [["代码", "镇街", "应训", "已训", "覆盖率", "目标", "差额", "人次", "期数", "学时"]]
    for row in [*rows, total]:
        shown = list(row)
        shown[4] = f"{float(row[4]) * 100:.1f}%"
        shown[5] = f"{float(row[5]) * 100:.1f}%" if row[5] != "" else "-"
        table.append([str(v) for v in shown])
    widths = [max(_width(r[i]) for r in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(v + " " * (w - _width(v)) for v, w in zip(row, widths, strict=True)))
    if district["town_gaps"] is not None:
        click.echo(f"各镇街差额之和：{district['town_gaps']}")
    if district["target_source"] == "towns":
        click.echo("注：本年未设全区目标，全区目标按各镇街目标折算。")


def _width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)
