"""ASGI middleware: the Blender extension's `blender_job_updates` calls answered without the SDK's machinery.

Every Style A job costs the server two tool calls: the caller's dispatch tool and the worker's
`blender_job_updates` with the reply. Through the MCP SDK and fastmcp, a call is a memory stream into
the session's task, one more task per POST for its SSE answer, a JSON-RPC model validated twice, the
request context, two fastmcp middlewares, the tool lookup and argument binding: most of the server's
time per call (py-spy, bench/bench_dispatch.py), while the update itself is a dictionary lookup.

So a POST that is a plain `tools/call` of `blender_job_updates` on an open session (the SDK would take
it straight to that session, sdk_shims.sdk_would_serve) with arguments the tool's own model accepts is
answered here: the same `apply_job_updates` the tool runs, the result converted by the registered tool's
own `convert_result` and framed as the SDK frames it (sdk_shims.tool_answer_sse), then sent on through
transport/post_answers.py as the SDK's answers are (a test compares the bytes with the SDK's). Anything
else (another method or tool, a batch, unexpected keys, arguments the model refuses, a session the SDK
would refuse, an unexpected header) goes on to the SDK untouched,
before anything was applied, so its answer and its errors stay the SDK's own. `fast_job_updates = false`
sends everything the SDK's way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastmcp import FastMCP
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..bus.service import Bus
from ..storage.records import StoreUnavailable
from ..transport.json_depth import replay
from ..transport.sdk_shims import sdk_accepts_post, sdk_would_serve, tool_answer_sse
from .backend_guard import unavailable_answer
from .bus_tools import JobUpdateList, apply_job_updates
from .context import caller_from_token

TOOL = "blender_job_updates"
_MARK = TOOL.encode()
_UPDATES: TypeAdapter[Any] = TypeAdapter(JobUpdateList)


class FastJobUpdates:
    """`manager()` is the SDK's session manager (it is made anew per lifespan), `required_scopes` the
    verifier's: a token without them goes the SDK's way, to be refused there."""

    def __init__(self, app: ASGIApp, mcp: FastMCP, bus: Bus, manager: Callable[[], Any],
                 required_scopes: list[str] | None = None, path: str = "/mcp") -> None:
        self.app = app
        self.mcp = mcp
        self.bus = bus
        self.manager = manager
        self.required_scopes = list(required_scopes or [])
        self.path = path.rstrip("/")
        self._tool: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        first = await receive()
        call = self._fast_call(scope, first)
        if call is None:
            await self.app(scope, replay(first, receive), send)
            return
        request_id, session_id, updates = call
        caller = caller_from_token(scope["user"].access_token, None, session_id)
        try:
            answer = await apply_job_updates(self.bus, caller, updates)
        except StoreUnavailable as exc:  # as BackendGuard answers it on the SDK's way
            answer = unavailable_answer(exc)
        tool = self._tool or await self._registered_tool()
        converted = tool.convert_result(answer).to_mcp_result()
        content, structured = converted if isinstance(converted, tuple) else (converted, None)
        headers, body = tool_answer_sse(request_id, content, structured, session_id)
        if self.bus.metrics is not None:
            self.bus.metrics.fast_tool_calls += 1
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def _fast_call(self, scope: Scope, first: Message) -> tuple[int | str, str, list[Any]] | None:
        """(request id, session id, validated updates) when this POST is one the SDK would serve as a plain
        blender_job_updates call; None for everything else."""
        body = first.get("body", b"")
        if first["type"] != "http.request" or first.get("more_body", False) or _MARK not in body:
            return None
        headers = Headers(scope=scope)
        session_id = headers.get("mcp-session-id")
        user = scope.get("user")
        if not session_id or not sdk_accepts_post(headers) or not self._scopes_held(scope):
            return None
        try:
            message = json.loads(body)
        except ValueError:
            return None
        if not isinstance(message, dict) or message.keys() != {"jsonrpc", "id", "method", "params"}:
            return None
        request_id, params = message["id"], message["params"]
        if (message["jsonrpc"] != "2.0" or message["method"] != "tools/call" or isinstance(request_id, bool)
                or not isinstance(request_id, int | str) or not isinstance(params, dict)
                or params.get("name") != TOOL or not params.keys() <= {"name", "arguments", "_meta"}):
            return None
        meta, arguments = params.get("_meta", {}), params.get("arguments")
        if (not isinstance(meta, dict) or not meta.keys() <= {"progressToken"} or not isinstance(arguments, dict)
                or arguments.keys() != {"updates"} or not isinstance(arguments["updates"], list)):
            return None
        try:
            updates = _UPDATES.validate_python(arguments["updates"])
        except ValidationError:
            return None
        if not sdk_would_serve(self.manager(), session_id, user):
            return None
        return request_id, session_id, updates

    def _scopes_held(self, scope: Scope) -> bool:
        held = getattr(scope.get("auth"), "scopes", None) or []
        return all(s in held for s in self.required_scopes)

    async def _registered_tool(self) -> Any:
        self._tool = await self.mcp.get_tool(TOOL)
        return self._tool
