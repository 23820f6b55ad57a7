"""Back-office forms. Times are typed in Asia/Shanghai local time."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    FieldList,
    FormField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from ..activities.labels import audience_choices, kind_choices
from ..choices import town_choices, village_choices
from ..extensions import db
from ..forms import DecimalField, Form, IntegerField, SubForm
from ..i18n import LOCAL_TZ
from ..inputs import coerce_id, parse_id
from ..models import ActivityKind, Campaign, Department, Village
from ..years import YEAR_MAX, YEAR_MIN

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


def aware(value: datetime | None) -> datetime | None:
    """A datetime typed in local time, made timezone-aware."""
    return value.replace(tzinfo=LOCAL_TZ) if value else None


def _in_year_range(form, field):
    if field.data and not YEAR_MIN <= field.data.year <= YEAR_MAX:
        raise ValidationError(
            _l("日期须在 %(min)s 年至 %(max)s 年之间。", min=YEAR_MIN, max=YEAR_MAX)
        )


class SessionForm(SubForm):
    """One 场次. A row left entirely blank is ignored."""

    id = HiddenField()
    starts_at = DateTimeLocalField(
        _l("开始"), format=DATETIME_FORMAT, validators=[Optional(), _in_year_range]
    )
    ends_at = DateTimeLocalField(
        _l("结束"), format=DATETIME_FORMAT, validators=[Optional(), _in_year_range]
    )
    credit_hours = DecimalField(
        _l("学时"),
        places=1,
        validators=[
            Optional(),
            NumberRange(min=0, max=100, message=_l("学时须在 0 到 100 之间。")),
        ],
    )
    note = StringField(_l("备注"), validators=[Optional(), Length(max=200)])
    remove = BooleanField(_l("删除此场次"))

    @property
    def is_blank(self) -> bool:
        return not self.starts_at.data and not self.ends_at.data and not self.id.data

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if self.is_blank or self.remove.data:
            return ok
        if not self.starts_at.data and not self.starts_at.errors:
            self.starts_at.errors.append(_l("请填写开始时间。"))
            ok = False
        if not self.ends_at.data and not self.ends_at.errors:
            self.ends_at.errors.append(_l("请填写结束时间。"))
            ok = False
        if self.starts_at.data and self.ends_at.data and self.ends_at.data <= self.starts_at.data:
            self.ends_at.errors.append(_l("结束时间必须晚于开始时间。"))
            ok = False
        return ok


class ActivityForm(Form):
    title = StringField(_l("标题"), validators=[DataRequired(_l("请填写标题。")), Length(max=200)])
    kind = SelectField(_l("类型"), choices=kind_choices, validators=[DataRequired()])
    description = TextAreaField(_l("简介"), validators=[Optional(), Length(max=10000)])
    departments = SelectMultipleField(_l("主办部门"), coerce=coerce_id, validate_choice=False)
    campaign_id = SelectField(_l("专题"), coerce=coerce_id)
    town_id = SelectField(_l("镇街"), coerce=coerce_id)
    village_id = SelectField(_l("村/社区"), coerce=coerce_id)
    venue = StringField(_l("地点"), validators=[Optional(), Length(max=200)])
    latitude = DecimalField(
        _l("纬度"),
        places=6,
        validators=[
            Optional(),
            NumberRange(min=-90, max=90, message=_l("纬度须在 -90 到 90 之间。")),
        ],
    )
    longitude = DecimalField(
        _l("经度"),
        places=6,
        validators=[
            Optional(),
            NumberRange(min=-180, max=180, message=_l("经度须在 -180 到 180 之间。")),
        ],
    )
    audience = SelectField(_l("对象"), choices=audience_choices)
    capacity = IntegerField(
        _l("名额"),
        validators=[
            Optional(),
            NumberRange(min=0, max=100000, message=_l("名额须在 0 到 100000 之间。")),
        ],
    )
    waitlist_enabled = BooleanField(_l("满员后允许候补"), default=True)
    sms_verification = BooleanField(
        _l("报名需短信验证（报名人须输入发送到其手机的验证码，防止替他人手机号报名）"),
        default=False,
    )
    registration_opens_at = DateTimeLocalField(
        _l("报名开始"), format=DATETIME_FORMAT, validators=[Optional(), _in_year_range]
    )
    registration_closes_at = DateTimeLocalField(
        _l("报名截止"), format=DATETIME_FORMAT, validators=[Optional(), _in_year_range]
    )
    sessions = FieldList(FormField(SessionForm), min_entries=1, max_entries=50)
    # Trainings: whose roster cadres the training is for (training/invitations.py).
    roster_whole_district = BooleanField(_l("全区花名册上的干部"))
    roster_towns = SelectMultipleField(
        _l("以下镇街花名册上的干部"), coerce=coerce_id, validate_choice=False
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.departments.choices = [
            (d.id, d.name) for d in db.session.scalars(select(Department).order_by(Department.id))
        ]
        none = [(0, _l("（无）"))]
        self.campaign_id.choices = none + [
            (c.id, c.name)
            for c in db.session.scalars(select(Campaign).order_by(Campaign.starts_on.desc()))
        ]
        self.town_id.choices = none + town_choices()
        self.village_id.choices = none + village_choices()
        self.roster_towns.choices = town_choices()

    def validate_departments(self, field):
        if not field.data:
            raise ValidationError(_l("至少选择一个主办部门。"))
        known = {value for value, _label in field.choices}
        if not set(field.data) <= known:
            raise ValidationError(_l("所选部门不存在。"))

    def validate_village_id(self, field):
        if field.data:
            village = db.session.get(Village, field.data)
            if village is None or village.town_id != self.town_id.data:
                raise ValidationError(_l("所选村/社区不属于所选镇街。"))

    def validate_roster_towns(self, field):
        known = {value for value, _label in field.choices}
        if not set(field.data or []) <= known:
            raise ValidationError(_l("所选镇街不存在。"))
        invites = bool(field.data) or self.roster_whole_district.data
        if invites and self.kind.data != ActivityKind.TRAINING:
            raise ValidationError(_l("只有培训活动可以指定参训干部。"))

    def validate_registration_closes_at(self, field):
        opens = self.registration_opens_at.data
        if field.data and opens and field.data <= opens:
            raise ValidationError(_l("报名截止时间必须晚于报名开始时间。"))

    def validate_sessions(self, field):
        kept = [s for s in field.entries if not s.form.is_blank and not s.form.remove.data]
        if not kept:
            raise ValidationError(str(_l("至少需要一个场次。")))

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        lat_given = self.latitude.raw_data and self.latitude.raw_data[0].strip()
        lon_given = self.longitude.raw_data and self.longitude.raw_data[0].strip()
        if bool(lat_given) != bool(lon_given):
            self.longitude.errors = [*self.longitude.errors, _l("经纬度须同时填写或同时留空。")]
            ok = False
        return ok

    def session_rows(self) -> list[dict]:
        """Cleaned session rows: id (or None), aware times, credit hours, note, remove."""
        rows = []
        for entry in self.sessions.entries:
            f = entry.form
            if f.is_blank:
                continue
            raw_id = (f.id.data or "").strip()
            rows.append(
                {
                    # A tampered id (-1) names no session of the activity: the service says so.
                    "id": (parse_id(raw_id) or -1) if raw_id else None,
                    "remove": bool(f.remove.data),
                    "starts_at": aware(f.starts_at.data),
                    "ends_at": aware(f.ends_at.data),
                    "credit_hours": f.credit_hours.data
                    if isinstance(f.credit_hours.data, Decimal)
                    else None,
                    "note": (f.note.data or "").strip(),
                }
            )
        return rows


class CancelForm(Form):
    reason = TextAreaField(
        _l("取消原因"),
        validators=[DataRequired(_l("请说明取消原因。")), Length(max=500)],
    )


class DepartmentForm(Form):
    code = StringField(_l("代码"), validators=[DataRequired(_l("请填写代码。")), Length(max=32)])
    name = StringField(_l("名称"), validators=[DataRequired(_l("请填写名称。")), Length(max=64)])
    former_names = StringField(_l("曾用名"), validators=[Optional(), Length(max=200)])


class PaperSheetForm(Form):
    """The signed paper 签到表 typed in: a checkbox per line of the sheet.

    ``present``: the row keys ticked (``checkin.paper.SheetRow.key``); ``on_paper``: those
    the page showed as checked in on paper, comma-separated, so that only a tick the user
    took away undoes a paper check-in. The service checks the keys against the sheet.
    """

    present = SelectMultipleField(validate_choice=False)
    on_paper = HiddenField(validators=[Length(max=100_000)])
