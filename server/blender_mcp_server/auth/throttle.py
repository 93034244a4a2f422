"""Login throttling: failed logins slow a guesser down without locking the owner out."""

from __future__ import annotations

from ..storage.counters import WindowCounter


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
