"""Ping a session once it goes quiet, so it stops holding on to its last answer.

The MCP SDK routes every outgoing message of a session through one long-lived
task, whose loop variable keeps the last message routed alive until the next
one comes along. For an LLM client that lists the tools and then waits, that is
the whole `tools/list` answer: about 100 KB of Python objects per idle session
here (measured with tracemalloc, 1,000 idle clients = 100 MB), and a render's
4 MiB image for a caller that went quiet after one. A ping is the smallest
message a server may send unasked; once it has passed through the router, the
old answer can be freed. It also doubles as an early liveness check.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any

from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext

QUIET_SECONDS = 2.0


class QuietPing(Middleware):
    """After each request, (re)arm a timer for the session; when it fires, ping the session once."""

    def __init__(self, ping_timeout: float, quiet_seconds: float = QUIET_SECONDS):
        self.ping_timeout = ping_timeout
        self.quiet_seconds = quiet_seconds
        self._timers: weakref.WeakKeyDictionary[Any, asyncio.TimerHandle] = weakref.WeakKeyDictionary()
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_request(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        try:
            return await call_next(context)
        finally:
            self._arm(context)

    def _arm(self, context: MiddlewareContext[Any]) -> None:
        ctx = context.fastmcp_context
        try:
            session = ctx.session if ctx is not None else None
        except RuntimeError:  # no request context (in-process calls)
            session = None
        if session is None:
            return
        old = self._timers.get(session)
        if old is not None:
            old.cancel()
        self._timers[session] = asyncio.get_running_loop().call_later(self.quiet_seconds, self._fire,
                                                                     weakref.ref(session))

    def _fire(self, ref: weakref.ref[Any]) -> None:
        session = ref()
        if session is None:
            return
        self._timers.pop(session, None)
        task = asyncio.get_running_loop().create_task(self._ping(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _ping(self, session: Any) -> None:
        # A closed or silent session is the liveness loop's business (bus/liveness.py), not this one's.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(session.send_ping(), self.ping_timeout)
