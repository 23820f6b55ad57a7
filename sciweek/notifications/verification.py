"""One-time SMS verification codes: asked for, sent through the outbox, checked once.

Rules (issue 12.5), all held here and in the database:

* a code is 6 random digits, valid ``VALID_FOR`` (5 minutes), only the newest code of a
  phone and purpose counts, and it is used once (``consumed_at``);
* ``VERIFICATION_MAX_TRIES`` (5) tries per code, counted in its row under the row's lock
  (a CHECK keeps the count within the limit): a wrong try must be *committed*, so callers
  answer a refused check with a page (status < 400), never an error status;
* per phone: at most 1 code a minute and ``PER_PHONE_PER_HOUR`` (5) an hour, decided
  under the lock of the phone's ``verification_phones`` row (two requests for one phone
  are decided one after the other);
* per client address: Flask-Limiter on the routes (``SCIWEEK_VERIFICATION_RATE_LIMIT``).

Together: at most 5 guesses per code and 25 per phone an hour, out of 1,000,000.

The database keeps only an HMAC-SHA256 of the code (key derived from ``SECRET_KEY``,
message: purpose, scope, phone, code), compared in constant time. Not the plain
``tokens.hash_secret``: an unkeyed hash of 6 digits is undone by hashing all 10⁶ of them.
The code reaches the SMS sealed (``outbox`` ``secret_params``), so the outbox never holds
it in clear either, and the sealed value is cleared once the message is done.

The message (event ``verification``) is exempt from quiet hours
(``delivery.QUIET_HOURS_EXEMPT``) and goes first: after commit a delivery job for this
one message is published at once, ahead of the batches the general dispatch hands out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from .. import jobs
from ..database import begin_write, rowcount_result
from ..extensions import db
from ..models import (
    VERIFICATION_MAX_TRIES,
    NotificationEvent,
    OutboxMessage,
    VerificationCode,
    VerificationPhone,
    VerificationPurpose,
    utcnow,
)
from ..transactions import after_commit
from . import outbox
from .tasks import DELIVER_JOB

PURGE_JOB = "sciweek.notifications.purge_verification_codes"
CODE_DIGITS = 6
VALID_FOR = timedelta(minutes=5)
PER_PHONE_INTERVAL = timedelta(minutes=1)
PER_PHONE_PER_HOUR = 5
TEMPLATE = "verification"


class VerificationRefused(Exception):
    """A user-facing reason (too soon, too many, wrong or expired code)."""

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after  # seconds, when asking again later would work


@dataclass(frozen=True)
class IssuedCode:
    code_id: int
    expires_at: datetime
    sent: bool  # False: recorded (limits counted) but no SMS, by the caller's choice


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_hash(key: str, purpose: str, scope: str, phone: str, code: str) -> str:
    message = f"sciweek-verification:{purpose}:{scope}:{phone}:{code}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def _lock_phone(phone: str, now: datetime) -> None:
    """Write (or touch) the phone's row: its lock orders this phone's requests until
    commit (PostgreSQL: the row lock; SQLite: the write lock, taken before)."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(VerificationPhone).values(phone=phone, last_requested_at=now)
    db.session.execute(
        statement.on_conflict_do_update(index_elements=["phone"], set_={"last_requested_at": now})
    )


def request_code(
    phone: str,
    purpose: VerificationPurpose,
    *,
    scope: str = "",
    send: bool = True,
    now: datetime | None = None,
) -> IssuedCode:
    """Make a new code for ``phone`` (a normalised mobile number) and, with ``send``,
    write its SMS into the outbox. The per-phone limits count every request, sent or
    not, so a caller that sends only to some phones answers all of them alike.

    Raises VerificationRefused (with ``retry_after``) when the phone asked too often.
    Flushes only."""
    now = now or utcnow()
    begin_write()
    _lock_phone(phone, now)
    count, newest, oldest = db.session.execute(
        select(
            func.count(VerificationCode.id),
            func.max(VerificationCode.created_at),
            func.min(VerificationCode.created_at),
        ).where(
            VerificationCode.phone == phone,
            VerificationCode.created_at > now - timedelta(hours=1),
        )
    ).one()
    if newest is not None and now - newest < PER_PHONE_INTERVAL:
        wait = int((newest + PER_PHONE_INTERVAL - now).total_seconds()) + 1
        raise VerificationRefused(
            _("验证码已发送，请 %(seconds)s 秒后再重新获取。", seconds=wait), retry_after=wait
        )
    if count >= PER_PHONE_PER_HOUR:
        wait = int((oldest + timedelta(hours=1) - now).total_seconds()) + 1
        raise VerificationRefused(
            _("此手机号获取验证码过于频繁，请 %(minutes)s 分钟后再试。", minutes=wait // 60 + 1),
            retry_after=wait,
        )
    code = new_code()
    row = VerificationCode(
        phone=phone,
        purpose=purpose,
        scope=scope,
        code_hash=code_hash(current_app.config["SECRET_KEY"], purpose, scope, phone, code),
        tries=0,
        created_at=now,
        expires_at=now + VALID_FOR,
    )
    db.session.add(row)
    db.session.flush()
    if send:
        _send(row, code)
    return IssuedCode(row.id, row.expires_at, send)


def _send(row: VerificationCode, code: str) -> None:
    event = NotificationEvent.VERIFICATION
    send_at_once(
        key=outbox.dedupe_key(event, f"p{row.phone}", version=row.id),
        phone=row.phone,
        template=TEMPLATE,
        params={"minutes": int(VALID_FOR.total_seconds() // 60)},
        secret_params={"otp": code},
    )


def send_at_once(
    *, key: str, phone: str, template: str, params: dict, secret_params: dict[str, str]
) -> None:
    """Write an SMS someone is waiting for this minute (a code, a set-password link) into
    the outbox (event ``verification``: no quiet hours) and, after commit, publish a
    delivery job for it alone, ahead of the general dispatch. Flushes only."""
    outbox.enqueue(
        NotificationEvent.VERIFICATION,
        key=key,
        recipient=phone,
        template=template,
        params=params,
        secret_params=secret_params,
    )
    message_id = db.session.scalar(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == key))
    if message_id is None:
        return  # outbox muted (demo data)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    # Ahead of the general dispatch's batches (a cancellation's 10,000 messages).
    after_commit(lambda: jobs.submit(app, DELIVER_JOB, [message_id]))


def check_code(
    phone: str,
    purpose: VerificationPurpose,
    code: str,
    *,
    scope: str = "",
    now: datetime | None = None,
) -> None:
    """Accept ``code`` for ``phone`` once, or raise VerificationRefused.

    Each check of a live code counts a try, also when it fails: the caller must let the
    transaction commit (answer with a page, not an error status). Flushes only."""
    now = now or utcnow()
    begin_write()
    row = db.session.scalar(
        select(VerificationCode)
        .where(
            VerificationCode.phone == phone,
            VerificationCode.purpose == purpose,
            VerificationCode.scope == scope,
        )
        .order_by(VerificationCode.id.desc())
        .limit(1)
        .with_for_update()
    )
    if row is None or row.consumed_at is not None or row.expires_at <= now:
        raise VerificationRefused(_("验证码无效或已过期，请重新获取。"))
    if row.tries >= VERIFICATION_MAX_TRIES:
        raise VerificationRefused(_("验证码输错次数过多，请重新获取。"))
    row.tries += 1
    typed = "".join((code or "").split())
    expected = code_hash(current_app.config["SECRET_KEY"], purpose, scope, phone, typed)
    if not hmac.compare_digest(row.code_hash, expected):
        db.session.flush()
        left = VERIFICATION_MAX_TRIES - row.tries
        if left <= 0:
            raise VerificationRefused(_("验证码输错次数过多，请重新获取。"))
        raise VerificationRefused(
            ngettext(
                "验证码不正确，还可以再试 %(num)s 次。",
                "验证码不正确，还可以再试 %(num)s 次。",  # Chinese: one form for any number
                left,
            )
        )
    row.consumed_at = now
    db.session.flush()


# Kept a day (the hourly limit needs one hour; the rest helps answer "why no SMS?"), then
# deleted: the rows hold phone numbers (个人信息保护法: no longer than needed).
KEEP_CODES = timedelta(days=1)


def purge_old_codes(now: datetime | None = None) -> int:
    """Delete codes older than ``KEEP_CODES`` and phones that asked nothing since; returns
    how many codes. Flushes only."""
    now = now or utcnow()
    begin_write()
    cutoff = now - KEEP_CODES
    result = rowcount_result(
        delete(VerificationCode)
        .where(VerificationCode.created_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        delete(VerificationPhone)
        .where(VerificationPhone.last_requested_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


@jobs.job(PURGE_JOB, every=lambda app: 3600)
def purge_job() -> int:
    """Periodic (beat, hourly): ``purge_old_codes``, committed."""
    count = purge_old_codes()
    db.session.commit()
    return count
