"""Other replicas: what the bus asks of the cluster it is part of, and the one-server answer.

A replica holds the MCP sessions that reached it (its `Registry`). Everything about clients held
elsewhere goes through a `Cluster`: their directory data, records for them, job updates for calls
waiting elsewhere, and clients moving between replicas. One server alone is `SingleServer`, which
knows no one else; `storage/redis_cluster.py` is the shared one.

What each replica tells the others, it tells through `Inbox` (the bus implements it).
"""

from __future__ import annotations

from typing import Any, Protocol

from ..storage.counters import RateCounter
from ..storage.records import ClientInfo


class Inbox(Protocol):
    """What another replica can ask of this one."""

    async def records_arrived(self, user_id: str, priority: int, base: dict[str, Any], size: int,
                              targets: list[tuple[str, bool]]) -> None:
        """One record for clients this replica holds (or held), as (uuid, is persistent): deliver it to
        each, or keep it for a persistent one that moved on."""
        ...

    def update_arrived(self, user_id: str, job_id: str, payload: dict[str, Any]) -> bool:
        """A job update for a Style A call waiting here."""
        ...

    async def let_go(self, user_id: str, uuid: str) -> None:
        """The client registered on another replica: drop it here, keeping what is stored for it."""
        ...

    async def queue_grew(self, user_id: str, uuid: str) -> None:
        """Another replica kept records for a client this replica holds offline: take them into its outbox."""
        ...

    def held(self) -> list[ClientInfo]:
        """Every client this replica holds (to check against the directory after mail may have been lost)."""
        ...


class Cluster(Protocol):
    replica: str

    @property
    def shared(self) -> bool:
        """Whether there are (or may be) other replicas: False for one server alone."""
        ...

    async def start(self, inbox: Inbox) -> None: ...

    async def stop(self) -> None: ...

    def note(self, info: ClientInfo) -> None:
        """A client this replica holds changed (registered, online, offline): the others learn it soon,
        in order, newest state winning (callable where nothing can wait)."""
        ...

    def note_gone(self, user_id: str, uuid: str) -> None:
        """A client this replica held left the bus (unregistered, swept)."""
        ...

    async def claim(self, info: ClientInfo) -> None:
        """A client registered here: it is this replica's now, and whoever held it lets go."""
        ...

    async def lookup(self, user_id: str, uuid: str) -> ClientInfo | None:
        """A client of `user_id` held by another replica (or by none: a persistent client offline)."""
        ...

    async def others(self, user_id: str, *, fresh: bool = False) -> list[ClientInfo]:
        """Every client of `user_id` not held by this replica. Unless `fresh`, as of a moment ago: every
        change that matters to routing is seen at once, but `last_seen` and `queued` may lag a second."""
        ...

    async def uuids(self, user_id: str) -> frozenset[str]:
        """The uuids of every client of `user_id` in the shared directory (held by any replica, or by none)."""
        ...

    async def forward(self, clients: list[ClientInfo], priority: int, base: dict[str, Any], size: int) -> dict[str, str]:
        """Hand a stamped record (`base`, without its target_uuid) to the replicas holding `clients`, one
        message per replica. Each client's delivery state: "sent", "filtered" (its session does not take
        that level), "queued" (kept for it: it is offline or its replica is gone) or "gone" (nobody can
        take it)."""
        ...

    async def expect_update(self, user_id: str, job_id: str, ttl: float) -> None:
        """A Style A call waits here for this job, whose target another replica holds."""
        ...

    def stop_expecting(self, user_id: str, job_id: str) -> None:
        """The call no longer waits (callable where nothing can wait: the caller's answer does not wait
        for it)."""
        ...

    async def forward_update(self, user_id: str, job_id: str, payload: dict[str, Any], rate: RateCounter) -> str:
        """Count the update against `rate` and, within it, hand it to the replica where its Style A call
        waits: "forwarded", "nowhere" (counted; no call waits elsewhere) or "refused" (over the rate;
        nothing was sent)."""
        ...


class SingleServer:
    """One server alone: every client is local, and there is no one to tell anything."""

    replica = "local"
    shared = False

    async def start(self, inbox: Inbox) -> None:
        return None

    async def stop(self) -> None:
        return None

    def note(self, info: ClientInfo) -> None:
        return None

    def note_gone(self, user_id: str, uuid: str) -> None:
        return None

    async def claim(self, info: ClientInfo) -> None:
        return None

    async def lookup(self, user_id: str, uuid: str) -> ClientInfo | None:
        return None

    async def others(self, user_id: str, *, fresh: bool = False) -> list[ClientInfo]:
        return []

    async def uuids(self, user_id: str) -> frozenset[str]:
        return frozenset()

    async def forward(self, clients: list[ClientInfo], priority: int, base: dict[str, Any], size: int) -> dict[str, str]:
        return {c.uuid: "gone" for c in clients}

    async def expect_update(self, user_id: str, job_id: str, ttl: float) -> None:
        return None

    def stop_expecting(self, user_id: str, job_id: str) -> None:
        return None

    async def forward_update(self, user_id: str, job_id: str, payload: dict[str, Any], rate: RateCounter) -> str:
        return "nowhere" if await rate.hit(user_id) else "refused"
