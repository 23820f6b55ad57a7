from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ..forms import Form


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
