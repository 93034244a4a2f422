"""Login throttling: failed logins slow a guesser down without locking the owner out."""

from __future__ import annotations

import asyncio

from ..storage.counters import CounterFactory, in_process


class LoginThrottle:
    """Failed logins slow the guesser down and never lock the owner out.

    - per address and user: past `per_address_and_user` failures in a window, that address gets 429 for
      that user (the right password included: it is the guesser's address);
    - per address: past `per_address` failures, 429 for every user from it;
    - per user, from anywhere: past `per_user` failures, each login for the user waits before its check,
      doubling with each further failure up to `max_delay`, so a guesser spread over many addresses is
      slowed while the right password from any other address still gets in.

    `counter` makes the three counters (storage/counters.py): in this process by default; Redis ones
    (storage/redis.py) make replicas count one guesser's failures together, whichever replica saw them.
    """

    def __init__(self, *, per_address_and_user: int, per_address: int, per_user: int, max_delay: float,
                 window: float = 60.0, counter: CounterFactory = in_process):
        self._pair = counter("login_pair", per_address_and_user, window)
        self._address = counter("login_address", per_address, window)
        self._user = counter("login_user", per_user, window)
        self.max_delay = max_delay

    async def refused(self, address: str, username: str) -> int | None:
        """Seconds to wait (for Retry-After) when this address may not try this user now, else None."""
        if await self._pair.over(f"{address}\0{username}") or await self._address.over(address):
            return self._pair.retry_after()
        return None

    async def delay(self, username: str) -> float:
        excess = await self._user.count(username) - self._user.limit
        return 0.0 if excess < 0 else min(self.max_delay, 0.05 * 2 ** min(excess, 16))

    async def failed(self, address: str, username: str) -> None:
        # at once: a shared counter costs a round trip each, and the three are independent
        await asyncio.gather(self._pair.hit(f"{address}\0{username}"), self._address.hit(address),
                             self._user.hit(username))

    async def succeeded(self, address: str, username: str) -> None:
        await self._pair.reset(f"{address}\0{username}")
