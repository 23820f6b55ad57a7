"""The summary form: three counts, the experts present, a short text and photos."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import FieldList, FormField, MultipleFileField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional, StopValidation

from ..forms import Form, IntegerField, SubForm, add_error
from ..inputs import has_unsafe_text
from ..models import SUMMARY_COUNT_MAX, SUMMARY_EXPERTS_MAX
from .services import SUMMARY_TEXT_MAX, ExpertData, SummaryData

# A Chinese keyboard may type ０１２: they count as digits. Other scripts' digits (١٢) are
# refused by IntegerField with its message.
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")
EXPERT_BLANK_ROWS = 2


class CountField(IntegerField):
    """A count of people or copies: a whole number from 0 to SUMMARY_COUNT_MAX, in ASCII
    or full-width digits."""

    def __init__(self, label, **kwargs):
        super().__init__(
            label,
            validators=[
                InputRequired(_l("请填写数字，没有请填 0。")),
                NumberRange(
                    min=0,
                    max=SUMMARY_COUNT_MAX,
                    message=_l("须为 0 到 %(max)s 之间的整数。", max=SUMMARY_COUNT_MAX),
                ),
            ],
            **kwargs,
        )

    def pre_validate(self, form):
        if self.process_errors:  # not a number: say only that, not also the range
            raise StopValidation()

    def process_formdata(self, valuelist):
        if valuelist and isinstance(valuelist[0], str):
            if not valuelist[0].strip() or has_unsafe_text(valuelist[0]):
                self.data = None  # InputRequired or the control-character check says why
                return
            valuelist = [valuelist[0].translate(_FULL_WIDTH_DIGITS), *valuelist[1:]]
        super().process_formdata(valuelist)


class ExpertForm(SubForm):
    """One expert present; a row left blank is ignored."""

    name = StringField(_l("姓名"), validators=[Optional(), Length(max=64)])
    unit = StringField(_l("单位"), validators=[Optional(), Length(max=100)])
    specialty = StringField(_l("专业领域"), validators=[Optional(), Length(max=100)])

    @property
    def is_blank(self) -> bool:
        return not any((f.data or "").strip() for f in (self.name, self.unit, self.specialty))

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        if not self.is_blank and not (self.name.data or "").strip() and not self.name.errors:
            add_error(self.name, str(_l("请填写专家姓名。")))
            ok = False
        return ok

    def expert(self) -> ExpertData:
        return ExpertData(
            name=(self.name.data or "").strip(),
            unit=(self.unit.data or "").strip(),
            field=(self.specialty.data or "").strip(),
        )


class SummaryForm(Form):
    people_reached = CountField(_l("受益群众人次"))
    materials_distributed = CountField(_l("发放资料份数"))
    consultations = CountField(_l("咨询人次"))
    experts = FieldList(FormField(ExpertForm), max_entries=SUMMARY_EXPERTS_MAX)
    text = TextAreaField(
        _l("活动情况"),
        validators=[
            Optional(),
            Length(max=SUMMARY_TEXT_MAX, message=_l("最多 %(max)s 字。", max=SUMMARY_TEXT_MAX)),
        ],
    )
    photos = MultipleFileField(_l("添加照片"))

    def summary_data(self) -> SummaryData:
        """What was typed, once the form has validated (every count is then present)."""
        return SummaryData(
            people_reached=self.people_reached.data or 0,
            materials_distributed=self.materials_distributed.data or 0,
            consultations=self.consultations.data or 0,
            text=(self.text.data or "").strip(),
            experts=[e.form.expert() for e in self.experts if not e.form.is_blank],
        )

    def chosen_files(self) -> list:
        """The files chosen (a form sent with none carries one empty part)."""
        return [f for f in self.photos.data or [] if getattr(f, "filename", "")]

    def fill_experts(self, experts) -> None:
        while self.experts.entries:
            self.experts.pop_entry()
        for expert in experts:
            self.experts.append_entry(
                {"name": expert.name, "unit": expert.unit, "specialty": expert.field}
            )

    def pad_experts(self) -> None:
        """Offer blank rows for more experts."""
        blanks = sum(1 for e in self.experts.entries if e.form.is_blank)
        for _i in range(max(0, EXPERT_BLANK_ROWS - blanks)):
            if len(self.experts.entries) < SUMMARY_EXPERTS_MAX:
                self.experts.append_entry()
