"""Password hashing.

Passwords are hashed with argon2id (argon2-cffi: a memory-hard hash with its
parameters and salt stored in the hash string, so they can be raised later and
old hashes still verify). Verifying costs about 0.2 s of one core by design;
callers run it off the event loop.

Secrets made by a program (agents', sessions') are ``wire.random_secrets``.
"""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 "low memory" defaults (64 MiB, t=3, p=4)

MIN_PASSWORD = 12  # characters; long passphrases beat complexity rules (NIST SP 800-63B)
MAX_PASSWORD = 256


class PasswordPolicyError(ValueError):
    pass


def check_password_policy(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise PasswordPolicyError(f"a password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def hash_password(password: str) -> str:
    check_password_policy(password)
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """True when ``password`` matches ``stored``; False for a mismatch or an unusable hash (never raises)."""
    if not stored or len(password) > MAX_PASSWORD:
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


# A hash that never matches, verified when the user does not exist so that an unknown name costs the same time.
DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
