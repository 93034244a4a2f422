"""Who is on each user's bus: clients, the MCP session each is bound to, and whether it can receive.

A client is *online* while it is bound to a session whose standing GET stream
is open (the stream is what carries bus records; a record sent while it is
closed is silently dropped by the transport). The stream's open and close are
observed by `StreamWatch` (an ASGI middleware, see app.py), so a client killed
with -9 is noticed when its socket closes, not 30 minutes later.

Client uuids are per user: two users' `render-node-01` are two clients, and
neither can tell that the other exists. Persistent clients, and the records
queued for them while they are offline, are kept in the store, so "queued"
survives a restart of the server (`restore`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from blender_mcp_addon.protocol.answers import ErrorCode

from ..delivery.outbox import Outbox, OutboxFull
from ..storage.protocols import QueueStore
from ..storage.records import ClientInfo, PersistentClient
from ..transport.sdk_shims import session_log_level
from ..transport.sse_channel import StreamWriter, channel_for

log = logging.getLogger(__name__)


class RegistryError(Exception):
    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class ClientEntry(ClientInfo):
    """A client whose MCP session this replica holds: its directory data, its outbox and its session."""

    outbox: Outbox = field(kw_only=True)
    session: Any = field(default=None, kw_only=True)
    session_id: str | None = field(default=None, kw_only=True)
    missed_pings: int = field(default=0, kw_only=True)

    def queued_count(self) -> int:
        return len(self.outbox)

    def snapshot(self) -> dict[str, Any]:
        return super().snapshot() | {"level": int(session_log_level(self.session)) if self.session else 7}


class Registry:
    def __init__(self, *, max_clients_per_user: int, outbox_max: int, send_timeout: float,
                 outbox_max_bytes: int = 64 * 1024 * 1024, ephemeral_grace: float = 3.0,
                 store: QueueStore | None = None):
        self.max_clients_per_user = max_clients_per_user
        self.outbox_max = outbox_max
        self.outbox_max_bytes = outbox_max_bytes
        self.send_timeout = send_timeout
        self.ephemeral_grace = ephemeral_grace
        self.store = store
        self._by_user: dict[str, dict[str, ClientEntry]] = {}
        self._by_session: dict[str, dict[str, ClientEntry]] = {}  # a session belongs to one user
        # (user_id, uuid, stored id) of stored offline records that reached their client, to delete
        self._done_stored: list[tuple[str, str, int]] = []
        # (user_id, uuid) -> offline since (None: back online), written by the next flush: a stream's
        # close is noticed in code that cannot wait for the store.
        self._offline_since: dict[tuple[str, str], float | None] = {}
        self._open_streams: dict[str, int] = {}
        self._writers: dict[str, StreamWriter] = {}  # the newest open GET stream of each session
        # user -> uuid -> [(parked at, priority, record, size)]: bounded per user by park()'s limits
        self._parked: dict[str, dict[str, list[tuple[float, int, dict[str, Any], int]]]] = {}
        # Told of every change to a client held here, and of each one leaving (bus.cluster: the other replicas)
        self.on_change: Callable[[ClientInfo], None] = lambda info: None
        self.on_gone: Callable[[str, str], None] = lambda user_id, uuid: None
        self.streams_opened = 0  # running totals, for the heap freezer (gc_policy.py)
        self.streams_closed = 0

    # -- streams (fed by StreamWatch) -----------------------------------------------------------------
    def stream_opened(self, session_id: str, writer: StreamWriter | None = None) -> None:
        self.streams_opened += 1
        self._open_streams[session_id] = self._open_streams.get(session_id, 0) + 1
        if writer is not None:
            self._writers[session_id] = writer
        for entry in self._entries_of_session(session_id):
            self._set_online(entry)

    def stream_closed(self, session_id: str, writer: StreamWriter | None = None) -> None:
        self.streams_closed += 1
        if writer is not None and self._writers.get(session_id) is writer:
            self._writers.pop(session_id)
        left = self._open_streams.get(session_id, 0) - 1
        if left > 0:
            self._open_streams[session_id] = left
            return
        self._open_streams.pop(session_id, None)
        for entry in self._entries_of_session(session_id):
            self.mark_offline(entry, "stream closed")

    def level_set(self, session_id: str) -> None:
        """The session asked for another log level: its clients' directory entries say so now, not at
        their next heartbeat (other replicas filter the records they forward by them)."""
        for entry in self._entries_of_session(session_id):
            self.on_change(entry)

    def stream_open(self, session_id: str | None) -> bool:
        return bool(session_id) and self._open_streams.get(session_id or "", 0) > 0

    # -- clients --------------------------------------------------------------------------------------
    async def register(self, user_id: str, *, client_uuid: str, client_type: str, is_persistent: bool,
                 capabilities: list[str], group_id: str | None, label: str | None,
                 session: Any, session_id: str, versions: dict[str, Any] | None = None,
                 elsewhere: frozenset[str] = frozenset()) -> tuple[ClientEntry, bool]:
        """Bind `client_uuid` to this session; returns the entry and whether it took over an older binding.
        `elsewhere`: the uuids of the user's clients other replicas hold (or nobody does), which count
        towards `max_clients_per_user` too."""
        clients = self._by_user.setdefault(user_id, {})
        entry = clients.get(client_uuid)
        if entry is None and client_uuid not in elsewhere and (
                count := len(clients.keys() | elsewhere)) >= self.max_clients_per_user:
            raise RegistryError(ErrorCode.TOO_MANY_CLIENTS,
                                f"your bus already has {count} clients (limit {self.max_clients_per_user})")
        took_over = False
        if entry is None:
            entry = self._new_entry(user_id, client_uuid, client_type, is_persistent, capabilities, group_id, label)
        else:
            took_over = entry.session_id is not None and entry.session_id != session_id
            self._unbind(entry)
            was_persistent = entry.is_persistent
            entry.client_type, entry.is_persistent, entry.capabilities = client_type, is_persistent, capabilities
            entry.group_id, entry.label = group_id, label
            if was_persistent and not is_persistent and self.store is not None:
                await self.store.forget_persistent(user_id, client_uuid)
        if is_persistent and self.store is not None:
            await self.store.put_persistent(PersistentClient(user_id, client_uuid, client_type, capabilities, group_id,
                                                       label, None))
        entry.versions = versions
        entry.session, entry.session_id = session, session_id
        self._by_session.setdefault(session_id, {})[client_uuid] = entry
        for parked_at, priority, data, size in self._parked.get(user_id, {}).pop(client_uuid, []):
            entry.outbox.put(priority, data, size=size, enqueued=parked_at)
        if self.stream_open(session_id):
            self._set_online(entry)
        else:
            # The client registered before its GET stream opened: it goes online when StreamWatch sees it.
            self.mark_offline(entry, "waiting for the client's event stream")
        return entry, took_over

    async def load_queued(self, entry: ClientEntry, *, offline_max_records: int, offline_max_bytes: int) -> int:
        """Take what the store keeps for a persistent client into its outbox, but for what is there already
        (a client registering here after another replica held it, or records another replica kept)."""
        if self.store is None:
            return 0
        kept = await self.store.offline_records(entry.user_id, entry.uuid)
        # Read after the store's answer, with no await until the puts: two loads at once (a resync and a
        # "grew", or two resyncs) must not both put the same record.
        have = entry.outbox.stored_ids() | {stored_id for user_id, uuid, stored_id in self._done_stored
                                            if (user_id, uuid) == (entry.user_id, entry.uuid)}  # delivered: next flush
        loaded = 0
        for stored_id, priority, created, data in kept:
            if stored_id in have:
                continue
            try:
                entry.outbox.put(priority, data, bound=None if entry.online else offline_max_records,
                                 max_bytes=None if entry.online else offline_max_bytes,
                                 size=len(json.dumps(data, separators=(",", ":"))), stored_id=stored_id,
                                 enqueued=created)
                loaded += 1
            except OutboxFull:
                break  # the rest stays kept, for after the outbox drains
        if loaded:
            self.on_change(entry)
        return loaded

    async def let_go(self, user_id: str, client_uuid: str) -> None:
        """Another replica holds this client now: drop it here, but keep what the store keeps for it."""
        entry = self._by_user.get(user_id, {}).pop(client_uuid, None)
        if entry is None:
            return
        self._offline_since.pop((user_id, client_uuid), None)
        self._unbind(entry)
        entry.online = False
        await entry.outbox.close()

    def _new_entry(self, user_id: str, client_uuid: str, client_type: str, is_persistent: bool,
                   capabilities: list[str], group_id: str | None, label: str | None) -> ClientEntry:
        outbox = Outbox(client_uuid, max_records=self.outbox_max, max_bytes=self.outbox_max_bytes,
                        send_timeout=self.send_timeout,
                        on_stall=lambda uuid, reason: self._on_stall(user_id, uuid, reason),
                        on_done=lambda stored_id: self._done_stored.append((user_id, client_uuid, stored_id)))
        entry = ClientEntry(client_uuid, user_id, client_type, is_persistent, capabilities, group_id, label,
                            outbox=outbox)
        self._by_user.setdefault(user_id, {})[client_uuid] = entry
        return entry

    async def restore(self, *, offline_max_records: int, offline_max_bytes: int) -> int:
        """Bring back the persistent clients the store kept, offline, each with its queued records (at
        startup). Returns how many records were restored."""
        if self.store is None:
            return 0
        restored = 0
        for kept in await self.store.persistent_clients():
            entry = self._new_entry(kept.user_id, kept.uuid, kept.client_type, True, kept.capabilities,
                                    kept.group_id, kept.label)
            entry.online, entry.offline_reason = False, "not connected since the server started"
            entry.offline_since = kept.offline_since or time.time()
            over = []
            for stored_id, priority, created, data in await self.store.offline_records(kept.user_id, kept.uuid):
                try:
                    entry.outbox.put(priority, data, bound=offline_max_records, max_bytes=offline_max_bytes,
                                     size=len(json.dumps(data, separators=(",", ":"))), stored_id=stored_id,
                                     enqueued=created)
                    restored += 1
                except OutboxFull:
                    over.append((kept.user_id, kept.uuid, stored_id))
            if over:
                await self.store.delete_offline_records(over)
        return restored

    async def flush(self) -> int:
        """Delete the stored copies of offline records that have reached their client, and write when
        persistent clients went offline or came back (batched: called by the bus's sweep; a crash before
        it only means a repeat, which receivers drop by message_id). Returns how many copies went."""
        done = self._done_stored[:]
        self._done_stored.clear()
        offline, self._offline_since = self._offline_since, {}
        if self.store is not None:
            if done:
                await self.store.delete_offline_records(done)
            for (user_id, uuid), since in offline.items():
                await self.store.set_offline_since(user_id, uuid, since)
        return len(done)

    async def unregister(self, user_id: str, client_uuid: str) -> ClientEntry | None:
        entry = self._by_user.get(user_id, {}).pop(client_uuid, None)
        if entry is None:
            return None
        if entry.is_persistent and self.store is not None:
            self._offline_since.pop((user_id, client_uuid), None)
            await self.store.forget_persistent(user_id, client_uuid)
        self._unbind(entry)
        self.on_gone(user_id, client_uuid)
        entry.online = False
        asyncio.get_running_loop().create_task(entry.outbox.close())
        return entry

    def get(self, user_id: str, client_uuid: str) -> ClientEntry | None:
        return self._by_user.get(user_id, {}).get(client_uuid)

    def clients(self, user_id: str) -> list[ClientEntry]:
        return list(self._by_user.get(user_id, {}).values())

    def all_entries(self) -> list[ClientEntry]:
        return [e for clients in self._by_user.values() for e in clients.values()]

    def touch(self, entry: ClientEntry) -> None:
        entry.last_seen = time.time()
        entry.missed_pings = 0

    def touch_session(self, session_id: str | None) -> None:
        """Any request on a session shows its clients are alive: no ping needed for a while."""
        for entry in self._entries_of_session(session_id) if session_id else ():
            self.touch(entry)

    def park(self, user_id: str, client_uuid: str, priority: int, data: dict[str, Any], size: int, *,
             max_records: int, max_bytes: int) -> bool:
        """Hold a record for a uuid that is not registered (yet): a job's originator after a restart.

        Bounded per user, across all the uuids it waits for: `max_records` records and `max_bytes` of their
        JSON; False when this one would pass either. `sweep` drops what waited too long."""
        mine = self._parked.setdefault(user_id, {})
        held = [item for items in mine.values() for item in items]
        if len(held) >= max_records or sum(item[3] for item in held) + size > max_bytes:
            return False
        mine.setdefault(client_uuid, []).append((time.time(), priority, data, size))
        return True

    def parked(self, user_id: str) -> tuple[int, int]:
        """(records, bytes) parked for a user's unregistered uuids."""
        held = [item for items in self._parked.get(user_id, {}).values() for item in items]
        return len(held), sum(item[3] for item in held)

    # -- state changes --------------------------------------------------------------------------------
    def mark_offline(self, entry: ClientEntry, reason: str) -> None:
        if entry.online or entry.offline_since is None:
            entry.offline_since = time.time()
            if entry.is_persistent and self.store is not None:
                self._offline_since[(entry.user_id, entry.uuid)] = entry.offline_since
        entry.online = False
        entry.offline_reason = reason
        entry.outbox.detach()
        self.on_change(entry)

    def revive(self, entry: ClientEntry) -> bool:
        """Back online a client marked offline while its event stream stayed open (missed pings, a stalled
        send: a process frozen for a while, then resumed) once it shows it is alive; True if it was."""
        if entry.online or not self.stream_open(entry.session_id):
            return False
        log.info("client %s is back: it answers again on its open stream", entry.uuid)
        self._set_online(entry)
        return True

    def _set_online(self, entry: ClientEntry) -> None:
        if entry.offline_since is not None and entry.is_persistent and self.store is not None:
            self._offline_since[(entry.user_id, entry.uuid)] = None
        entry.online = True
        entry.missed_pings = 0
        entry.offline_reason = None
        entry.offline_since = None
        entry.last_seen = time.time()
        entry.outbox.attach(channel_for(entry.session, self._writers.get(entry.session_id or "")))
        self.on_change(entry)

    def _on_stall(self, user_id: str, client_uuid: str, reason: str) -> None:
        entry = self.get(user_id, client_uuid)
        if entry is not None:
            log.warning("client %s is offline: %s", client_uuid, reason)
            self.mark_offline(entry, reason)

    def _unbind(self, entry: ClientEntry) -> None:
        if entry.session_id is not None:
            bound = self._by_session.get(entry.session_id)
            if bound is not None and bound.get(entry.uuid) is entry:
                del bound[entry.uuid]
                if not bound:
                    self._by_session.pop(entry.session_id, None)
        entry.session, entry.session_id = None, None
        entry.outbox.detach()

    def _entries_of_session(self, session_id: str) -> list[ClientEntry]:
        return list(self._by_session.get(session_id, {}).values())

    async def sweep(self, *, offline_max_age: float, parked_max_age: float | None = None,
              persistent_max_offline: float | None = None) -> list[ClientEntry]:
        """Remove ephemeral clients that stayed offline past the grace period; age out stored and parked records."""
        now = time.time()
        max_age = offline_max_age if parked_max_age is None else parked_max_age
        for user_id, mine in list(self._parked.items()):
            for uuid, items in list(mine.items()):
                items[:] = [item for item in items if now - item[0] <= max_age]
                if not items:
                    del mine[uuid]
            if not mine:
                del self._parked[user_id]
        removed = []
        for entry in self.all_entries():
            if entry.online:
                continue
            gone_for = now - entry.offline_since if entry.offline_since else 0.0
            if (not entry.is_persistent and gone_for > self.ephemeral_grace) or (
                    persistent_max_offline is not None and gone_for > persistent_max_offline):
                await self.unregister(entry.user_id, entry.uuid)
                removed.append(entry)
            elif len(entry.outbox):
                entry.outbox.drop_older_than(offline_max_age)
        return removed
