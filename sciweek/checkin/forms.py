"""Forms for check-in pages: API tokens, checker assignment, self check-in."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from ..forms import Form


class ApiTokenForm(Form):
    name = StringField(_l("设备名称"), validators=[Length(max=100)])


class CheckerForm(Form):
    username = SelectField(_l("签到员"), validators=[DataRequired()], validate_choice=False)


class SelfCheckInForm(Form):
    phone = StringField(_l("报名时填写的手机号"), validators=[DataRequired(), Length(max=20)])
