"""Sliding-window rate counters: login throttling and per-user message rates count with them.

A fixed window forgets everything at its boundary, so a burst just before and just after it
gets twice the limit through (and a test straddling the boundary flakes). The sliding estimate
counts this window plus the previous one weighted by how much of it still overlaps.

The interface is async so that a counter may live outside the process: replicas of the server share
their counts through Redis (storage/redis.py, `RedisWindowCounter`), with the same estimate. The
in-process `WindowCounter` here is the single-server default; its coroutines never suspend.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol


class RateCounter(Protocol):
    limit: int

    async def hit(self, key: str) -> bool:
        """Count one event; True while the key is within its limit (this event included)."""
        ...

    async def count(self, key: str) -> float:
        """The sliding estimate of the key's events in the last window."""
        ...

    async def over(self, key: str) -> bool:
        """Whether one more event would pass the limit (nothing is counted)."""
        ...

    async def reset(self, key: str) -> None: ...

    def retry_after(self) -> int:
        """Whole seconds until the current window ends (for a Retry-After header)."""
        ...


# (name, limit, window seconds) -> a counter. The name keeps apart counters that share a backend (two
# replicas' counters of one name count together; the in-process ones ignore it).
CounterFactory = Callable[[str, int, float], RateCounter]


class WindowCounter:
    def __init__(self, limit: int, window: float = 60.0):
        self.limit = limit
        self.window = window
        self._counts: dict[str, tuple[int, int, int]] = {}  # key -> (slot, count in slot, count in slot - 1)

    def _state(self, key: str) -> tuple[int, int, int, float]:
        now = time.monotonic()
        slot = int(now // self.window)
        last_slot, current, previous = self._counts.get(key, (slot, 0, 0))
        if last_slot != slot:
            previous = current if last_slot == slot - 1 else 0
            current = 0
        overlap = 1.0 - (now % self.window) / self.window
        return slot, current, previous, overlap

    async def count(self, key: str) -> float:
        _, current, previous, overlap = self._state(key)
        return current + previous * overlap

    async def hit(self, key: str) -> bool:
        slot, current, previous, overlap = self._state(key)
        if len(self._counts) > 100_000:
            self._counts.clear()
        self._counts[key] = (slot, current + 1, previous)
        return current + 1 + previous * overlap <= self.limit

    async def over(self, key: str) -> bool:
        # Rounded up: just past a slot boundary the previous slot's weight is a hair under 1, and a burst
        # that reached the limit a second ago must still be over it (it is, without the boundary).
        return math.ceil(await self.count(key) - 1e-9) >= self.limit

    async def reset(self, key: str) -> None:
        self._counts.pop(key, None)

    def retry_after(self) -> int:
        return max(1, int(self.window - time.monotonic() % self.window))


def in_process(name: str, limit: int, window: float) -> WindowCounter:
    """The single-server `CounterFactory`: each counter counts in this process only."""
    return WindowCounter(limit, window)
