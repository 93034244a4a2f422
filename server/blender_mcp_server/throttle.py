"""Fixed-window counters for login throttling and per-user message rates."""

from __future__ import annotations

import time


class WindowCounter:
    """Counts events per key in the current window; `hit` says whether the key is still under its limit."""

    def __init__(self, limit: int, window: float = 60.0):
        self.limit = limit
        self.window = window
        self._counts: dict[str, tuple[int, int]] = {}

    def _slot(self) -> int:
        return int(time.monotonic() // self.window)

    def count(self, key: str) -> int:
        slot, n = self._counts.get(key, (self._slot(), 0))
        return n if slot == self._slot() else 0

    def hit(self, key: str) -> bool:
        now = self._slot()
        slot, n = self._counts.get(key, (now, 0))
        n = n + 1 if slot == now else 1
        if len(self._counts) > 100_000:
            self._counts.clear()
        self._counts[key] = (now, n)
        return n <= self.limit

    def over(self, key: str) -> bool:
        return self.count(key) >= self.limit

    def reset(self, key: str) -> None:
        self._counts.pop(key, None)

    def retry_after(self) -> int:
        return max(1, int(self.window - time.monotonic() % self.window))
