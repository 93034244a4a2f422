"""ASGI middleware: the bus's hottest tool calls answered without the SDK's machinery.

Every Style A job costs the server two tool calls: the caller's dispatch tool (`blender_get_scene_info`,
`blender_execute_code` ...) and the worker's `blender_job_updates` with the reply. Through the MCP SDK
and fastmcp, a call is a memory stream into the session's task, one more task per POST for its SSE
answer, a JSON-RPC model validated twice, the request context, two fastmcp middlewares, the tool lookup
and argument binding: most of the server's time per job (py-spy, bench/bench_dispatch.py), while the
work itself is a dictionary lookup and a wait.

So a POST that is a plain `tools/call` of one of those tools on an open session (the SDK would take it
straight to that session, sdk_shims.sdk_would_serve) is answered here, with the tool's own code:
`apply_job_updates` with arguments the tool's model accepts, or `DispatchTool.call` (which checks its
own arguments, as on the SDK's way). The result is converted as fastmcp converts it and framed as the
SDK frames it (sdk_shims), then sent on through transport/post_answers.py as the SDK's answers are
(tests compare the bytes with the SDK's). Anything else (another method or tool, a batch, unexpected
keys, arguments the model refuses, a session the SDK would refuse, an unexpected header) goes on to the
SDK untouched, before anything was applied, so its answer and its errors stay the SDK's own.

A dispatch call waits (seconds to minutes), so for it this also does what the SDK does around a waiting
request: the SSE head goes out at once (post_answers holds it a moment, so a quick answer still leaves
as one JSON body); the job's progress goes as `notifications/progress` events on that stream when the
call carries a progress token (fastmcp's client always does); sse-starlette's keep-alive comment every
15 s; the session counts as busy (no idle reap mid-call); `notifications/cancelled` for its id is
answered with the SDK's "Request cancelled" error (the notification itself still goes on to the SDK,
which answers it 202); and the answer stream ends with no event when the session ends meanwhile.
`fast_job_updates = false` / `fast_dispatch = false` send those calls the SDK's way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastmcp import FastMCP
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from blender_mcp_addon.protocol.catalog import COMMANDS

from ..bus.caller import Caller
from ..bus.service import Bus
from ..storage.records import StoreUnavailable
from ..transport.json_depth import replay
from ..transport.sdk_shims import (
    SSE_PING_SECONDS,
    cancelled_answer_event,
    progress_event,
    sdk_accepts_post,
    sdk_open_session,
    sdk_request_in_flight,
    sdk_session_ended,
    sdk_would_serve,
    sse_answer_headers,
    sse_ping,
    tool_answer_event,
    tool_error_text,
)
from .backend_guard import unavailable_answer
from .bus_tools import JobUpdateList, apply_job_updates
from .context import caller_from_token
from .dispatch_tools import DispatchTool

log = logging.getLogger(__name__)

JOB_UPDATES = "blender_job_updates"
CANCELLED = "notifications/cancelled"
WATCH_SECONDS = 0.5  # how often a waiting dispatch looks whether its session still stands
_UPDATES: TypeAdapter[Any] = TypeAdapter(JobUpdateList)
_MARKS = (b"tools/call", CANCELLED.encode())
DISPATCH_TOOLS = frozenset(spec.tool_name for spec in COMMANDS)

RequestId = int | str


@dataclass
class _Request:
    """A POST this middleware may answer: its JSON-RPC message, checked as the SDK would take it."""

    session_id: str
    transport: Any
    message: dict[str, Any]


@dataclass
class _Waiting:
    """A dispatch call answered here, until it ends; `cancelled` once the client's notification cancelled it."""

    task: asyncio.Task[Any]
    cancelled: bool = field(default=False)


class FastToolCalls:
    """`manager()` is the SDK's session manager (it is made anew per lifespan), `required_scopes` the
    verifier's: a token without them goes the SDK's way, to be refused there."""

    def __init__(self, app: ASGIApp, mcp: FastMCP, bus: Bus, manager: Callable[[], Any],
                 required_scopes: list[str] | None = None, path: str = "/mcp", job_updates: bool = True,
                 dispatch: bool = True) -> None:
        self.app = app
        self.mcp = mcp
        self.bus = bus
        self.manager = manager
        self.required_scopes = list(required_scopes or [])
        self.path = path.rstrip("/")
        self._served = frozenset(({JOB_UPDATES} if job_updates else set()) | (DISPATCH_TOOLS if dispatch else set()))
        self._tools: dict[str, Any] = {}
        self._waiting: dict[tuple[str, RequestId], _Waiting] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        first = await receive()
        request = self._request(scope, first)
        if request is not None:
            message = request.message
            if message.get("method") == "tools/call":
                chosen = await self._tool_for(request)
                if chosen is not None:
                    await self._answer(scope, send, request, *chosen)
                    return
            else:
                self._cancel(request)
        await self.app(scope, replay(first, receive), send)

    def _request(self, scope: Scope, first: Message) -> _Request | None:
        """The POST's message when it is one JSON-RPC request or notification on an open session of this
        user that the SDK would take as it is; None for everything else."""
        body = first.get("body", b"")
        if first["type"] != "http.request" or first.get("more_body", False) or not any(m in body for m in _MARKS):
            return None
        headers = Headers(scope=scope)
        session_id = headers.get("mcp-session-id")
        if not session_id or not sdk_accepts_post(headers) or not self._scopes_held(scope):
            return None
        try:
            message = json.loads(body)
        except ValueError:
            return None
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return None
        method, params = message.get("method"), message.get("params")
        if method == "tools/call":
            request_id = message.get("id")
            if (message.keys() != {"jsonrpc", "id", "method", "params"} or not _is_request_id(request_id)
                    or not isinstance(params, dict) or not params.keys() <= {"name", "arguments", "_meta"}
                    or not isinstance(params.get("name"), str)):
                return None
            if params["name"] not in self._served:  # before any session lookup: most tool calls stop here
                return None
            meta = params.get("_meta", {})
            if not isinstance(meta, dict) or not meta.keys() <= {"progressToken"}:
                return None
            # The SDK sends a request's progress on its answer stream, but for an id that is falsy (0, "") on
            # the GET stream instead (it tests `if related_request_id`): such calls go its way.
            if "progressToken" in meta and (not _is_request_id(meta["progressToken"]) or not request_id):
                return None
            transport = sdk_would_serve(self.manager(), session_id, scope.get("user"))
        elif method == CANCELLED:
            if (message.keys() != {"jsonrpc", "method", "params"} or not isinstance(params, dict)
                    or not params.keys() <= {"requestId", "reason", "_meta"} or not _is_request_id(params.get("requestId"))
                    or not isinstance(params.get("reason", ""), str | None)):
                return None
            transport = sdk_open_session(self.manager(), session_id, scope.get("user"))
        else:
            return None
        return None if transport is None else _Request(session_id, transport, message)

    async def _tool_for(self, request: _Request) -> tuple[Any, dict[str, Any]] | None:
        """(the registered tool, its arguments) when this middleware answers the call, the arguments
        checked as the SDK's way checks them before anything runs; None to leave the call to the SDK."""
        params = request.message["params"]
        name, arguments = params["name"], params.get("arguments")
        if getattr(self.mcp, "strict_input_validation", False):
            return None  # the SDK would check the arguments against the input schema first
        if name == JOB_UPDATES:
            if not isinstance(arguments, dict) or arguments.keys() != {"updates"} or not isinstance(arguments["updates"], list):
                return None
            try:
                arguments = {"updates": _UPDATES.validate_python(arguments["updates"])}
            except ValidationError:
                return None
        elif not isinstance(arguments, dict | None):
            return None
        tool = self._tools.get(name)
        if tool is None:
            tool = await self.mcp.get_tool(name)
            if tool is None or not (name == JOB_UPDATES or isinstance(tool, DispatchTool)):
                return None
            self._tools[name] = tool
        return tool, arguments or {}

    async def _answer(self, scope: Scope, send: Send, request: _Request, tool: Any, arguments: dict[str, Any]) -> None:
        request_id = request.message["id"]
        caller = caller_from_token(scope["user"].access_token, None, request.session_id)
        if self.bus.metrics is not None:
            self.bus.metrics.fast_tool_calls["dispatch" if isinstance(tool, DispatchTool) else "job_updates"] += 1
        await send({"type": "http.response.start", "status": 200, "headers": sse_answer_headers(request.session_id)})
        if isinstance(tool, DispatchTool):
            token = request.message["params"].get("_meta", {}).get("progressToken")
            event = await self._dispatched(send, request, tool, caller, arguments, token)
        else:
            event = await self._job_updates(request_id, tool, caller, arguments["updates"])
        with contextlib.suppress(OSError):  # the client went away: its answer has nowhere to go
            await send({"type": "http.response.body", "body": event, "more_body": False})

    async def _job_updates(self, request_id: RequestId, tool: Any, caller: Caller, updates: list[Any]) -> bytes:
        try:
            answer = await apply_job_updates(self.bus, caller, updates)
        except StoreUnavailable as exc:  # as BackendGuard answers it on the SDK's way
            answer = unavailable_answer(exc)
        return _event(request_id, tool.convert_result(answer))

    async def _dispatched(self, send: Send, request: _Request, tool: DispatchTool, caller: Caller,
                          arguments: dict[str, Any], token: RequestId | None) -> bytes:
        """The answer's event once the dispatch ends (b"" when the session ended first), with the job's
        progress (when the call has a progress token) and the SDK's keep-alive comments sent meanwhile."""
        request_id = request.message["id"]

        async def progress(fraction: float, message: str | None) -> None:
            assert token is not None
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": progress_event(token, fraction, 1.0, message),
                            "more_body": True})

        key = (request.session_id, request_id)
        call = tool.call(caller, arguments, progress if token is not None else None)
        waiting = self._waiting[key] = _Waiting(asyncio.ensure_future(call))
        task, loop = waiting.task, asyncio.get_running_loop()
        ping_at = loop.time() + SSE_PING_SECONDS
        try:
            with sdk_request_in_flight(request.transport):
                while not task.done():
                    await asyncio.wait((task,), timeout=min(WATCH_SECONDS, max(0.0, ping_at - loop.time())))
                    if task.done():
                        break
                    if sdk_session_ended(self.manager(), request.session_id, request.transport):
                        task.cancel()
                        return b""
                    if loop.time() >= ping_at:
                        ping_at = loop.time() + SSE_PING_SECONDS
                        with contextlib.suppress(OSError):
                            await send({"type": "http.response.body", "body": sse_ping(), "more_body": True})
        finally:
            if self._waiting.get(key) is waiting:
                del self._waiting[key]
            if not task.done():
                task.cancel()  # this request itself was cancelled (shutdown): the wait goes with it
        if task.cancelled():
            return cancelled_answer_event(request_id) if waiting.cancelled else b""
        exc = task.exception()
        if exc is None:
            return _event(request_id, task.result())
        if isinstance(exc, StoreUnavailable):
            return _event(request_id, tool.convert_result(unavailable_answer(exc)))
        log.error("Error calling tool %r", tool.name, exc_info=exc)
        return tool_answer_event(request_id, [{"type": "text", "text": tool_error_text(self.mcp, tool.name, exc)}],
                                 None, is_error=True)

    def _cancel(self, request: _Request) -> None:
        """A client's notifications/cancelled for a dispatch call waiting here: the SDK cancels its own
        requests' handlers the same way, and answers them "Request cancelled"."""
        waiting = self._waiting.get((request.session_id, request.message["params"]["requestId"]))
        if waiting is not None and not waiting.task.done() and waiting.task.cancel():
            waiting.cancelled = True

    def _scopes_held(self, scope: Scope) -> bool:
        held = getattr(scope.get("auth"), "scopes", None) or []
        return all(s in held for s in self.required_scopes)


def _is_request_id(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _event(request_id: RequestId, result: Any) -> bytes:
    """The SSE event of the SDK's answer for a fastmcp ToolResult."""
    converted = result.to_mcp_result()
    content, structured = converted if isinstance(converted, tuple) else (converted, None)
    return tool_answer_event(request_id, content, structured)
