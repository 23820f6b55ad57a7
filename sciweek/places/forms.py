"""Forms of the places pages. The rules (uniqueness, history) are in places.services; the
forms check what a field alone can say, with the message beside it."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import DateField, HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from ..activities.labels import kind_choices
from ..forms import Form, IntegerField
from ..inputs import coerce_id
from .services import CAMPAIGN_NAME_MAX, CODE_MAX, FORMER_NAMES_MAX, NAME_MAX, POSITION_MAX

_NAME_TOO_LONG = _l("名称不能超过 %(max)d 个字。")


def _name(label, limit: int = NAME_MAX) -> StringField:
    return StringField(
        label,
        validators=[DataRequired(_l("请填写名称。")), Length(max=limit, message=_NAME_TOO_LONG)],
    )


def _former_names() -> StringField:
    return StringField(
        _l("曾用名（用“、”分隔）"),
        validators=[
            Optional(),
            Length(max=FORMER_NAMES_MAX, message=_l("曾用名合计不能超过 %(max)d 个字。")),
        ],
    )


class TownForm(Form):
    name = _name(_l("镇街名称"))
    code = StringField(
        _l("代码"),
        validators=[
            DataRequired(_l("请填写代码。")),
            Length(max=CODE_MAX, message=_l("代码不能超过 %(max)d 个字符。")),
        ],
    )
    position = IntegerField(
        _l("排序号（小的在前，留空排在最后）"),
        validators=[
            Optional(),
            NumberRange(min=0, max=POSITION_MAX, message=_l("排序号须在 0 到 9999 之间。")),
        ],
    )


class TownEditForm(TownForm):
    position = IntegerField(
        _l("排序号（小的在前）"),
        validators=[
            InputRequired(_l("请填写排序号。")),
            NumberRange(min=0, max=POSITION_MAX, message=_l("排序号须在 0 到 9999 之间。")),
        ],
    )
    former_names = _former_names()


class AliasForm(Form):
    alias = StringField(
        _l("别名"),
        validators=[
            DataRequired(_l("请填写别名。")),
            Length(max=NAME_MAX, message=_l("别名不能超过 64 个字。")),
        ],
    )


class VillageForm(Form):
    name = _name(_l("村/社区名称"))


class VillageEditForm(VillageForm):
    former_names = _former_names()


class MergeForm(Form):
    """Step one chooses the village to keep; step two (``confirmed`` = 1) merges."""

    target_id = SelectField(_l("并入"), coerce=coerce_id)
    confirmed = HiddenField()


class MoveForm(Form):
    """Step one chooses the town; step two (``confirmed`` = 1) moves, after the warning."""

    town_id = SelectField(_l("移到镇街"), coerce=coerce_id)
    confirmed = HiddenField()


class CampaignForm(Form):
    name = _name(_l("专题名称"), CAMPAIGN_NAME_MAX)
    kind = SelectField(_l("类型"), choices=kind_choices)
    starts_on = DateField(_l("开始日期"), validators=[DataRequired(_l("请填写开始日期。"))])
    ends_on = DateField(_l("结束日期"), validators=[DataRequired(_l("请填写结束日期。"))])


class CampaignEditForm(CampaignForm):
    former_names = _former_names()
