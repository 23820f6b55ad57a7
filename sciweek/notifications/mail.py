"""The e-mail channel (staff accounts only): ``SCIWEEK_MAIL_BACKEND`` = console | smtp.

Same shape as the SMS backends (``backends``): ``send(email) -> Receipt``, raising
``GatewayError`` (``retryable`` or not, with the server's answer), so that delivery treats
both channels alike: retries with backoff, then ``failed`` with the answer.

SMTP answers: 4xx (try later: greylisting, a full mailbox, a busy server), a refused or
dropped connection and timeouts are retried; 5xx (no such mailbox, refused sender, failed
log-in) fail the message at once. SMTP is not idempotent: a send cut off by a dying
worker is marked failed rather than risk a second copy. The messages are built with the
standard library (``email.message.EmailMessage``): UTF-8 subject, body and sender name,
a Message-ID derived from the outbox key (a retry carries the same one) and a Date.
"""

from __future__ import annotations

import hashlib
import logging
import re
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Protocol

from flask import Flask

from .backends import GatewayError, Receipt

log = logging.getLogger("sciweek.mail")

# One plain address: no spaces, control characters, brackets or lists (nothing that could
# add a header or a second recipient). What the server accepts beyond that, it says.
_PART = r'[^@\s<>()\[\],;:"\\\x00-\x1f\x7f]+'
_ADDRESS_RE = re.compile(rf"{_PART}@{_PART}\.{_PART}")
ADDRESS_MAX = 254


def is_email_address(value: str | None) -> bool:
    """A plain address (``name@example.gov.cn``), at most 254 characters."""
    if not value or len(value) > ADDRESS_MAX:
        return False
    return _ADDRESS_RE.fullmatch(value) is not None


def mask_email(address: str | None) -> str:
    """zhang.san@example.gov.cn → z***@example.gov.cn (lists never show a whole one)."""
    local, at, domain = (address or "").rpartition("@")
    if not at or not local:
        return ""
    return f"{local[0]}***@{domain}"


@dataclass(frozen=True)
class Email:
    key: str  # the outbox message's dedupe key (the Message-ID is derived from it)
    to: str  # one address
    subject: str
    body: str  # plain text
    date: datetime  # the Date header: when it was claimed for sending


def sender_address(sender: str) -> Address:
    """``科普活动周 <noreply@example.gov.cn>`` as a header address (config checked it)."""
    name, address = parseaddr(sender)
    return Address(display_name=name, addr_spec=address)


def message_id(key: str, domain: str) -> str:
    """The same Message-ID for every try of one outbox message; the key itself (which
    names the account) is not shown."""
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@{domain}>"


def build_message(email: Email, sender: str) -> EmailMessage:
    """The message as it goes on the wire: headers encoded by the standard library
    (RFC 2047 for a Chinese subject and sender name), a UTF-8 text body."""
    source = sender_address(sender)
    message = EmailMessage()
    message["From"] = source
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(email.date)
    message["Message-ID"] = message_id(email.key, source.domain or "localhost")
    message["Auto-Submitted"] = "auto-generated"  # no out-of-office answers, please
    # base64 of the text in its canonical form (CRLF line ends, RFC 2046): it arrives
    # intact through servers without 8BITMIME.
    canonical = "\r\n".join(email.body.splitlines()) + "\r\n"
    message.set_content(canonical, charset="utf-8", cte="base64")
    return message


class MailBackend(Protocol):
    name: str
    idempotent: bool

    def send(self, email: Email) -> Receipt: ...


class ConsoleMailBackend:
    """Development: each e-mail goes to the log, nothing leaves the machine."""

    name = "console"
    idempotent = True

    def __init__(self, sender: str):
        self.sender = sender

    def send(self, email: Email) -> Receipt:
        log.warning(
            "E-mail from %s to %s: %s\n%s", self.sender, email.to, email.subject, email.body
        )
        return Receipt(ref=f"console-{email.key}"[:100])


def _answer(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"SMTP {code}: {text}"


def _smtp_error(exc: Exception) -> GatewayError:
    """What an SMTP failure means for the message: 4xx and connection trouble are worth
    another try, 5xx are final."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        # One recipient per message: its answer is the answer.
        code, text = next(iter(exc.recipients.values()), (550, b"recipient refused"))
        return GatewayError(_answer(code, text), retryable=400 <= code < 500)
    if isinstance(exc, smtplib.SMTPResponseException):
        return GatewayError(
            _answer(exc.smtp_code, exc.smtp_error), retryable=400 <= exc.smtp_code < 500
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        # STARTTLS or log-in asked of a server that offers neither: a setting to fix.
        return GatewayError(f"SMTP: {exc}", retryable=False)
    # Refused or dropped connections, timeouts, TLS handshakes, name lookups.
    return GatewayError(f"{type(exc).__name__}: {exc}", retryable=True)


class SmtpBackend:
    """An SMTP server (``SCIWEEK_SMTP_*``): one connection per e-mail (staff e-mails
    are few), STARTTLS or SMTPS with the certificate checked, log-in when a user name is
    set."""

    name = "smtp"
    idempotent = False

    def __init__(self, config: dict):
        self.host = config["SCIWEEK_SMTP_HOST"]
        self.port = config["SCIWEEK_SMTP_PORT"]
        self.username = config["SCIWEEK_SMTP_USERNAME"]
        self.password = config["SCIWEEK_SMTP_PASSWORD"]
        self.starttls = config["SCIWEEK_SMTP_STARTTLS"]
        self.ssl = config["SCIWEEK_SMTP_SSL"]
        self.timeout = config["SCIWEEK_SMTP_TIMEOUT_SECONDS"]
        self.sender = config["SCIWEEK_MAIL_FROM"]

    def _connect(self) -> smtplib.SMTP:
        if self.ssl:
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                timeout=self.timeout,
                context=ssl.create_default_context(),
            )
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def send(self, email: Email) -> Receipt:
        message = build_message(email, self.sender)
        try:
            with self._connect() as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise _smtp_error(exc) from exc
        return Receipt(ref=str(message["Message-ID"])[:100])


def make_mail_backend(config: dict) -> MailBackend:
    if config["SCIWEEK_MAIL_BACKEND"] == "smtp":
        return SmtpBackend(config)
    return ConsoleMailBackend(config["SCIWEEK_MAIL_FROM"])


def mail_backend(app: Flask) -> MailBackend:
    """This application's e-mail backend (made once)."""
    backend = app.extensions.get("sciweek_mail")
    if backend is None:
        backend = app.extensions["sciweek_mail"] = make_mail_backend(app.config)
    return backend
