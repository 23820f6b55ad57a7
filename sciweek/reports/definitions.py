"""What each figure of the annual assessment counts, in words: shown under the page's
tables, printed in the PDF and written as notes under the XLSX sheets (one text for all)."""

from __future__ import annotations

from flask_babel import gettext as _


def town_definitions() -> list[str]:
    """What the town columns count: on the page, in the PDF and under the sheet."""
    return [
        _(
            "应训人数：当年任何时候在本镇街花名册上的干部；已训人数：当年签到培训场次"
            "（设达标学时的，学时达标）的干部；覆盖率 = 已训人数 ÷ 应训人数，"
            "合计行按人数计算，不是各镇街百分比的平均。"
        ),
        _("差额：目标 × 应训人数（向上取整）− 已训人数，达标为 0。"),
        _("培训期数：当年已举办（已开始、未取消、非草稿）的培训，按举办地镇街统计。"),
        _(
            "参训人次：本镇街干部在培训场次的签到次数（一人参加两场算 2 人次）；"
            "学时：这些场次的学时合计，场次未记学时的按时长（结束 − 开始）计。"
        ),
    ]


def activity_definitions() -> list[str]:
    """What the activity columns count."""
    return [
        _("活动：当年有场次已举办（已开始、未取消、非草稿）的活动；场次：其中当年已举办的场次。"),
        _(
            "报名人数：占有名额的报名（含现场报名、花名册签到），不含候补和已取消的。签到人次：这些场次的有效签到次数。"
        ),
        _("受益群众人次、发放资料份数、咨询人次：取自各活动的活动总结（未填写总结的活动计 0）。"),
        _("多个部门联合主办的活动计入每个主办部门，合计行每项活动只计一次。"),
    ]
