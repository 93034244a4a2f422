"""Keep Python's full garbage collections from stalling the whole bus.

Each connected client costs the server ~900 long-lived objects (its MCP session,
streams, tasks). With 1,000 clients a full collection walked ~900,000 objects and
held the event loop for 0.7-0.8 s (measured with gc callbacks during
`bench_scale.py`): every client and every call waited, and a broadcast took
1.1 s instead of 0.35 s. So the heap is frozen (`gc.freeze()`): collections only
walk objects made since. Sessions that arrive are frozen in after a cheap
collection of the young objects; sessions that leave may leave reference cycles
inside the frozen heap, so once enough have left, one full pass (unfreeze,
collect, freeze) reclaims them, at a time of our choosing and logged.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

from .bus.directory import Registry

log = logging.getLogger(__name__)


class HeapFreezer:
    def __init__(self, registry: Registry, *, check_every: float = 10.0, new_streams: int = 20,
                 closed_streams: int = 200, full_every: float = 3600.0):
        self.registry = registry
        self.check_every = check_every
        self.new_streams = new_streams
        self.closed_streams = closed_streams
        self.full_every = full_every
        self._opened_mark = 0
        self._closed_mark = 0
        self._last_full = time.monotonic()

    def freeze_young(self) -> None:
        """Collect what is not frozen yet, then freeze the survivors."""
        gc.collect()
        gc.freeze()
        self._opened_mark = self.registry.streams_opened

    def full_pass(self) -> None:
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        took = time.perf_counter() - started
        self._opened_mark, self._closed_mark = self.registry.streams_opened, self.registry.streams_closed
        self._last_full = time.monotonic()
        log.info("full garbage collection: %d objects freed in %.0f ms, %d frozen", found, took * 1000,
                 gc.get_freeze_count())

    def step(self) -> str | None:
        """One check: what it did ("full", "young" or None)."""
        closed = self.registry.streams_closed - self._closed_mark
        if closed >= self.closed_streams or (closed and time.monotonic() - self._last_full > self.full_every):
            self.full_pass()
            return "full"
        if self.registry.streams_opened - self._opened_mark >= self.new_streams:
            self.freeze_young()
            return "young"
        return None

    async def run(self) -> None:
        self.freeze_young()  # the code and startup objects
        while True:
            await asyncio.sleep(self.check_every)
            self.step()
