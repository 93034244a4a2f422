"""Sliding-window counters, in this process: login throttling and per-user message rates count with them.

A fixed window forgets everything at its boundary, so a burst just before and just after it
gets twice the limit through (and a test straddling the boundary flakes). The sliding estimate
counts this window plus the previous one weighted by how much of it still overlaps.
"""

from __future__ import annotations

import time


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

    def count(self, key: str) -> float:
        _, current, previous, overlap = self._state(key)
        return current + previous * overlap

    def hit(self, key: str) -> bool:
        """Count one event; True while the key is within its limit (this event included)."""
        slot, current, previous, overlap = self._state(key)
        if len(self._counts) > 100_000:
            self._counts.clear()
        self._counts[key] = (slot, current + 1, previous)
        return current + 1 + previous * overlap <= self.limit

    def over(self, key: str) -> bool:
        return self.count(key) >= self.limit

    def reset(self, key: str) -> None:
        self._counts.pop(key, None)

    def retry_after(self) -> int:
        return max(1, int(self.window - time.monotonic() % self.window))
