"""SMS channels behind one interface: ``SCIWEEK_SMS_BACKEND`` = console | http | tencent.

A backend has ``send(sms) -> Receipt`` and raises ``GatewayError`` (``retryable`` or not,
with the gateway's answer). ``idempotent`` says whether sending the same ``Sms.key``
twice delivers once (then a send cut off by a dying worker is simply sent again);
otherwise such a send is marked failed rather than risk a duplicate. E-mail for staff
accounts is a second channel with the same shape (``mail``, ``Channel.EMAIL``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from flask import Flask
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models as tencent_models
from tencentcloud.sms.v20210111.sms_client import SmsClient

log = logging.getLogger("sciweek.sms")


@dataclass(frozen=True)
class Sms:
    key: str  # the outbox message's dedupe key: the gateway's idempotency key
    to: str  # 11-digit mainland mobile number
    text: str  # as the phone shows it, with the 【签名】
    template: str  # template name (messages.TEMPLATES)
    params: tuple[str, ...]  # the template's parameters, in order
    segments: int


@dataclass(frozen=True)
class Receipt:
    ref: str = ""  # the gateway's id for the message
    segments: int | None = None  # as the gateway billed it, when it says


class GatewayError(Exception):
    def __init__(self, answer: str, *, retryable: bool):
        super().__init__(answer)
        self.answer = answer[:1000]
        self.retryable = retryable


class SmsBackend(Protocol):
    name: str
    idempotent: bool

    def send(self, sms: Sms) -> Receipt: ...


class ConsoleBackend:
    """Development: each message goes to the log, nothing leaves the machine."""

    name = "console"
    idempotent = True

    def send(self, sms: Sms) -> Receipt:
        log.warning("SMS to %s (%d segment(s)): %s", sms.to, sms.segments, sms.text)
        return Receipt(ref=f"console-{sms.key}", segments=sms.segments)


_PLACEHOLDER = re.compile(r"\{(phone|text|id|template|segments)\}")


def _fill(template: Any, values: dict[str, str]) -> Any:
    """The JSON template with {phone}, {text}, {id}, ... replaced in its strings only."""
    if isinstance(template, str):
        # One pass: a value that itself contains "{id}" is not filled again.
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
    if isinstance(template, list):
        return [_fill(item, values) for item in template]
    if isinstance(template, dict):
        return {key: _fill(value, values) for key, value in template.items()}
    return template


class HttpJsonBackend:
    """A generic HTTP gateway taking one JSON POST per message.

    The body is ``SCIWEEK_SMS_HTTP_TEMPLATE`` with ``{phone}``, ``{text}``, ``{id}``
    (the idempotency key), ``{template}``, ``{segments}`` filled in; ``Authorization:
    Bearer <SCIWEEK_SMS_HTTP_KEY>`` and ``Idempotency-Key: <id>`` go as headers. A 2xx
    answer is success (its JSON ``id``, if any, is kept); 408, 429 and 5xx, timeouts and
    refused connections are retried; any other answer fails the message.
    """

    name = "http"
    idempotent = True

    def __init__(self, url: str, key: str, template: str, timeout: float):
        self.url = url
        self.key = key
        self.template = json.loads(template)
        self.timeout = timeout
        self._session: requests.Session | None = None
        self._pid = 0

    def _http(self) -> requests.Session:
        # One keep-alive session per process (a forked worker makes its own).
        if self._session is None or self._pid != os.getpid():
            self._session = requests.Session()
            self._pid = os.getpid()
        return self._session

    def send(self, sms: Sms) -> Receipt:
        body = _fill(
            self.template,
            {
                "phone": sms.to,
                "text": sms.text,
                "id": sms.key,
                "template": sms.template,
                "segments": str(sms.segments),
            },
        )
        headers = {"Idempotency-Key": sms.key}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        try:
            response = self._http().post(self.url, json=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise GatewayError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        answer = f"HTTP {response.status_code}: {response.text[:500]}"
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise GatewayError(answer, retryable=True)
        if not 200 <= response.status_code < 300:
            raise GatewayError(answer, retryable=False)
        try:
            ref = str(response.json().get("id", ""))
        except (ValueError, AttributeError):
            ref = ""
        return Receipt(ref=ref[:100], segments=sms.segments)


# Tencent Cloud error codes worth another try (the rest are the request's fault).
_TENCENT_RETRYABLE = ("ClientNetworkError", "ServerNetworkError", "InternalError", "RequestLimit")


class TencentBackend:
    """Tencent Cloud SMS (SendSms 2021-01-11) through its official Python SDK.

    Each template name maps to an approved template id (``SCIWEEK_SMS_TENCENT_TEMPLATES``);
    the 【签名】 is the approved SignName, the phone goes as +86..., and the message's key
    as SessionContext (Tencent echoes it in receipts). Not idempotent: a send cut off by
    a dying worker is marked failed, never repeated.
    """

    name = "tencent"
    idempotent = False

    def __init__(self, config: dict):
        endpoint = config["SCIWEEK_SMS_TENCENT_ENDPOINT"]
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        http = HttpProfile(
            protocol=parts.scheme,
            endpoint=parts.netloc,
            reqTimeout=config["SCIWEEK_SMS_TIMEOUT_SECONDS"],
        )
        self.client = SmsClient(
            credential.Credential(
                config["SCIWEEK_SMS_TENCENT_SECRET_ID"], config["SCIWEEK_SMS_TENCENT_SECRET_KEY"]
            ),
            config["SCIWEEK_SMS_TENCENT_REGION"],
            ClientProfile(httpProfile=http),
        )
        self.app_id = config["SCIWEEK_SMS_TENCENT_APP_ID"]
        self.sign_name = config["SCIWEEK_SMS_SIGNATURE"]
        self.templates = config["SCIWEEK_SMS_TENCENT_TEMPLATES"]

    def send(self, sms: Sms) -> Receipt:
        template_id = self.templates.get(sms.template)
        if not template_id:
            raise GatewayError(
                f"no Tencent template id for {sms.template!r} (SCIWEEK_SMS_TENCENT_TEMPLATES)",
                retryable=False,
            )
        request = tencent_models.SendSmsRequest()
        request.SmsSdkAppId = self.app_id
        request.SignName = self.sign_name
        request.TemplateId = template_id
        request.TemplateParamSet = list(sms.params)
        request.PhoneNumberSet = [f"+86{sms.to}"]
        request.SessionContext = sms.key
        try:
            response = self.client.SendSms(request)
        except TencentCloudSDKException as exc:
            code = exc.get_code() or ""
            raise GatewayError(
                f"{code}: {exc.get_message()}",
                retryable=any(code.startswith(c) for c in _TENCENT_RETRYABLE),
            ) from exc
        status = (response.SendStatusSet or [None])[0]
        if status is None:
            raise GatewayError("empty SendStatusSet", retryable=True)
        if status.Code != "Ok":
            raise GatewayError(
                f"{status.Code}: {status.Message}",
                retryable=any(status.Code.startswith(c) for c in _TENCENT_RETRYABLE),
            )
        return Receipt(ref=status.SerialNo or "", segments=status.Fee)


def make_backend(config: dict) -> SmsBackend:
    backend = config["SCIWEEK_SMS_BACKEND"]
    if backend == "http":
        return HttpJsonBackend(
            config["SCIWEEK_SMS_HTTP_URL"],
            config["SCIWEEK_SMS_HTTP_KEY"],
            config["SCIWEEK_SMS_HTTP_TEMPLATE"],
            config["SCIWEEK_SMS_TIMEOUT_SECONDS"],
        )
    if backend == "tencent":
        return TencentBackend(config)
    return ConsoleBackend()


def sms_backend(app: Flask) -> SmsBackend:
    """This application's SMS backend (made once)."""
    backend = app.extensions.get("sciweek_sms")
    if backend is None:
        backend = app.extensions["sciweek_sms"] = make_backend(app.config)
    return backend
