"""The embedded store: one SQLite file with users, token records and the job table.

SQLite keeps the quick start to one command with nothing to install. Every
query is short, so the store is synchronous behind one lock; the job and token
tables sit behind this small interface so a shared engine can replace them
when several replicas serve one bus.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pwdlib import PasswordHash

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    jti TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS api_tokens (
    jti TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    originator_uuid TEXT,
    target_uuid TEXT,
    command TEXT,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status);
"""

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


@dataclass(frozen=True)
class User:
    id: int
    username: str


@dataclass(frozen=True)
class JobRow:
    job_id: str
    user_id: str
    originator_uuid: str | None
    target_uuid: str | None
    command: str | None
    status: str
    created: float
    updated: float


class StoreError(Exception):
    pass


class Store:
    def __init__(self, path: Path):
        # Password hashes and token ids: the data folder is the owner's alone, whatever the umask made it;
        # except a shared sticky folder such as /tmp, which only the store file itself is closed in.
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        mode = path.parent.stat().st_mode
        if not (mode & stat.S_ISVTX and mode & stat.S_IWOTH):
            os.chmod(path.parent, 0o700)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        os.chmod(path, 0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _cursor(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._db.cursor()
            try:
                yield cur
            finally:
                cur.close()

    def _one(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._cursor() as cur:
            return cur.execute(sql, args).fetchone()

    def _run(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._cursor() as cur:
            return cur.execute(sql, args).rowcount

    # -- users ---------------------------------------------------------------------------------------
    def add_user(self, username: str, password: str) -> User:
        if not username or not username.isprintable() or len(username) > 64:
            raise StoreError("username must be 1-64 printable characters")
        if not password:
            raise StoreError("password must not be empty")
        try:
            with self._cursor() as cur:
                cur.execute(
                    "INSERT INTO users(username, password_hash, created) VALUES (?, ?, ?)",
                    (username, _hasher.hash(password), time.time()),
                )
                return User(int(cur.lastrowid or 0), username)
        except sqlite3.IntegrityError:
            raise StoreError(f"user {username!r} exists") from None

    def set_password(self, username: str, password: str) -> None:
        if not self._run("UPDATE users SET password_hash=? WHERE username=?", (_hasher.hash(password), username)):
            raise StoreError(f"no user {username!r}")

    def delete_user(self, username: str) -> bool:
        return bool(self._run("DELETE FROM users WHERE username=?", (username,)))

    def user_count(self) -> int:
        row = self._one("SELECT COUNT(*) FROM users", ())
        return int(row[0]) if row else 0

    def get_user(self, user_id: int) -> User | None:
        row = self._one("SELECT id, username FROM users WHERE id=?", (user_id,))
        return User(row[0], row[1]) if row else None

    def find_user(self, username: str) -> User | None:
        row = self._one("SELECT id, username FROM users WHERE username=?", (username,))
        return User(row[0], row[1]) if row else None

    def login_record(self, username: str) -> tuple[User, str] | None:
        """The user and their password hash, for a check made elsewhere (off the event loop)."""
        row = self._one("SELECT id, username, password_hash FROM users WHERE username=?", (username,))
        return (User(row[0], row[1]), row[2]) if row else None

    def check_password(self, username: str, password: str) -> User | None:
        record = self.login_record(username)
        return record[0] if verify_password(password, record[1] if record else None) and record else None

    def has_demo_password(self, username: str = "demo", password: str = "demo") -> bool:
        return self.check_password(username, password) is not None

    # -- refresh and API tokens ----------------------------------------------------------------------
    def add_refresh(self, jti: str, user_id: int, expires: float) -> None:
        self._run("INSERT INTO refresh_tokens(jti, user_id, expires) VALUES (?, ?, ?)", (jti, user_id, expires))

    def use_refresh(self, jti: str) -> int | None:
        """Revoke a live refresh token and return its user: each refresh token works once (rotation)."""
        with self._cursor() as cur:
            row = cur.execute(
                "SELECT user_id FROM refresh_tokens WHERE jti=? AND revoked=0 AND expires>?", (jti, time.time())
            ).fetchone()
            if row is None:
                return None
            cur.execute("UPDATE refresh_tokens SET revoked=1 WHERE jti=?", (jti,))
            return int(row[0])

    def revoke_refresh(self, jti: str) -> bool:
        return bool(self._run("UPDATE refresh_tokens SET revoked=1 WHERE jti=?", (jti,)))

    def add_api_token(self, jti: str, user_id: int, name: str, expires: float) -> None:
        self._run(
            "INSERT INTO api_tokens(jti, user_id, name, created, expires) VALUES (?, ?, ?, ?, ?)",
            (jti, user_id, name, time.time(), expires),
        )

    def api_token_live(self, jti: str) -> bool:
        return self._one("SELECT 1 FROM api_tokens WHERE jti=? AND revoked=0", (jti,)) is not None

    def revoke_api_token(self, jti: str, user_id: int | None = None) -> bool:
        if user_id is None:
            return bool(self._run("UPDATE api_tokens SET revoked=1 WHERE jti=?", (jti,)))
        return bool(self._run("UPDATE api_tokens SET revoked=1 WHERE jti=? AND user_id=?", (jti, user_id)))

    def list_api_tokens(self, user_id: int) -> list[dict[str, Any]]:
        with self._cursor() as cur:
            rows = cur.execute(
                "SELECT jti, name, created, expires, revoked FROM api_tokens WHERE user_id=? ORDER BY created",
                (user_id,),
            ).fetchall()
        return [dict(zip(("jti", "name", "created", "expires", "revoked"), r, strict=True)) for r in rows]

    # -- jobs ----------------------------------------------------------------------------------------
    def put_job(self, job: JobRow) -> None:
        self._run(
            "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (job.job_id, job.user_id, job.originator_uuid, job.target_uuid, job.command, job.status,
             job.created, job.updated),
        )

    def get_job(self, job_id: str) -> JobRow | None:
        row = self._one("SELECT * FROM jobs WHERE job_id=?", (job_id,))
        return JobRow(*row) if row else None

    def set_job_status(self, job_id: str, status: str) -> None:
        self._run("UPDATE jobs SET status=?, updated=? WHERE job_id=?", (status, time.time(), job_id))

    def jobs_in(self, statuses: tuple[str, ...], user_id: str | None = None) -> list[JobRow]:
        marks = ",".join("?" * len(statuses))
        sql = f"SELECT * FROM jobs WHERE status IN ({marks})"
        args: tuple[Any, ...] = statuses
        if user_id is not None:
            sql += " AND user_id=?"
            args = (*statuses, user_id)
        with self._cursor() as cur:
            return [JobRow(*r) for r in cur.execute(sql, args).fetchall()]

    def prune_jobs(self, older_than: float) -> int:
        return self._run("DELETE FROM jobs WHERE updated<? AND status IN ('completed','error','cancelled')",
                         (older_than,))
