"""The public listing's filter form (GET, no CSRF: it changes nothing)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import DateField, SelectField, StringField
from wtforms.validators import Length, Optional, ValidationError

from ..extensions import db
from ..forms import Form
from ..models import TOWN_ORDER, Campaign, Town
from ..years import YEAR_MAX, YEAR_MIN
from .labels import kind_choices


def _reasonable_date(form, field):
    if field.data and not YEAR_MIN <= field.data.year <= YEAR_MAX:
        raise ValidationError(_l("日期超出范围。"))


class ListingFilterForm(Form):
    class Meta:
        csrf = False

    kind = SelectField(_l("类型"), validators=[Optional()], validate_choice=True)
    town = SelectField(_l("镇街"), validators=[Optional()], validate_choice=True)
    campaign = SelectField(_l("专题"), validators=[Optional()], validate_choice=True)
    from_ = DateField(
        _l("从"), validators=[Optional(), _reasonable_date], name="from", format="%Y-%m-%d"
    )
    to = DateField(_l("到"), validators=[Optional(), _reasonable_date], format="%Y-%m-%d")
    q = StringField(_l("搜索"), validators=[Optional(), Length(max=100)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind.choices = [("", _l("全部类型")), *kind_choices()]
        self.town.choices = [("", _l("全部镇街"))] + [
            (t.code, t.name) for t in db.session.scalars(select(Town).order_by(*TOWN_ORDER))
        ]
        self.campaign.choices = [("", _l("全部专题"))] + [
            (str(c.id), c.name)
            for c in db.session.scalars(select(Campaign).order_by(Campaign.starts_on.desc()))
        ]

    def validate_to(self, field):
        if field.data and self.from_.data and field.data < self.from_.data:
            raise ValidationError(_l("结束日期不能早于开始日期。"))
