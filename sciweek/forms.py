"""What every form shares: a message beside any field holding control characters, numbers
in ASCII digits within what the database holds, and HTML-form bodies only.

Every form derives from ``Form`` (a FlaskForm), and every row of a FieldList from
``SubForm``; ``tests/test_inputs.py`` checks that no form escapes.
"""

from __future__ import annotations

import re

from flask import request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto
from flask_wtf.i18n import translations as wtf_translations
from wtforms import DecimalField as _DecimalField
from wtforms import Field, FieldList, FormField
from wtforms import Form as _PlainForm
from wtforms import IntegerField as _IntegerField
from wtforms.meta import DefaultMeta
from wtforms.validators import StopValidation

from .inputs import INT32_MAX, has_unsafe_text, parse_int, without_unsafe_text

_DECIMAL = re.compile(r"[+-]?(?:[0-9]{1,12}(?:\.[0-9]{0,12})?|\.[0-9]{1,12})")


def reject_unsafe_text(form, field) -> None:
    """First validator of every field: NUL, control characters or broken text are an error
    beside the field; the value shown back has them removed, ready to send again."""
    raw = [v for v in field.raw_data or () if isinstance(v, str)]
    if any(has_unsafe_text(v) for v in raw):
        if isinstance(field.data, str):
            field.data = without_unsafe_text(field.data)
        field.raw_data = [without_unsafe_text(v) for v in raw]
        raise StopValidation(_l("不能包含控制字符（如空字符），请删除后重试。"))


class _CheckedFieldsMeta(DefaultMeta):
    def bind_field(self, form, unbound_field, options):
        field = super().bind_field(form, unbound_field, options)
        if not isinstance(field, FieldList | FormField):  # rows check their own fields
            field.validators = [reject_unsafe_text, *field.validators]
        return field


class Form(FlaskForm):
    """The base of every form in sciweek."""

    class Meta(_CheckedFieldsMeta, FlaskForm.Meta):
        def wrap_formdata(self, form, formdata):
            # HTML forms only: Flask-WTF would turn a JSON body into form data, and a JSON
            # list or a nested object there is a 500. A JSON body fills no field.
            if formdata is _Auto and request.is_json and not (request.form or request.files):
                return None
            return super().wrap_formdata(form, formdata)


class SubForm(_PlainForm):
    """A form nested in a ``Form`` (FieldList / FormField rows).

    WTForms' own messages ("不是有效的日期时间值") come in the visitor's language, as they
    do for FlaskForm; a plain ``Form`` would speak English.
    """

    class Meta(_CheckedFieldsMeta):
        def get_translations(self, form):
            return wtf_translations


class IntegerField(_IntegerField):
    """An integer typed in ASCII digits (``int()`` also takes ``١٢`` and ``1_000``) that an
    integer column can hold."""

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        self.data = parse_int(valuelist[0], minimum=-INT32_MAX - 1, maximum=INT32_MAX)
        if self.data is None:
            if re.fullmatch(r"\s*[+-]?[0-9]+\s*", valuelist[0]):
                raise ValueError(_l("数值超出范围。"))
            raise ValueError(_l("请填写整数（只用数字 0-9）。"))


class DecimalField(_DecimalField):
    """A decimal typed as 12.5 in ASCII digits: no NaN, Infinity, exponent or other
    scripts' digits (``Decimal`` takes them all, and comparing NaN raises)."""

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        if not _DECIMAL.fullmatch(valuelist[0].strip()):
            self.data = None
            raise ValueError(_l("请填写数字，例如 2.5（只用数字 0-9 和小数点）。"))
        super().process_formdata([valuelist[0].strip()])


class ConfirmForm(Form):
    """An empty form: a POST button with CSRF protection."""


def add_error(field: Field, message: str) -> None:
    """A service's refusal shown beside ``field`` (after the form's own validation, or
    without it: an unvalidated field's errors are a tuple)."""
    field.errors = [*field.errors, message]
