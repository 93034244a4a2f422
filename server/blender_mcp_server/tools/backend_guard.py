"""A replica whose Redis or PostgreSQL is out of reach answers `backend_unavailable`, at once, in the tool's
own answer shape: never a traceback, never a hang (each engine call is bounded by `backend_timeout`)."""

from __future__ import annotations

import json
from typing import Any

from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import ToolResult
from mcp.types import TextContent

from blender_mcp_addon.protocol.answers import ErrorCode, bus_error

from ..storage.records import StoreUnavailable


def unavailable_answer(exc: StoreUnavailable) -> dict[str, Any]:
    return bus_error(ErrorCode.BACKEND_UNAVAILABLE, f"the bus's shared state is out of reach ({exc}); nothing "
                     "was changed, try again shortly", retry_after=1)


def _cause(exc: BaseException) -> StoreUnavailable | None:
    while exc is not None:
        if isinstance(exc, StoreUnavailable):
            return exc
        exc = exc.__cause__ or exc.__context__  # fastmcp may wrap a tool's exception in its own
    return None


class BackendGuard(Middleware):
    async def on_call_tool(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        try:
            return await call_next(context)
        except Exception as exc:
            if (cause := _cause(exc)) is None:
                raise
            answer = unavailable_answer(cause)
            return ToolResult(content=[TextContent(type="text", text=json.dumps(answer))], structured_content=answer)
