"""What the stores keep, as plain frozen records: the same shapes whichever engine holds them."""

from __future__ import annotations

from dataclasses import dataclass


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


@dataclass(frozen=True)
class PersistentClient:
    """What the directory keeps of a persistent client across restarts (its session is not kept)."""

    user_id: str
    uuid: str
    client_type: str
    capabilities: list[str]
    group_id: str | None
    label: str | None
    offline_since: float | None


class StoreError(Exception):
    pass


class StoreUnavailable(StoreError):
    """The store's engine cannot be reached now (a database down or out of connections): worth retrying.

    The message names the engine, never its address's secrets; the embedded SQLite store never raises it.
    """
