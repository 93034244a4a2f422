"""Sliding-window counters for login throttling and per-user message rates.

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


class LoginThrottle:
    """Failed logins slow the guesser down and never lock the owner out.

    - per address and user: past `per_address_and_user` failures in a window, that address gets 429 for
      that user (the right password included: it is the guesser's address);
    - per address: past `per_address` failures, 429 for every user from it;
    - per user, from anywhere: past `per_user` failures, each login for the user waits before its check,
      doubling with each further failure up to `max_delay`, so a guesser spread over many addresses is
      slowed while the right password from any other address still gets in.
    """

    def __init__(self, *, per_address_and_user: int, per_address: int, per_user: int, max_delay: float,
                 window: float = 60.0):
        self._pair = WindowCounter(per_address_and_user, window)
        self._address = WindowCounter(per_address, window)
        self._user = WindowCounter(per_user, window)
        self.max_delay = max_delay

    def refused(self, address: str, username: str) -> int | None:
        """Seconds to wait (for Retry-After) when this address may not try this user now, else None."""
        if self._pair.over(f"{address}\0{username}") or self._address.over(address):
            return self._pair.retry_after()
        return None

    def delay(self, username: str) -> float:
        excess = self._user.count(username) - self._user.limit
        return 0.0 if excess < 0 else min(self.max_delay, 0.05 * 2 ** min(excess, 16))

    def failed(self, address: str, username: str) -> None:
        self._pair.hit(f"{address}\0{username}")
        self._address.hit(address)
        self._user.hit(username)

    def succeeded(self, address: str, username: str) -> None:
        self._pair.reset(f"{address}\0{username}")
