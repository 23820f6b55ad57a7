"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what arrives.

``received`` holds one entry per message: the envelope (``mail_from``, ``rcpt_tos``), the
raw bytes as they came over the wire and the message parsed with the standard library.
``fail_next`` answers the next N messages with ``fail_answer`` (e.g. ``451 4.7.1 try
later`` or ``550 5.1.1 no such user``), at ``fail_at`` (``RCPT`` or ``DATA``). With
``users`` it offers AUTH (PLAIN/LOGIN) without TLS and accepts only those names and
passwords.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    login: str | None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FakeSmtpServer:
    def __init__(self, *, users: dict[str, str] | None = None):
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.fail_next = 0
        self.fail_answer = "451 4.7.1 Greylisted, please try again later"
        self.fail_at = "DATA"
        self.users = users
        self.port = free_port()
        kwargs: dict = {}
        if users is not None:
            kwargs = {"authenticator": self._authenticate, "auth_require_tls": False}
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **kwargs)

    def start(self) -> FakeSmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            return [r.message for r in self.received]

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            name, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users and self.users.get(name) == password:
                return AuthResult(success=True, auth_data=name)
        return AuthResult(success=False, handled=False)

    def _failing(self, stage: str) -> str | None:
        with self.lock:
            if self.fail_next and self.fail_at == stage:
                self.fail_next -= 1
                return self.fail_answer
        return None

    # aiosmtpd handler hooks

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        answer = self._failing("RCPT")
        if answer:
            return answer
        if self.users is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        answer = self._failing("DATA")
        if answer:
            return answer
        raw = envelope.original_content or envelope.content
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.received.append(
                Received(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    raw=raw,
                    message=parsed,
                    login=session.auth_data if session.authenticated else None,
                )
            )
        return "250 Message accepted for delivery"
