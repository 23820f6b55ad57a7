"""Training back-office forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    FormField,
    HiddenField,
    SelectMultipleField,
)
from wtforms.validators import DataRequired, NumberRange, Optional
from wtforms.widgets import CheckboxInput, HiddenInput, ListWidget

from ..forms import DecimalField, Form, IntegerField, SubForm


class RosterUploadForm(Form):
    file = FileField(
        _l("花名册文件（.xlsx、.csv 或 .txt）"), validators=[FileRequired(_l("请选择文件。"))]
    )
    skip_hidden = BooleanField(_l("不导入表格中隐藏的行和被筛选掉的行"))


class ConfirmImportForm(Form):
    active_from = DateField(
        _l("新干部进入花名册的日期"), validators=[DataRequired(_l("请填写日期。"))]
    )
    # Values "town_id:village name", one per new village of the preview; checked = create.
    villages = SelectMultipleField(
        _l("确认新建的村/社区"),
        validate_choice=False,
        option_widget=CheckboxInput(),
        widget=ListWidget(prefix_label=False),
    )
    all_villages = BooleanField(_l("新建上面列出的全部村/社区"))
    only_valid = BooleanField(_l("只导入无误的行，跳过有错误的行（及未确认新建的村/社区的行）"))


class LeaveForm(Form):
    left_on = DateField(_l("离任日期"), validators=[DataRequired(_l("请填写离任日期。"))])


class TargetRowForm(SubForm):
    town_id = HiddenField()
    target_percent = DecimalField(
        _l("目标百分比"),
        places=2,
        validators=[
            Optional(),
            NumberRange(min=0, max=100, message=_l("目标须在 0 到 100 之间。")),
        ],
    )
    threshold_hours = DecimalField(
        _l("达标学时"),
        places=1,
        validators=[
            Optional(),
            NumberRange(min=0, max=999, message=_l("学时须在 0 到 999 之间。")),
        ],
    )


class TargetsForm(Form):
    district_percent = DecimalField(
        _l("全区目标百分比"),
        places=2,
        validators=[
            Optional(),
            NumberRange(min=0, max=100, message=_l("目标须在 0 到 100 之间。")),
        ],
    )
    rows = FieldList(FormField(TargetRowForm))


class LinkAttendeeForm(Form):
    registration_id = IntegerField(widget=HiddenInput(), validators=[DataRequired()])
    cadre_id = IntegerField(widget=HiddenInput(), validators=[DataRequired()])
