"""Password hashes (argon2), for every store: what is kept is the hash, and checking one costs ~100 ms of CPU."""

from __future__ import annotations

import asyncio

from pwdlib import PasswordHash

from .protocols import UserStore

_hasher = PasswordHash.recommended()
# What an unknown user's password is checked against: the same work as a real check, so the answer's timing
# does not tell which users exist.
_DUMMY_HASH = _hasher.hash("no user has this password")


def verify_password(password: str, password_hash: str | None) -> bool:
    """Check `password` (argon2, ~100 ms of CPU: callers on the event loop run it in a thread). A missing
    hash is checked against a dummy one and fails."""
    if password_hash is None:
        _hasher.verify(password, _DUMMY_HASH)
        return False
    return _hasher.verify(password, password_hash)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def has_password(users: UserStore, username: str, password: str) -> bool:
    """Whether `username` exists with exactly this password (the hash is checked in a thread)."""
    record = await users.login_record(username)
    return record is not None and await asyncio.to_thread(verify_password, password, record[1])
