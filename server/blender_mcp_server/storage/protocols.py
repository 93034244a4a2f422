"""What the server asks of its stores, engine-free: every method is a coroutine.

The embedded default is one SQLite file (sqlite.py) doing all four jobs. Replicas split them: users,
tokens and jobs in PostgreSQL, persistent clients and their queued records in Redis. Each part of the
server is handed only the protocol it uses (tokens and login: users and tokens; jobs: jobs; the
directory: the queue store), so an engine can take over one part without touching the others.

User ids are integers the user store assigns; client uuids and job ids are per user (the user id is
part of every key), so one user's names never collide with another's.
"""

from __future__ import annotations

from typing import Any, Protocol

from .records import JobRow, PersistentClient, User


class UserStore(Protocol):
    async def add_user(self, username: str, password: str) -> User:
        """Raises StoreError for a bad name, an empty password or a name taken."""
        ...

    async def set_password(self, username: str, password: str) -> None:
        """A new password ends every session of the old one: refresh and API tokens are revoked and the
        user's token epoch moves on. Raises StoreError for an unknown user."""
        ...

    async def delete_user(self, username: str) -> bool: ...

    async def user_count(self) -> int: ...

    async def get_user(self, user_id: int) -> User | None: ...

    async def token_epoch(self, user_id: int) -> int | None:
        """The epoch access tokens must carry; None when the user no longer exists."""
        ...

    async def find_user(self, username: str) -> User | None: ...

    async def login_record(self, username: str) -> tuple[User, str] | None:
        """The user and their password hash, for a check made off the event loop."""
        ...


class TokenStore(Protocol):
    async def add_refresh(self, jti: str, user_id: int, expires: float) -> None: ...

    async def use_refresh(self, jti: str) -> int | None:
        """Revoke a live refresh token and return its user (each refresh token works once)."""
        ...

    async def revoke_refresh(self, jti: str) -> bool: ...

    async def add_api_token(self, jti: str, user_id: int, name: str, expires: float,
                            parent_jti: str | None = None) -> None: ...

    async def api_token_live(self, jti: str) -> bool: ...

    async def revoke_api_token(self, jti: str, user_id: int | None = None) -> bool:
        """Revoke an API token (only the user's own, when `user_id` is given) and every token minted with
        it, recursively."""
        ...

    async def list_api_tokens(self, user_id: int) -> list[dict[str, Any]]:
        """jti, name, created, expires, revoked, parent_jti of each, oldest first."""
        ...


class JobStore(Protocol):
    async def put_job(self, job: JobRow) -> None:
        """Insert or replace the job (user_id, job_id)."""
        ...

    async def get_job(self, user_id: str, job_id: str) -> JobRow | None: ...

    async def delete_job(self, user_id: str, job_id: str) -> None:
        """Delete the job (no error when there is none)."""
        ...

    async def set_job_status(self, user_id: str, job_id: str, status: str) -> JobRow | None:
        """Set the job's status (and its `updated` time) and answer the row as it is now, in one statement:
        None when the store has no such job."""
        ...


class QueueStore(Protocol):
    """Persistent clients, and the records queued for them while they are offline: "queued" means kept."""

    async def put_persistent(self, client: PersistentClient) -> None: ...

    async def set_offline_since(self, user_id: str, uuid: str, offline_since: float | None) -> None: ...

    async def forget_persistent(self, user_id: str, uuid: str) -> None:
        """The client left the bus: its entry and its queued records go."""
        ...

    async def persistent_clients(self) -> list[PersistentClient]: ...

    async def add_offline_records(self, rows: list[tuple[str, str, int, float, str]]) -> list[int]:
        """Keep (user_id, uuid, priority, created, record JSON) rows, all or none; their ids, in order.

        An id is unique within its client's queue (not necessarily across clients: a store may keep one
        queue per client), and grows with each record added to that queue."""
        ...

    async def offline_records(self, user_id: str, uuid: str) -> list[tuple[int, int, float, dict[str, Any]]]:
        """(id, priority, created, record) of what waits for one client, oldest first."""
        ...

    async def delete_offline_records(self, ids: list[tuple[str, str, int]]) -> None:
        """Delete the (user_id, uuid, id) records; ids already gone are no error."""
        ...


class Prunable(Protocol):
    async def prune(self, *, now: float, job_retention: float, offline_max_age: float) -> dict[str, int]:
        """Delete what nobody can use any more; the counts deleted, by kind."""
        ...


class Accounts(UserStore, TokenStore, Protocol):
    """Users and their tokens: what logins and token checks use."""


class Store(Accounts, JobStore, QueueStore, Prunable, Protocol):
    """All four jobs in one engine (the embedded SQLite store, or PostgreSQL for replicas)."""

    async def open(self) -> None:
        """Connect and make the schema: constructing a store touches no network, so the server can build
        everything at import time and open the store inside its event loop. Raises StoreUnavailable."""
        ...

    async def close(self) -> None: ...
