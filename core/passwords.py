"""Passwords of local analyst accounts: argon2id (argon2-cffi), slow on purpose. Only the hash is
stored (migration 012); the explorer checks a password against it."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import InvalidInput

MIN_CHARS = 12
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_CHARS:
        raise InvalidInput(f"a password needs at least {MIN_CHARS} characters")
    if password != password.strip() or "\n" in password:
        raise InvalidInput("a password cannot start or end with spaces or hold a line break")
    return _hasher.hash(password)


def matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
