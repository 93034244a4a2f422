"""Liveness and housekeeping: the directory's sweeps, pings to quiet targets, and pruning the store.

Runs as two tasks for the life of the bus (Bus.start); each outlives any one bad entry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from ..config import Settings
from ..storage.protocols import Prunable
from .directory import ClientEntry, Registry

log = logging.getLogger(__name__)


class Liveness:
    def __init__(self, settings: Settings, registry: Registry, stores: Sequence[Prunable] = ()):
        self.settings = settings
        self.registry = registry
        self.stores = list(stores)

    async def sweep_forever(self) -> None:
        next_prune = 0.0
        while True:
            await asyncio.sleep(0.5)
            try:
                await self.registry.sweep(offline_max_age=self.settings.offline_max_age,
                                    parked_max_age=self.settings.parked_max_age,
                                    persistent_max_offline=self.settings.persistent_max_offline)
                await self.registry.flush()
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + self.settings.prune_interval
                    await self.prune()
            except Exception:  # the sweeper must outlive any one bad entry
                log.exception("registry sweep failed")

    async def prune(self) -> dict[str, int]:
        """Old jobs, expired tokens and over-age queued records leave the stores (every prune_interval)."""
        pruned: dict[str, int] = {}
        for store in self.stores:
            counts = await store.prune(now=time.time(), job_retention=self.settings.job_retention,
                                       offline_max_age=self.settings.offline_max_age)
            for kind, count in counts.items():
                pruned[kind] = pruned.get(kind, 0) + count
        if any(pruned.values()):
            log.info("pruned the stores: %s", pruned)
        return pruned

    async def ping_forever(self) -> None:
        """Find targets whose socket is open but which no longer answer (a frozen or cut-off client).

        Only clients silent for a whole interval are pinged (a heartbeat or any call counts), the
        pings are spread over the interval, and two misses in a row are needed: a burst of 900
        pings at once made a busy but healthy client process miss them all (bench_scale.py).
        """
        interval = self.settings.ping_interval
        while True:
            started = time.monotonic()
            quiet_since = time.time() - interval
            due = [e for e in self.registry.all_entries() if e.online and e.session is not None
                   and e.last_seen < quiet_since]
            pause = interval / (len(due) + 1)
            pending = set()
            for entry in due:
                pending.add(asyncio.create_task(self._ping(entry)))
                await asyncio.sleep(min(pause, 0.05))
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def _ping(self, entry: ClientEntry) -> None:
        session = entry.session
        try:
            await asyncio.wait_for(session.send_ping(), self.settings.ping_timeout)
            self.registry.touch(entry)
        except Exception:
            entry.missed_pings += 1
            if entry.session is session and entry.online and entry.missed_pings >= 2:
                self.registry.mark_offline(entry, "did not answer two pings")
