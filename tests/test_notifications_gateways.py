"""Each SMS backend against a fake server on 127.0.0.1 that checks what the real one does."""

from __future__ import annotations

import json

import pytest

from sciweek.notifications import messages
from sciweek.notifications.backends import (
    GatewayError,
    HttpJsonBackend,
    Sms,
    TencentBackend,
    make_backend,
)

from .fake_sms import FakeGateway

TENCENT = {
    "secret_id": "AKIDtestsecretid",
    "secret_key": "test-secret-key",
    "app_id": "1400000001",
    "sign_name": "区科协",
}
TEMPLATE_IDS = {name: str(1000 + i) for i, name in enumerate(messages.TEMPLATES)}


def _sms(template="cancelled", params=("果树修剪", "12月10日09:00", "暴雨"), key="k1"):
    text = "【区科协】活动取消：“果树修剪”（12月10日09:00）已取消，原因：暴雨。"
    return Sms(key=key, to="13800138000", text=text, template=template, params=params, segments=1)


@pytest.fixture
def http_gateway():
    fake = FakeGateway().start()
    yield fake
    fake.stop()


def _http(fake, **overrides):
    settings = {
        "url": fake.url + "/send",
        "key": fake.key,
        "template": '{"phone": "{phone}", "text": "{text}", "id": "{id}"}',
        "timeout": 2,
        **overrides,
    }
    return HttpJsonBackend(**settings)


def test_http_gateway_gets_the_signed_text_with_key_and_idempotency(http_gateway):
    receipt = _http(http_gateway).send(_sms())
    assert receipt.ref.startswith("fake-")
    [request] = http_gateway.requests
    assert request == {"phone": "13800138000", "text": _sms().text, "id": "k1"}
    # The same key again: the gateway answers without a second SMS.
    _http(http_gateway).send(_sms())
    assert len(http_gateway.requests) == 2
    assert len(http_gateway.delivered) == 1


def test_http_gateway_template_fills_strings_only(http_gateway):
    """A text with quotes and braces cannot break the JSON body (filled after parsing)."""
    backend = _http(
        http_gateway,
        template='{"phone": "{phone}", "text": "{text}", "id": "{id}", "meta": {"n": 1}}',
    )
    sms = Sms("k2", "13800138000", '【区科协】"引号" {id} \\ 测试', "changed", (), 1)
    backend.send(sms)
    assert http_gateway.requests[0]["text"] == sms.text
    assert http_gateway.requests[0]["meta"] == {"n": 1}


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (400, False)]
)
def test_http_gateway_errors_carry_the_answer(http_gateway, status, retryable):
    http_gateway.fail_next, http_gateway.fail_status = 1, status
    with pytest.raises(GatewayError) as caught:
        _http(http_gateway).send(_sms())
    assert caught.value.retryable is retryable
    assert caught.value.answer.startswith(f"HTTP {status}")
    assert "gateway unavailable" in caught.value.answer


def test_http_gateway_down_is_retryable():
    fake = FakeGateway()
    url = fake.url
    fake.server.server_close()  # nothing listens any more
    with pytest.raises(GatewayError) as caught:
        HttpJsonBackend(url, "k", json.dumps({"t": "{text}"}), 1).send(_sms())
    assert caught.value.retryable


@pytest.fixture
def tencent_gateway():
    templates = {
        TEMPLATE_IDS[name]: messages.provider_template_text(name) for name in messages.TEMPLATES
    }
    fake = FakeGateway(tencent={**TENCENT, "templates": templates}).start()
    yield fake
    fake.stop()


def _tencent(fake, **overrides):
    config = {
        "SCIWEEK_SMS_BACKEND": "tencent",
        "SCIWEEK_SMS_TENCENT_ENDPOINT": fake.url,
        "SCIWEEK_SMS_TENCENT_SECRET_ID": TENCENT["secret_id"],
        "SCIWEEK_SMS_TENCENT_SECRET_KEY": TENCENT["secret_key"],
        "SCIWEEK_SMS_TENCENT_APP_ID": TENCENT["app_id"],
        "SCIWEEK_SMS_TENCENT_REGION": "ap-guangzhou",
        "SCIWEEK_SMS_TENCENT_TEMPLATES": TEMPLATE_IDS,
        "SCIWEEK_SMS_SIGNATURE": TENCENT["sign_name"],
        "SCIWEEK_SMS_TIMEOUT_SECONDS": 2,
        **overrides,
    }
    return make_backend(config)


def test_tencent_sdk_request_passes_the_signature_and_parameter_checks(tencent_gateway):
    backend = _tencent(tencent_gateway)
    assert isinstance(backend, TencentBackend)
    receipt = backend.send(_sms())
    assert receipt.segments == 1
    assert receipt.ref
    [request] = tencent_gateway.requests
    assert request["PhoneNumberSet"] == ["+8613800138000"]
    assert request["TemplateId"] == TEMPLATE_IDS["cancelled"]
    assert request["TemplateParamSet"] == ["果树修剪", "12月10日09:00", "暴雨"]
    assert request["SessionContext"] == "k1"
    [delivered] = tencent_gateway.delivered.values()
    # What the phone shows is what sciweek rendered and logged.
    assert delivered["text"] == _sms().text


def test_tencent_bills_two_segments_for_a_confirmation_with_its_link(tencent_gateway):
    rendered = messages.render(
        "confirmed",
        {"title": "果树修剪", "starts_at": "2026-12-10T01:00:00+00:00", "place": "礼堂"},
        {"ticket_url": "https://kp.example.gov.cn/t/" + "A" * 32},
        signature="区科协",
    )
    sms = Sms("k3", "13800138000", rendered.text, "confirmed", rendered.params, rendered.segments)
    receipt = _tencent(tencent_gateway).send(sms)
    assert receipt.segments == rendered.segments == 2
    [delivered] = tencent_gateway.delivered.values()
    assert delivered["text"] == rendered.text


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"SCIWEEK_SMS_TENCENT_SECRET_KEY": "wrong"}, "AuthFailure.SignatureFailure"),
        ({"SCIWEEK_SMS_TENCENT_SECRET_ID": "AKIDother"}, "AuthFailure.SecretIdNotFound"),
        ({"SCIWEEK_SMS_TENCENT_APP_ID": "1400999999"}, "FailedOperation.SmsSdkAppIdVerifyFail"),
        ({"SCIWEEK_SMS_SIGNATURE": "别的签名"}, "FailedOperation.SignatureIncorrectOrUnapproved"),
        (
            {"SCIWEEK_SMS_TENCENT_TEMPLATES": {"cancelled": "999"}},
            "FailedOperation.TemplateIncorrectOrUnapproved",
        ),
    ],
)
def test_tencent_refusals_fail_without_retry(tencent_gateway, overrides, code):
    with pytest.raises(GatewayError) as caught:
        _tencent(tencent_gateway, **overrides).send(_sms())
    assert caught.value.answer.startswith(code)
    assert not caught.value.retryable
    assert tencent_gateway.delivered == {}


def test_tencent_wrong_parameter_count_is_refused(tencent_gateway):
    with pytest.raises(GatewayError) as caught:
        _tencent(tencent_gateway).send(_sms(params=("只有一个",)))
    assert caught.value.answer.startswith("InvalidParameterValue.TemplateParameterFormatError")


def test_tencent_without_a_template_id_fails_before_sending(tencent_gateway):
    with pytest.raises(GatewayError) as caught:
        _tencent(tencent_gateway, SCIWEEK_SMS_TENCENT_TEMPLATES={}).send(_sms())
    assert "SCIWEEK_SMS_TENCENT_TEMPLATES" in caught.value.answer
    assert tencent_gateway.requests == []


def test_tencent_server_errors_are_retryable(tencent_gateway):
    tencent_gateway.fail_next = 1
    with pytest.raises(GatewayError) as caught:
        _tencent(tencent_gateway).send(_sms())
    assert caught.value.retryable
    assert caught.value.answer.startswith("ServerNetworkError")
