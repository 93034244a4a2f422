"""The embedded store: one SQLite file with users, tokens, jobs, persistent clients and their queued records.

SQLite keeps the quick start to one command with nothing to install. It implements every protocol of
protocols.py; every query is a short local one (microseconds, WAL), so the coroutines run it inline
behind one lock rather than pay a thread hop per call.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .passwords import hash_password
from .records import JobRow, PersistentClient, StoreError, User

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created REAL NOT NULL,
    token_epoch INTEGER NOT NULL DEFAULT 0
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
    revoked INTEGER NOT NULL DEFAULT 0,
    parent_jti TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    originator_uuid TEXT,
    target_uuid TEXT,
    command TEXT,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (user_id, job_id)
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status);
CREATE INDEX IF NOT EXISTS jobs_by_updated ON jobs(updated);
CREATE TABLE IF NOT EXISTS persistent_clients (
    user_id TEXT NOT NULL,
    uuid TEXT NOT NULL,
    client_type TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    group_id TEXT,
    label TEXT,
    offline_since REAL,
    PRIMARY KEY (user_id, uuid)
);
CREATE TABLE IF NOT EXISTS offline_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    uuid TEXT NOT NULL,
    priority INTEGER NOT NULL,
    created REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS offline_records_by_client ON offline_records(user_id, uuid);
"""
SCHEMA_VERSION = 2

# A store made by release 0.1.0 (user_version 0) is brought up to SCHEMA_VERSION: job ids and client uuids
# became per user (the jobs table's key), tokens die with a password change (token_epoch) and with the API
# token that minted them (parent_jti). The old job rows are copied across once the new table exists.
_BEFORE_SCHEMA_V2 = """
ALTER TABLE users ADD COLUMN token_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN parent_jti TEXT;
ALTER TABLE jobs RENAME TO jobs_v1;
DROP INDEX IF EXISTS jobs_by_status;
"""
_AFTER_SCHEMA_V2 = """
INSERT OR IGNORE INTO jobs SELECT job_id, user_id, originator_uuid, target_uuid, command, status, created, updated
    FROM jobs_v1;
DROP TABLE jobs_v1;
"""

class SqliteStore:
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
        self._migrate()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        old = version < 2 and self._db.execute("SELECT 1 FROM sqlite_master WHERE name='users'").fetchone()
        # One transaction: a migration cut short leaves the old store as it was.
        self._db.executescript("BEGIN;" + (_BEFORE_SCHEMA_V2 if old else "") + _SCHEMA
                               + (_AFTER_SCHEMA_V2 if old else "") + f"PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")

    async def open(self) -> None:
        """Nothing to do: the file is opened (and migrated) by the constructor, which is local and quick."""

    async def close(self) -> None:
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

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._cursor() as cur:
            cur.execute("BEGIN")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def _one(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._cursor() as cur:
            return cur.execute(sql, args).fetchone()

    def _run(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._cursor() as cur:
            return cur.execute(sql, args).rowcount

    # -- users ---------------------------------------------------------------------------------------
    async def add_user(self, username: str, password: str) -> User:
        if not username or not username.isprintable() or len(username) > 64:
            raise StoreError("username must be 1-64 printable characters")
        if not password:
            raise StoreError("password must not be empty")
        try:
            with self._cursor() as cur:
                cur.execute(
                    "INSERT INTO users(username, password_hash, created) VALUES (?, ?, ?)",
                    (username, hash_password(password), time.time()),
                )
                return User(int(cur.lastrowid or 0), username)
        except sqlite3.IntegrityError:
            raise StoreError(f"user {username!r} exists") from None

    async def set_password(self, username: str, password: str) -> None:
        """A new password ends every session of the old one: refresh and API tokens are revoked, and the
        epoch that access tokens carry moves on (TokenService refuses tokens of an older epoch)."""
        if not password:
            raise StoreError("password must not be empty")
        new_hash = hash_password(password)
        with self._transaction() as cur:
            if not cur.execute("UPDATE users SET password_hash=?, token_epoch=token_epoch+1 WHERE username=?",
                               (new_hash, username)).rowcount:
                raise StoreError(f"no user {username!r}")
            (user_id,) = cur.execute("SELECT id FROM users WHERE username=?", (username,)).fetchone()
            cur.execute("UPDATE refresh_tokens SET revoked=1 WHERE user_id=?", (user_id,))
            cur.execute("UPDATE api_tokens SET revoked=1 WHERE user_id=?", (user_id,))

    async def delete_user(self, username: str) -> bool:
        return bool(self._run("DELETE FROM users WHERE username=?", (username,)))

    async def user_count(self) -> int:
        row = self._one("SELECT COUNT(*) FROM users", ())
        return int(row[0]) if row else 0

    async def get_user(self, user_id: int) -> User | None:
        row = self._one("SELECT id, username FROM users WHERE id=?", (user_id,))
        return User(row[0], row[1]) if row else None

    async def token_epoch(self, user_id: int) -> int | None:
        """The user's current token epoch; None when the user no longer exists."""
        row = self._one("SELECT token_epoch FROM users WHERE id=?", (user_id,))
        return int(row[0]) if row else None

    async def find_user(self, username: str) -> User | None:
        row = self._one("SELECT id, username FROM users WHERE username=?", (username,))
        return User(row[0], row[1]) if row else None

    async def login_record(self, username: str) -> tuple[User, str] | None:
        """The user and their password hash, for a check made elsewhere (off the event loop)."""
        row = self._one("SELECT id, username, password_hash FROM users WHERE username=?", (username,))
        return (User(row[0], row[1]), row[2]) if row else None

    # -- refresh and API tokens ----------------------------------------------------------------------
    async def add_refresh(self, jti: str, user_id: int, expires: float) -> None:
        self._run("INSERT INTO refresh_tokens(jti, user_id, expires) VALUES (?, ?, ?)", (jti, user_id, expires))

    async def use_refresh(self, jti: str) -> int | None:
        """Revoke a live refresh token and return its user: each refresh token works once (rotation)."""
        with self._cursor() as cur:
            row = cur.execute(
                "SELECT user_id FROM refresh_tokens WHERE jti=? AND revoked=0 AND expires>?", (jti, time.time())
            ).fetchone()
            if row is None:
                return None
            cur.execute("UPDATE refresh_tokens SET revoked=1 WHERE jti=?", (jti,))
            return int(row[0])

    async def revoke_refresh(self, jti: str) -> bool:
        return bool(self._run("UPDATE refresh_tokens SET revoked=1 WHERE jti=?", (jti,)))

    async def add_api_token(self, jti: str, user_id: int, name: str, expires: float, parent_jti: str | None = None) -> None:
        self._run(
            "INSERT INTO api_tokens(jti, user_id, name, created, expires, parent_jti) VALUES (?, ?, ?, ?, ?, ?)",
            (jti, user_id, name, time.time(), expires, parent_jti),
        )

    async def api_token_live(self, jti: str) -> bool:
        return self._one("SELECT 1 FROM api_tokens WHERE jti=? AND revoked=0", (jti,)) is not None

    async def revoke_api_token(self, jti: str, user_id: int | None = None) -> bool:
        """Revoke an API token and every token minted with it, and with those, and so on."""
        owner = "" if user_id is None else " AND user_id=?"
        args: tuple[Any, ...] = (jti,) if user_id is None else (jti, user_id)
        with self._cursor() as cur:
            if cur.execute(f"SELECT 1 FROM api_tokens WHERE jti=?{owner}", args).fetchone() is None:
                return False
            cur.execute("""WITH RECURSIVE lineage(jti) AS (
                               SELECT ? UNION SELECT t.jti FROM api_tokens t JOIN lineage l ON t.parent_jti = l.jti)
                           UPDATE api_tokens SET revoked=1 WHERE jti IN (SELECT jti FROM lineage)""", (jti,))
            return True

    async def list_api_tokens(self, user_id: int) -> list[dict[str, Any]]:
        with self._cursor() as cur:
            rows = cur.execute(
                "SELECT jti, name, created, expires, revoked, parent_jti FROM api_tokens WHERE user_id=? ORDER BY created",
                (user_id,),
            ).fetchall()
        return [dict(zip(("jti", "name", "created", "expires", "revoked", "parent_jti"), r, strict=True)) for r in rows]

    # -- jobs (keyed per user: two users may pick the same job id) ----------------------------------
    async def put_job(self, job: JobRow) -> None:
        self._run(
            "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (job.job_id, job.user_id, job.originator_uuid, job.target_uuid, job.command, job.status,
             job.created, job.updated),
        )

    async def get_job(self, user_id: str, job_id: str) -> JobRow | None:
        row = self._one("SELECT * FROM jobs WHERE user_id=? AND job_id=?", (user_id, job_id))
        return JobRow(*row) if row else None

    async def delete_job(self, user_id: str, job_id: str) -> None:
        self._run("DELETE FROM jobs WHERE user_id=? AND job_id=?", (user_id, job_id))

    async def set_job_status(self, user_id: str, job_id: str, status: str) -> JobRow | None:
        row = self._one("UPDATE jobs SET status=?, updated=? WHERE user_id=? AND job_id=? RETURNING *",
                        (status, time.time(), user_id, job_id))
        return JobRow(*row) if row else None

    # -- persistent clients and the records queued for them while offline ---------------------------
    async def put_persistent(self, client: PersistentClient) -> None:
        self._run("INSERT OR REPLACE INTO persistent_clients VALUES (?, ?, ?, ?, ?, ?, ?)",
                  (client.user_id, client.uuid, client.client_type, json.dumps(client.capabilities),
                   client.group_id, client.label, client.offline_since))

    async def set_offline_since(self, user_id: str, uuid: str, offline_since: float | None) -> None:
        self._run("UPDATE persistent_clients SET offline_since=? WHERE user_id=? AND uuid=?",
                  (offline_since, user_id, uuid))

    async def forget_persistent(self, user_id: str, uuid: str) -> None:
        """The client left the bus (unregistered, or aged out): its entry and queued records go."""
        with self._transaction() as cur:
            cur.execute("DELETE FROM persistent_clients WHERE user_id=? AND uuid=?", (user_id, uuid))
            cur.execute("DELETE FROM offline_records WHERE user_id=? AND uuid=?", (user_id, uuid))

    async def persistent_clients(self) -> list[PersistentClient]:
        with self._cursor() as cur:
            rows = cur.execute("SELECT * FROM persistent_clients").fetchall()
        return [PersistentClient(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6]) for r in rows]

    async def add_offline_records(self, rows: list[tuple[str, str, int, float, str]]) -> list[int]:
        """Keep (user_id, uuid, priority, created, record JSON) rows; their ids, in order."""
        with self._transaction() as cur:
            return [int(cur.execute("INSERT INTO offline_records(user_id, uuid, priority, created, data) "
                                    "VALUES (?, ?, ?, ?, ?)", row).lastrowid or 0) for row in rows]

    async def offline_records(self, user_id: str, uuid: str) -> list[tuple[int, int, float, dict[str, Any]]]:
        """(id, priority, created, record) of what waits for one client, oldest first."""
        with self._cursor() as cur:
            rows = cur.execute("SELECT id, priority, created, data FROM offline_records WHERE user_id=? AND uuid=? "
                               "ORDER BY id", (user_id, uuid)).fetchall()
        return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    async def delete_offline_records(self, ids: list[tuple[str, str, int]]) -> None:
        with self._transaction() as cur:
            cur.executemany("DELETE FROM offline_records WHERE user_id=? AND uuid=? AND id=?", ids)

    # -- housekeeping --------------------------------------------------------------------------------
    async def prune(self, *, now: float, job_retention: float, offline_max_age: float) -> dict[str, int]:
        """Delete what nobody can use any more: jobs untouched for `job_retention` seconds (a job still
        `queued` or `running` that long has no caller waiting), expired refresh and API tokens, records
        queued longer than `offline_max_age`. Returns the counts deleted."""
        with self._transaction() as cur:
            return {
                "jobs": cur.execute("DELETE FROM jobs WHERE updated<?", (now - job_retention,)).rowcount,
                "refresh_tokens": cur.execute("DELETE FROM refresh_tokens WHERE expires<?", (now,)).rowcount,
                "api_tokens": cur.execute("DELETE FROM api_tokens WHERE expires<?", (now,)).rowcount,
                "offline_records": cur.execute("DELETE FROM offline_records WHERE created<?",
                                               (now - offline_max_age,)).rowcount,
            }


Store = SqliteStore  # the embedded default's name across the code and the tests
