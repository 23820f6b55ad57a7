"""Forms for check-in pages: API tokens, checker assignment, self check-in."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import HiddenInput

from ..forms import Form, IntegerField


class ApiTokenForm(Form):
    name = StringField(_l("设备名称"), validators=[Length(max=100)])


class CheckerForm(Form):
    username = SelectField(_l("签到员"), validators=[DataRequired()], validate_choice=False)


class SelfCheckInForm(Form):
    """Self check-in from any device: the phone and the ticket's short code."""

    phone = StringField(
        _l("报名时填写的手机号"), validators=[DataRequired(_l("请填写手机号。")), Length(max=20)]
    )
    short_code = StringField(
        _l("票码（6 位）"), validators=[DataRequired(_l("请填写票码。")), Length(max=10)]
    )


class HeldTicketForm(Form):
    """Self check-in with a ticket this device holds (one button per ticket)."""

    registration_id = IntegerField(widget=HiddenInput())


class CadreSelfCheckInForm(Form):
    """Self check-in of a roster cadre: the phone on the roster and the last 6 characters
    of the ID number (``roster_door.PhoneAndIdTail``)."""

    phone = StringField(
        _l("花名册登记的手机号"), validators=[DataRequired(_l("请填写手机号。")), Length(max=20)]
    )
    id_tail = StringField(
        _l("身份证号后 6 位"),
        validators=[DataRequired(_l("请填写身份证号后 6 位。")), Length(max=12)],
    )


class CadreSmsCodeForm(Form):
    """Self check-in of a roster cadre with an SMS code: the phone on the roster (its
    "发送验证码" button asks for the code) and the code (``roster_door.SmsCode``)."""

    phone = StringField(
        _l("花名册登记的手机号"), validators=[DataRequired(_l("请填写手机号。")), Length(max=20)]
    )
    code = StringField(
        _l("短信验证码"),
        validators=[DataRequired(_l("请填写短信验证码。")), Length(max=12)],
    )


class RosterCheckInForm(Form):
    """The check-in button of a cadre on a training's door list."""

    cadre_id = IntegerField(widget=HiddenInput(), validators=[DataRequired()])
    session_id = IntegerField(widget=HiddenInput(), validators=[DataRequired()])
