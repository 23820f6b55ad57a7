"""Forms of the senders: an organizer's broadcast, a coordinator's invitations, 退订."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, TextAreaField

from ..forms import Form
from ..inputs import coerce_id


class BroadcastForm(Form):
    # Empty or too long is refused by broadcasts.clean_text, beside this field.
    text = TextAreaField(_l("通知内容"))


class InvitationForm(Form):
    # Which trainings may be chosen is checked by invitations.training_for_town.
    activity_id = SelectField(_l("培训"), coerce=coerce_id, validate_choice=False)
