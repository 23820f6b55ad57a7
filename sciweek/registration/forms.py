from __future__ import annotations

import secrets

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from ..choices import town_choices, village_choices
from ..forms import Form
from ..identity import IdentityError, normalize_phone
from ..inputs import coerce_id


def _valid_phone(form, field):
    try:
        field.data = normalize_phone(field.data)
    except IdentityError as exc:
        raise ValidationError(str(exc)) from None


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class RegistrationForm(Form):
    name = StringField(
        _l("姓名"),
        validators=[
            DataRequired(_l("请填写姓名。")),
            Length(max=50, message=_l("姓名不能超过 50 个字。")),
        ],
    )
    phone = StringField(_l("手机号"), validators=[DataRequired(_l("请填写手机号。")), _valid_phone])
    # Choices are checked by the registration service, so a POST in a rush does not
    # load every town and village; they are loaded only to render the form.
    town_id = SelectField(
        _l("所在镇街（选填）"), coerce=coerce_id, validators=[Optional()], validate_choice=False
    )
    village_id = SelectField(
        _l("村/社区（选填）"), coerce=coerce_id, validators=[Optional()], validate_choice=False
    )
    submission = HiddenField()
    # Shown only for an activity that asks for it (报名需短信验证); checked by the service.
    verification_code = StringField(
        _l("短信验证码"), validators=[Optional(), Length(max=10)], filters=[_strip]
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.town_id.choices = self.village_id.choices = []
        if not self.submission.data:
            self.submission.data = secrets.token_urlsafe(16)

    def load_choices(self) -> RegistrationForm:
        none = [(0, _l("（不填）"))]
        self.town_id.choices = none + town_choices()
        self.village_id.choices = none + village_choices()
        return self


class FindTicketForm(Form):
    phone = StringField(
        _l("报名手机号"), validators=[DataRequired(_l("请填写手机号。")), _valid_phone]
    )
    short_code = StringField(
        _l("票码（6 位）"), validators=[DataRequired(_l("请填写票码。")), Length(max=10)]
    )


class RecoverAskForm(Form):
    """找回电子票, step 1: the phone the registrations were made with."""

    phone = StringField(
        _l("报名手机号"), validators=[DataRequired(_l("请填写手机号。")), _valid_phone]
    )


class RecoverCodeForm(Form):
    """找回电子票, step 2: the code sent to that phone."""

    phone = HiddenField(validators=[DataRequired(_l("请填写手机号。")), _valid_phone])
    code = StringField(
        _l("短信验证码（6 位数字）"),
        validators=[DataRequired(_l("请填写短信验证码。")), Length(max=10)],
        filters=[_strip],
    )


class SignupForm(Form):
    phone = StringField(_l("手机号"), validators=[DataRequired(_l("请填写手机号。")), _valid_phone])
    display_name = StringField(_l("姓名"), validators=[Optional(), Length(max=50)])
    password = PasswordField(
        _l("密码"),
        validators=[
            DataRequired(_l("请设置密码。")),
            Length(min=8, max=200, message=_l("密码至少 8 位。")),
        ],
    )
    confirm = PasswordField(
        _l("确认密码"), validators=[EqualTo("password", message=_l("两次输入的密码不一致。"))]
    )
