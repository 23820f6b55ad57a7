"""Fake SMS gateways on 127.0.0.1 that check what the real ones check.

* the generic HTTP JSON gateway: bearer key, JSON body with phone/text/id, an
  ``Idempotency-Key`` header — a key seen before is answered 200 without a second SMS;
* Tencent Cloud SMS (SendSms 2021-01-11): the TC3-HMAC-SHA256 signature recomputed from
  the request with the secret key, the timestamp within 5 minutes, the action and version
  headers, SmsSdkAppId, SignName, TemplateId, the number of template parameters and
  +86 phone numbers; errors in Tencent's own shape (``Response.Error``).

``FakeGateway.start()`` serves in a thread; ``python -m tests.fake_sms --port N`` serves in
a process of its own (the benchmark). ``delivered`` holds one entry per SMS a phone would
get; ``requests`` every request; ``fail_next``/``fail_status`` make it answer errors.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import math
import re
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PHONE_RE = re.compile(r"^1[3-9][0-9]{9}$")
TENCENT_PHONE_RE = re.compile(r"^\+861[3-9][0-9]{9}$")


def segments(text: str) -> int:
    return 1 if len(text) <= 70 else math.ceil(len(text) / 67)


class FakeGateway:
    def __init__(
        self,
        *,
        key: str = "test-gateway-key",
        tencent: dict | None = None,
        delay: float = 0.0,
    ):
        self.key = key
        # {"secret_id", "secret_key", "app_id", "sign_name", "templates": {id: text}}
        self.tencent = tencent
        self.delay = delay
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.delivered: dict[str, dict] = {}  # idempotency key (or serial) -> message
        self.fail_next = 0
        self.fail_status = 500
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeGateway:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sent_texts(self) -> list[str]:
        with self.lock:
            return [m["text"] for m in self.delivered.values()]

    def _failing(self) -> bool:
        with self.lock:
            if self.fail_next:
                self.fail_next -= 1
                return True
            return False

    # --- the generic HTTP JSON gateway ---------------------------------------------

    def handle_json(self, headers, body: bytes) -> tuple[int, dict]:
        if headers.get("Authorization") != f"Bearer {self.key}":
            return 401, {"error": "bad key"}
        try:
            data = json.loads(body)
        except ValueError:
            return 400, {"error": "not JSON"}
        phone, text, key = data.get("phone"), data.get("text"), data.get("id")
        if not isinstance(phone, str) or not PHONE_RE.match(phone):
            return 400, {"error": "bad phone"}
        if not isinstance(text, str) or not text.startswith("【"):
            return 400, {"error": "text must start with 【签名】"}
        if not key or headers.get("Idempotency-Key") != key:
            return 400, {"error": "Idempotency-Key must equal id"}
        with self.lock:
            self.requests.append(data)
            first = key not in self.delivered
            if first:
                self.delivered[key] = {"phone": phone, "text": text, "at": time.time()}
        return 200, {
            "id": f"fake-{hashlib.sha256(key.encode()).hexdigest()[:12]}",
            "duplicate": not first,
        }

    # --- Tencent Cloud SendSms ------------------------------------------------------

    def _tencent_error(self, code: str, message: str) -> tuple[int, dict]:
        return 200, {
            "Response": {
                "Error": {"Code": code, "Message": message},
                "RequestId": str(uuid.uuid4()),
            }
        }

    def _tc3_signature(self, headers, body: bytes) -> str:
        timestamp = headers.get("X-TC-Timestamp", "0")
        date = time.strftime("%Y-%m-%d", time.gmtime(int(timestamp)))
        canonical = "\n".join(
            [
                "POST",
                "/",
                "",
                f"content-type:{headers.get('Content-Type')}\nhost:{headers.get('Host')}\n",
                "content-type;host",
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{date}/sms/tc3_request"
        to_sign = "\n".join(
            ["TC3-HMAC-SHA256", timestamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )

        def mac(key: bytes, msg: str) -> bytes:
            return hmac.new(key, msg.encode(), hashlib.sha256).digest()

        key = mac(("TC3" + self.tencent["secret_key"]).encode(), date)
        key = mac(mac(key, "sms"), "tc3_request")
        return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()

    def _tencent_auth_problem(self, headers, body: bytes) -> str | None:
        auth = headers.get("Authorization", "")
        match = re.fullmatch(
            r"TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/sms/tc3_request, "
            r"SignedHeaders=content-type;host, Signature=([0-9a-f]{64})",
            auth,
        )
        if not match or match.group(1) != self.tencent["secret_id"]:
            return "AuthFailure.SecretIdNotFound"
        if abs(time.time() - int(headers.get("X-TC-Timestamp", "0"))) > 300:
            return "AuthFailure.SignatureExpire"
        if not hmac.compare_digest(match.group(3), self._tc3_signature(headers, body)):
            return "AuthFailure.SignatureFailure"
        if headers.get("X-TC-Action") != "SendSms" or headers.get("X-TC-Version") != "2021-01-11":
            return "InvalidAction"
        return None

    def handle_tencent(self, headers, body: bytes) -> tuple[int, dict]:
        problem = self._tencent_auth_problem(headers, body)
        if problem:
            return self._tencent_error(problem, "request refused by the fake")
        data = json.loads(body)
        if data.get("SmsSdkAppId") != self.tencent["app_id"]:
            return self._tencent_error("FailedOperation.SmsSdkAppIdVerifyFail", "app id")
        if data.get("SignName") != self.tencent["sign_name"]:
            return self._tencent_error("FailedOperation.SignatureIncorrectOrUnapproved", "sign")
        template = self.tencent["templates"].get(data.get("TemplateId"))
        if template is None:
            return self._tencent_error("FailedOperation.TemplateIncorrectOrUnapproved", "tpl")
        params = data.get("TemplateParamSet") or []
        wanted = len(re.findall(r"\{\d+\}", template))
        if len(params) != wanted or not all(isinstance(p, str) for p in params):
            return self._tencent_error(
                "InvalidParameterValue.TemplateParameterFormatError",
                f"{len(params)} parameters for {wanted}",
            )
        phones = data.get("PhoneNumberSet") or []
        if len(phones) != 1 or not TENCENT_PHONE_RE.match(phones[0]):
            return self._tencent_error("InvalidParameterValue.IncorrectPhoneNumber", "phone")
        text = f"【{data['SignName']}】" + re.sub(
            r"\{(\d+)\}", lambda m: params[int(m.group(1)) - 1], template
        )
        serial = str(uuid.uuid4())
        with self.lock:
            self.requests.append(data)
            self.delivered[serial] = {
                "phone": phones[0],
                "text": text,
                "session": data.get("SessionContext", ""),
            }
        return 200, {
            "Response": {
                "SendStatusSet": [
                    {
                        "SerialNo": serial,
                        "PhoneNumber": phones[0],
                        "Fee": segments(text),
                        "SessionContext": data.get("SessionContext", ""),
                        "Code": "Ok",
                        "Message": "send success",
                        "IsoCode": "CN",
                    }
                ],
                "RequestId": str(uuid.uuid4()),
            }
        }

    def _handler(self):
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def setup(self):
                super().setup()
                # Headers and body leave in two writes: without this, Nagle's algorithm
                # holds the body back until the client's delayed ACK (~40 ms a request).
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_GET(self):  # noqa: N802 - the stdlib's name
                """``/stats``: what the gateway received (for the benchmark)."""
                with gateway.lock:
                    keys = [r.get("id") for r in gateway.requests]
                    stats = {
                        "requests": len(keys),
                        "delivered": len(gateway.delivered),
                        "repeated_requests": len(keys) - len(set(keys)),
                        "phones": len({m["phone"] for m in gateway.delivered.values()}),
                    }
                data = json.dumps(stats).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if gateway.delay:
                    time.sleep(gateway.delay)
                if gateway._failing():
                    status, answer = gateway.fail_status, {"error": "gateway unavailable"}
                elif gateway.tencent is not None:
                    status, answer = gateway.handle_tencent(self.headers, body)
                else:
                    status, answer = gateway.handle_json(self.headers, body)
                data = json.dumps(answer, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", default="test-gateway-key")
    args = parser.parse_args()
    gateway = FakeGateway(key=args.key)
    gateway.server.server_close()
    gateway.server = ThreadingHTTPServer(("127.0.0.1", args.port), gateway._handler())
    gateway.server.daemon_threads = True
    print(gateway.url, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        gateway.server.serve_forever()


if __name__ == "__main__":
    main()
