"""Per-target outboxes: how one record reaches one client's MCP session.

Every client has its own bounded priority outbox and its own sender task, so
a stuck or slow target only ever fills its own outbox: the caller of
`blender_send_message` only enqueues, and no target's send waits on another's
(docs/architecture.md: a stuck subscriber blocks the sender).

Delivery is at-least-once: a record whose send timed out or hit a closed
stream goes back to the front of the outbox and is sent again once the client
is back; receivers drop repeats by `message_id`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from blender_mcp_addon.protocol import Priority

from .channel import Channel, ChannelGone
from .encoding import SharedRecord

log = logging.getLogger(__name__)
_seq = itertools.count()


class OutboxFull(Exception):
    """The target's outbox is at its bound; the sender is told, nothing is dropped silently."""


@dataclass(order=True)
class _Item:
    priority: int
    seq: int
    enqueued: float = field(compare=False)
    data: dict[str, Any] = field(compare=False)
    shared: SharedRecord = field(compare=False)
    size: int = field(compare=False, default=0)
    stored_id: int | None = field(compare=False, default=None)  # its copy in the store, for an offline client


class Outbox:
    """A priority heap of records for one client, drained by one sender task while the client is online.

    Bounded by count and by bytes (the records' JSON), so a frozen client costs the server at most
    `max_bytes`, however large the records sent to it."""

    def __init__(self, uuid: str, *, max_records: int, send_timeout: float,
                 on_stall: Callable[[str, str], None], max_bytes: int = 64 * 1024 * 1024,
                 on_done: Callable[[int], None] | None = None):
        self.uuid = uuid
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.send_timeout = send_timeout
        self._on_stall = on_stall
        self._on_done = on_done  # called with the stored_id of each stored record once it is sent or filtered
        self._heap: list[_Item] = []
        self.bytes = 0
        self._wake = asyncio.Event()
        self._channel: Channel | None = None
        self._task: asyncio.Task | None = None
        self._sending: int | None = None  # the stored_id of the record being written, out of the heap meanwhile

    def __len__(self) -> int:
        return len(self._heap)

    def put(self, priority: int, data: dict[str, Any], *, bound: int | None = None, max_bytes: int | None = None,
            size: int = 0, shared: SharedRecord | None = None, stored_id: int | None = None,
            enqueued: float | None = None) -> _Item:
        """Queue `data`, whose JSON is `size` bytes (`shared`: its encoding, common to the record's other
        recipients; else its own). `bound` / `max_bytes` lower the outbox's own limits for this put (an
        offline client's). Raises `OutboxFull` past either limit."""
        limit = self.max_records if bound is None else min(bound, self.max_records)
        byte_limit = self.max_bytes if max_bytes is None else min(max_bytes, self.max_bytes)
        if len(self._heap) >= limit:
            raise OutboxFull(f"outbox of {self.uuid} holds {len(self._heap)} records (limit {limit})")
        if self.bytes + size > byte_limit:
            raise OutboxFull(f"outbox of {self.uuid} holds {self.bytes} bytes; this record of {size} bytes would "
                             f"pass the limit of {byte_limit} bytes")
        item = _Item(int(priority), next(_seq), enqueued or time.time(), data, shared or SharedRecord(data), size,
                     stored_id)
        heapq.heappush(self._heap, item)
        self.bytes += size
        self._wake.set()
        return item

    def stored_ids(self) -> set[int]:
        """The store ids of the records queued here (or being written) that the store keeps a copy of."""
        ids = {item.stored_id for item in self._heap if item.stored_id is not None}
        if self._sending is not None:
            ids.add(self._sending)
        return ids

    def drop_older_than(self, max_age: float) -> int:
        cutoff = time.time() - max_age
        keep = [i for i in self._heap if i.enqueued >= cutoff]
        dropped = len(self._heap) - len(keep)
        if dropped:
            for item in self._heap:
                if item.enqueued < cutoff:
                    self._done(item)
            heapq.heapify(keep)
            self._heap = keep
            self.bytes = sum(i.size for i in keep)
        return dropped

    def _done(self, item: _Item) -> None:
        if item.stored_id is not None and self._on_done is not None:
            self._on_done(item.stored_id)

    def attach(self, channel: Channel) -> None:
        """Start (or resume) sending, through `channel`."""
        self._channel = channel
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"outbox:{self.uuid}")
        self._wake.set()

    def detach(self) -> None:
        """Stop sending; records stay queued for the next `attach`."""
        self._channel = None
        self._wake.set()

    async def close(self) -> None:
        self._channel = None
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            channel = self._channel
            if channel is None or not self._heap:
                self._wake.clear()
                if channel is None:
                    return  # restarted by the next attach()
                await self._wake.wait()
                continue
            try:
                # One timeout for a run of sends, pushed back after each one: an anyio cancel scope per
                # record was a tenth of the server's time in fan-out.
                async with asyncio.timeout(self.send_timeout) as deadline:
                    while self._heap and self._channel is channel:
                        item = heapq.heappop(self._heap)
                        self.bytes -= item.size
                        level = Priority(item.priority)
                        if not channel.wants(level):
                            self._done(item)
                            continue
                        self._sending = item.stored_id
                        try:
                            await channel.write(item.shared, level, self.uuid)
                        except BaseException:
                            heapq.heappush(self._heap, item)  # resent after the client comes back; receivers dedupe
                            self.bytes += item.size
                            raise
                        finally:
                            self._sending = None
                        self._done(item)
                        # Push the deadline back only when less than one timeout is left, to 1.5 timeouts:
                        # every send still gets at least `send_timeout`, without a timer change per record.
                        now = loop.time()
                        if (deadline.when() or now) - now < self.send_timeout:
                            deadline.reschedule(now + 1.5 * self.send_timeout)
            except (TimeoutError, ChannelGone, anyio.ClosedResourceError, anyio.BrokenResourceError,
                    RuntimeError) as exc:
                if self._channel is not channel:
                    continue  # re-attached meanwhile (a new stream or session): carry on with that one
                reason = "send timed out" if isinstance(exc, TimeoutError) else "stream closed"
                self._channel = None
                self._on_stall(self.uuid, reason)
                return
