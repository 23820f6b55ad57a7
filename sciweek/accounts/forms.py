from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, HiddenField, PasswordField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from ..forms import Form
from .passwords import MAX_LENGTH


class LoginForm(Form):
    # Citizens' accounts are named by their phone number; staff type their user name.
    username = StringField(
        _l("手机号"), validators=[DataRequired(_l("请输入手机号。")), Length(max=64)]
    )
    password = PasswordField(
        _l("密码"), validators=[DataRequired(_l("请输入密码。")), Length(max=200)]
    )
    remember = BooleanField(_l("记住我"))
    next = HiddenField()


def _new_password_fields() -> tuple[PasswordField, PasswordField]:
    """A new password and its confirmation (the rules: ``passwords.password_problem``)."""
    return (
        PasswordField(
            _l("新密码"),
            validators=[
                DataRequired(_l("请输入新密码。")),
                Length(max=MAX_LENGTH, message=_l("密码不能超过 %(max)d 位。")),
            ],
        ),
        PasswordField(
            _l("再次输入新密码"),
            validators=[EqualTo("password", message=_l("两次输入的密码不一致。"))],
        ),
    )


class ChangePasswordForm(Form):
    current = PasswordField(
        _l("当前密码"),
        validators=[DataRequired(_l("请输入当前密码。")), Length(max=MAX_LENGTH)],
    )
    password, confirm = _new_password_fields()


class SetPasswordForm(Form):
    password, confirm = _new_password_fields()


class ForgotPasswordForm(Form):
    identifier = StringField(
        _l("用户名、手机号或邮箱"),
        validators=[DataRequired(_l("请填写用户名、手机号或邮箱。")), Length(max=64)],
    )


class ResetPasswordForm(Form):
    identifier = HiddenField(validators=[DataRequired(), Length(max=64)])
    code = StringField(
        _l("短信验证码"), validators=[DataRequired(_l("请填写验证码。")), Length(max=12)]
    )
    password, confirm = _new_password_fields()


# --- the admins' pages (/manage/users) ------------------------------------------------

SEND_CHOICES = [
    ("show", _l("在页面上显示链接（只显示这一次）")),
    ("send", _l("发送给本人（短信）")),
]


class AccountForm(Form):
    """An account's role, scope and contacts (the user name is set once, at creation)."""

    display_name = StringField(_l("姓名"), validators=[Length(max=64)])
    role = SelectField(_l("角色"), validate_choice=True)
    department = SelectField(_l("部门（组织者必填）"), validate_choice=True, default="")
    town = SelectField(_l("镇街（联络员必填）"), validate_choice=True, default="")
    email = StringField(_l("邮箱"), validators=[Length(max=254)])
    phone = StringField(_l("手机号"), validators=[Length(max=32)])


class _SendChoice:
    """The choice of how a set-password link goes (choices set per form: WTForms warns
    about choices given as pairs when the field is declared)."""

    send: RadioField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.send.choices = SEND_CHOICES


class NewAccountForm(_SendChoice, AccountForm):
    username = StringField(
        _l("用户名"),
        validators=[DataRequired(_l("请填写用户名。")), Length(max=64)],
    )
    send = RadioField(_l("设置密码链接"), default="show")


class EditAccountForm(AccountForm):
    """The phone field starts empty (the number is shown masked beside it, never in full):
    left empty it keeps the number, typed it replaces it, ``remove_phone`` deletes it."""

    remove_phone = BooleanField(_l("删除手机号"))
    must_change_password = BooleanField(_l("下次登录须修改密码"))


class LinkForm(_SendChoice, Form):
    send = RadioField(_l("发送方式"), default="show")
