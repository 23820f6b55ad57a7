"""What a new password must be: long enough, not too long, and not one of the 10,000 most
common passwords (compared case-insensitively).

The list is Django's (``data/common-passwords.txt.gz``, its first 10,000 lines; licence and
source in ``data/COMMON-PASSWORDS-LICENSE.txt``), read once per process.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources

from flask_babel import gettext as _
from werkzeug.security import generate_password_hash

from ..models.accounts import PASSWORD_HASH_METHOD

MIN_LENGTH = 8
# Hashing cost grows with the length; nobody types more.
MAX_LENGTH = 200
COMMON_PASSWORDS_FILE = "common-passwords.txt.gz"


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 10,000 most common passwords, lower-cased."""
    data = resources.files(__package__).joinpath("data", COMMON_PASSWORDS_FILE).read_bytes()
    lines = gzip.decompress(data).decode("utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip())


def is_common(password: str) -> bool:
    return password.strip().lower() in common_passwords()


def password_problem(password: str) -> str | None:
    """Why ``password`` may not be chosen (a message for the person), or None."""
    if len(password) < MIN_LENGTH:
        return _("密码至少 %(n)s 位。", n=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        return _("密码不能超过 %(n)s 位。", n=MAX_LENGTH)
    if not password.strip():
        return _("密码不能只有空格。")
    if is_common(password):
        return _("这是最常见密码之一，很容易被猜中，请换一个。")
    return None


def hash_password(password: str) -> str:
    """The salted hash kept for ``password`` (0.1-0.2 s: compute it before a write
    transaction begins, see ``database``)."""
    return generate_password_hash(password, method=PASSWORD_HASH_METHOD)
