"""GET /health: that this replica answers, its version and uptime, and how many clients it holds."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse

from . import __version__
from .bus.directory import Registry


class Health:
    def __init__(self, registry: Registry):
        self.registry = registry
        self._started = time.time()

    async def route(self, request: Request) -> JSONResponse:
        entries = self.registry.all_entries()
        return JSONResponse({"status": "ok", "version": __version__, "uptime": round(time.time() - self._started, 1),
                             "clients": len(entries), "online": sum(e.online for e in entries)})
