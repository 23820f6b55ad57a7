"""The annual assessment as an XLSX workbook in the form offices hand upward.

Three sheets (towns, departments, campaigns), each with a title row, 填报单位 and 填报日期,
Chinese headers only, a totals row, notes and the 单位负责人 / 填报人 line. No internal codes;
numbers are numbers (shares as fractions formatted as percentages); text is formula-safe
(``spreadsheets.office_workbook``).
"""

from __future__ import annotations

from flask_babel import gettext as _

from ..activities.labels import KIND_LABELS
from ..i18n import format_date
from ..spreadsheets import OfficeHeading, OfficeSheet, office_workbook
from .definitions import activity_definitions, town_definitions
from .services import KINDS, ActivityFigures, AnnualAssessment

PERCENT = "0.0%"
HOURS = "0.0"


def town_header() -> list[str]:
    return [
        _("序号"),
        _("镇街"),
        _("应训人数"),
        _("已训人数"),
        _("覆盖率"),
        _("目标"),
        _("差额（人）"),
        _("培训期数"),
        _("参训人次"),
        _("学时"),
    ]


def figures_header() -> list[str]:
    """The columns of an activity table after its names."""
    return [
        *(_("%(kind)s（项）", kind=KIND_LABELS[k]) for k in KINDS[:-1]),
        _("培训（期）"),
        _("活动合计（项）"),
        _("场次"),
        _("报名人数"),
        _("签到人次"),
        _("受益群众人次"),
        _("发放资料（份）"),
        _("咨询人次"),
    ]


def figures_cells(figures: ActivityFigures) -> list[int]:
    return [
        *figures.kind_counts(),
        figures.activities,
        figures.sessions,
        figures.registered,
        figures.checked_in,
        figures.people_reached,
        figures.materials,
        figures.consultations,
    ]


def _blank_if_none(value):
    return "" if value is None else value


def towns_sheet(report: AnnualAssessment) -> OfficeSheet:
    district = report.towns
    rows = [
        [
            n,
            t.name,
            t.cadres,
            t.trained,
            t.coverage,
            _blank_if_none(t.target),
            _blank_if_none(t.gap),
            t.trainings,
            t.attendances,
            float(t.hours),
        ]
        for n, t in enumerate(district.towns, start=1)
    ]
    totals = [
        _("合计"),
        "",
        district.cadres,
        district.trained,
        district.coverage,
        _blank_if_none(district.target),
        _blank_if_none(district.gap),
        district.trainings,
        district.attendances,
        float(district.hours),
    ]
    notes = [_("注：") + " ".join(town_definitions())]
    if district.town_gaps is not None:
        notes.append(_("各镇街差额之和：%(n)s 人（合计行为全区差额）。", n=district.town_gaps))
    if district.target is not None and not district.target_is_own:
        notes.append(_("本年未设全区目标，合计行的目标按各镇街目标折算。"))
    if district.trainings != report.town_trainings:
        notes.append(
            _(
                "合计期数含未指定镇街的全区性培训 %(n)s 期。",
                n=district.trainings - report.town_trainings,
            )
        )
    return OfficeSheet(
        name=_("镇街培训"),
        title=report.title,
        header=town_header(),
        rows=rows,
        totals=totals,
        notes=notes,
        formats={4: PERCENT, 5: PERCENT, 9: HOURS},
    )


def departments_sheet(report: AnnualAssessment) -> OfficeSheet:
    rows = [[d.name, *figures_cells(d.figures)] for d in report.departments]
    if report.without_department is not None:
        rows.append([_("未指定部门"), *figures_cells(report.without_department)])
    return OfficeSheet(
        name=_("部门活动"),
        title=report.departments_title,
        header=[_("序号"), _("部门"), *figures_header()],
        rows=[[n, *row] for n, row in enumerate(rows, start=1)],
        totals=[_("合计"), "", *figures_cells(report.activities)],
        notes=[_("注：") + " ".join(activity_definitions())],
    )


def campaigns_sheet(report: AnnualAssessment) -> OfficeSheet:
    return OfficeSheet(
        name=_("专题活动"),
        title=report.campaigns_title,
        header=[_("序号"), _("专题活动"), _("类别"), _("起止日期"), *figures_header()],
        rows=[
            [
                n,
                c.name,
                str(KIND_LABELS[c.kind]),
                f"{format_date(c.starts_on)}–{format_date(c.ends_on)}",
                *figures_cells(c.figures),
            ]
            for n, c in enumerate(report.campaigns, start=1)
        ],
        totals=[_("合计"), "", "", "", *figures_cells(report.campaign_totals)],
        notes=[_("注：科技活动周、科普日专题中当年举办的活动；一项活动只属于一个专题。")],
    )


def assessment_sheets(report: AnnualAssessment) -> list[OfficeSheet]:
    """The assessment's three tables, in order: the workbook's sheets, and the tables of the
    page and the PDF (``layout.assessment_layout``)."""
    return [towns_sheet(report), departments_sheet(report), campaigns_sheet(report)]


def assessment_workbook(report: AnnualAssessment, heading: OfficeHeading) -> bytes:
    return office_workbook(assessment_sheets(report), heading)
