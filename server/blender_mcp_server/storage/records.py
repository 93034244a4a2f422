"""What the stores keep, as plain frozen records: the same shapes whichever engine holds them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any


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


@dataclass
class ClientInfo:
    """What the directory says of one client: everything but its connection. Another replica's client is
    known to this one only as this (`replica` names where its session lives; None while nobody holds it)."""

    uuid: str
    user_id: str
    client_type: str
    is_persistent: bool
    capabilities: list[str]
    group_id: str | None
    label: str | None
    online: bool = False
    offline_reason: str | None = None
    last_seen: float = field(default_factory=time.time)
    offline_since: float | None = None
    versions: dict[str, Any] | None = None  # what the client said it runs (add-on, Blender, Python, protocol)
    level: int = 7  # the most verbose RFC 5424 level its session takes (7: debug, everything)
    queued: int = 0
    replica: str | None = None

    def queued_count(self) -> int:
        return self.queued

    def public(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "client_type": self.client_type, "group_id": self.group_id,
                "capabilities": list(self.capabilities), "label": self.label, "online": self.online,
                "last_seen": self.last_seen, "is_persistent": self.is_persistent,
                "queued": self.queued_count(), "versions": self.versions}

    def snapshot(self) -> dict[str, Any]:
        """Its directory fields as JSON-able data (what another replica reads)."""
        return {f.name: getattr(self, f.name) for f in fields(ClientInfo)} | {"queued": self.queued_count()}

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> ClientInfo:
        known = {f.name for f in fields(ClientInfo)}
        return cls(**{k: v for k, v in data.items() if k in known})

