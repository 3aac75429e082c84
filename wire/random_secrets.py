"""Machine-made secrets: 256-bit random tokens, stored only as their SHA-256, compared in constant time.

For anything a program generates rather than a person chooses (an edge agent's
secret, a session's tokens, a records service client's key): a single SHA-256
is enough to store such a value, there being nothing to guess from the hash of
256 random bits. Passwords, which people choose, are argon2 (``ingest.auth.passwords``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_secret(prefix: str = "") -> str:
    """256 random bits as URL-safe text, after ``prefix`` (which makes a leaked token recognisable)."""
    return prefix + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(stored_hash: str, secret: str) -> bool:
    return hmac.compare_digest(stored_hash, secret_hash(secret))
