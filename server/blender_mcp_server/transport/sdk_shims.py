"""Every place the server leans on the MCP SDK's or fastmcp's internals, in one module.

Each function says which behaviour of the pinned SDK it relies on, and
tests/test_sdk_shims.py (the session table: tests/test_edge_limits.py; answering
a tool call beside the SDK: tests/test_fast_job_updates.py, tests/test_fast_dispatch.py) fails when an
upgrade changes it, so an SDK bump shows here first instead of as a quiet
regression (a lost log level, a 30-minute session reap, an unfiltered bus, an
unbounded account, resource names that no longer complete, a fast path that is
never taken or answers differently).

The one other such place is uvicorn's: read_timeouts.py subclasses its
httptools protocol to time request reads (tests/test_edge_limits.py).

Not here because they use only public, specified behaviour: the SSE framing the
bus writes itself (sse_channel.py, the Streamable HTTP wire format; the shim test
checks the SDK frames events the same way) and sniffio's documented
`thread_local` (blender_mcp_addon/asyncio_thread.py).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Container, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
from mcp import types
from sse_starlette.sse import EventSourceResponse
from starlette.routing import Route

from blender_mcp_addon.protocol import MCP_DEFAULT_LEVEL, Priority, parse_priority

from ..delivery.encoding import EVENT_HEAD, EVENT_TAIL

if TYPE_CHECKING:
    from fastmcp import FastMCP

log = logging.getLogger(__name__)

# The SDK's low-level server logs every request at INFO under this name: one line per bus call.
SDK_REQUEST_LOGGER = "mcp.server.lowlevel.server"


def session_log_level(session: Any) -> Priority:
    """The level an MCP session asked for with `logging/setLevel`; the MCP default until it did.

    fastmcp keeps the level in the private `ServerSession._minimum_logging_level` and applies it only
    to its own `ctx.log` calls. Bus records bypass those, so the bus reads the level here to filter."""
    level = getattr(session, "_minimum_logging_level", None)
    if not level:
        return MCP_DEFAULT_LEVEL
    try:
        return parse_priority(level)
    except ValueError:
        return MCP_DEFAULT_LEVEL


def session_manager(app: Any, path: str) -> Any | None:
    """The SDK's `StreamableHTTPSessionManager` behind the Starlette app's MCP route, or None.

    fastmcp creates it anew per lifespan cycle and mounts it as the endpoint's `app.session_manager`
    (a `StreamableHTTPASGIApp`); there is no public accessor."""
    for route in getattr(app, "routes", []):
        if isinstance(route, Route) and route.path == path:
            endpoint = getattr(route.endpoint, "app", route.endpoint)
            manager = getattr(endpoint, "session_manager", None)
            if manager is not None:
                return manager
    return None


def _set_on_manager(app: Any, path: str, name: str, value: Any) -> bool:
    manager = session_manager(app, path)
    if manager is None or not hasattr(manager, name):
        log.warning("could not set the MCP session manager's %s", name)
        return False
    setattr(manager, name, value)
    return True


def set_session_idle_timeout(app: Any, path: str, seconds: float) -> bool:
    """Reap idle MCP sessions after `seconds` instead of the SDK's 30 minutes (a client killed with -9
    would hold its session, and its memory, that long). Relies on the manager's `session_idle_timeout`
    attribute being read when each session starts. False when the manager was not found."""
    return _set_on_manager(app, path, "session_idle_timeout", seconds)


def set_max_sessions(app: Any, path: str, max_sessions: int) -> bool:
    """fastmcp builds the SDK's session manager without passing `max_sessions` (the global bound on open
    sessions); the manager's admission reads the attribute, so it is set here. False when not found."""
    return _set_on_manager(app, path, "max_sessions", max_sessions)


def sdk_open_session_ids(manager: Any) -> Container[str] | None:
    """The ids of the sessions the SDK's `StreamableHTTPSessionManager` holds open, or None if unknown.

    Relies on the pinned SDK keeping its open sessions in the private dict `_server_instances`, keyed by
    the Mcp-Session-Id it hands out, and removing a session from it when the session ends: the client's
    DELETE, the idle timeout, a crashed session task, a refused opening request, shutdown."""
    table = getattr(manager, "_server_instances", None)
    return table if isinstance(table, dict) else None


def quiet_sdk_request_logs() -> None:
    """The SDK logs each request at INFO; at bus rates that is most of the server's log."""
    logging.getLogger(SDK_REQUEST_LOGGER).setLevel(logging.WARNING)


CompletionHandler = Callable[[types.PromptReference | types.ResourceTemplateReference, types.CompletionArgument,
                              types.CompletionContext | None], Awaitable[types.Completion | None]]


def set_completion_handler(mcp: FastMCP, handler: CompletionHandler) -> None:
    """Answer `completion/complete` with `handler`.

    fastmcp 3.4 has no completion hook of its own, so the handler goes onto the SDK's low-level server
    behind it (the private `FastMCP._mcp_server`), through the SDK's public `completion()` decorator;
    the SDK then advertises the `completions` capability because the request has a handler."""
    mcp._mcp_server.completion()(handler)


def on_logging_level_set(mcp: FastMCP, hook: Callable[[str], None]) -> bool:
    """Call `hook(session_id)` after a session's `logging/setLevel` has been applied.

    Neither fastmcp 3.4 nor the SDK tells anyone a session changed its level (fastmcp's middleware does
    not see the request), so the SDK's handler for it on the low-level server (the private
    `FastMCP._mcp_server`, its public `request_handlers` table) is wrapped. The session id is read
    from the HTTP request's `Mcp-Session-Id`; in-process sessions have none and are not reported.
    False when there was no handler to wrap."""
    handlers = mcp._mcp_server.request_handlers
    original = handlers.get(types.SetLevelRequest)
    if original is None:
        log.warning("could not hook logging/setLevel: the SDK has no handler for it")
        return False

    async def handler(request: types.SetLevelRequest) -> types.ServerResult:
        result = await original(request)
        try:
            http = mcp._mcp_server.request_context.request
        except LookupError:
            http = None
        session_id = http.headers.get("mcp-session-id") if http is not None else None
        if session_id:
            hook(session_id)
        return result

    handlers[types.SetLevelRequest] = handler
    return True


# --- answering a tool call beside the SDK (tools/fast_calls.py) ------------------------------------------


def sdk_open_session(manager: Any, session_id: str, user: Any) -> Any | None:
    """The SDK's transport of open session `session_id` when `user` may use it, else None: it is in the
    manager's table (private `_server_instances`), was opened by the same credential (private
    `_session_owners`, compared through the SDK's public `authorization_context`) and is not terminated."""
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context

    table = getattr(manager, "_server_instances", None)
    owners = getattr(manager, "_session_owners", None)
    if not isinstance(table, dict) or not isinstance(owners, dict) or not isinstance(user, AuthenticatedUser):
        return None
    transport = table.get(session_id)
    if transport is None or transport.is_terminated or owners.get(session_id) != authorization_context(user):
        return None
    return transport


def sdk_would_serve(manager: Any, session_id: str, user: Any) -> Any | None:
    """The transport, when the SDK would take a POST on session `session_id` by `user` straight to that open
    session with nothing about the session to update: `sdk_open_session`, and a request in flight (its GET
    stream; the transport's private `_requests_in_flight`), so its idle countdown is suspended anyway."""
    transport = sdk_open_session(manager, session_id, user)
    if transport is None:
        return None
    idle = getattr(transport, "idle_scope", None)
    if idle is None or (not idle.cancel_called and getattr(transport, "_requests_in_flight", 0) > 0):
        return transport
    return None


def sdk_session_ended(manager: Any, session_id: str, transport: Any) -> bool:
    """Whether the session `transport` served has ended since (DELETE, idle reap, shutdown): the SDK then
    closes the streams of the requests in flight, and their SSE answers end with no event."""
    table = getattr(manager, "_server_instances", None)
    return transport.is_terminated or not isinstance(table, dict) or table.get(session_id) is not transport


@contextmanager
def sdk_request_in_flight(transport: Any) -> Iterator[None]:
    """Count a request answered beside the SDK as one in flight on its session, as the transport's
    `handle_request` counts its own (private `_requests_in_flight`, `idle_scope.deadline`): a long call
    keeps the session from its idle reap even if the client's GET stream drops meanwhile."""
    idle = getattr(transport, "idle_scope", None)
    timeout = getattr(transport, "_idle_timeout", None)
    if idle is None or timeout is None:
        yield
        return
    transport._requests_in_flight += 1
    idle.deadline = math.inf
    try:
        yield
    finally:
        transport._requests_in_flight -= 1
        if not transport._requests_in_flight:
            idle.deadline = anyio.current_time() + timeout


def sdk_accepts_post(headers: Any) -> bool:
    """Whether the SDK's Streamable HTTP transport accepts a POST with these (Starlette) headers as they
    are: Accept naming JSON and SSE, a JSON Content-Type, a supported MCP-Protocol-Version (the same checks,
    in the transport's private `_check_accept_headers`, `_check_content_type`, `_validate_protocol_version`)."""
    from mcp.shared.version import SUPPORTED_PROTOCOL_VERSIONS
    from mcp.types import DEFAULT_NEGOTIATED_VERSION

    accept = [part.strip() for part in headers.get("accept", "").split(",")]
    if not (any(a.startswith("application/json") for a in accept) and any(a.startswith("text/event-stream")
                                                                          for a in accept)):
        return False
    content_type = [part.strip() for part in headers.get("content-type", "").split(";")[0].split(",")]
    return ("application/json" in content_type
            and headers.get("mcp-protocol-version", DEFAULT_NEGOTIATED_VERSION) in SUPPORTED_PROTOCOL_VERSIONS)


def sse_answer_headers(session_id: str) -> list[tuple[bytes, bytes]]:
    """The headers of the SDK's SSE answer to a POST on session `session_id` (the transport's, sse-starlette's)."""
    return [(b"cache-control", b"no-cache, no-transform"), (b"connection", b"keep-alive"),
            (b"content-type", b"text/event-stream"), (b"mcp-session-id", session_id.encode()),
            (b"x-accel-buffering", b"no")]


def tool_answer_event(request_id: int | str, content: list[Any], structured: dict[str, Any] | None,
                      is_error: bool = False) -> bytes:
    """The SSE event of the SDK's answer to a tools/call whose tool returned (content, structured): the
    low-level server's CallToolResult, the session's JSONRPCResponse dump, sse-starlette's framing."""
    result = types.CallToolResult(content=list(content), structuredContent=structured, isError=is_error)
    message = types.JSONRPCResponse(jsonrpc="2.0", id=request_id,
                                    result=result.model_dump(by_alias=True, mode="json", exclude_none=True))
    return EVENT_HEAD + message.model_dump_json(by_alias=True, exclude_none=True).encode() + EVENT_TAIL


def tool_error_text(mcp: FastMCP, name: str, exc: Exception) -> str:
    """The text of the error result fastmcp gives for a tool that raised `exc` (FastMCP.call_tool wraps it in
    a ToolError, honouring the private `_mask_error_details`; the low-level server answers its str)."""
    if getattr(mcp, "_mask_error_details", False):
        return f"Error calling tool {name!r}"
    return f"Error calling tool {name!r}: {exc}"


def progress_event(token: int | str, progress: float, total: float | None, message: str | None) -> bytes:
    """The SSE event of the SDK's `send_progress_notification` for a request's progress token, on that
    request's own answer stream (its `related_request_id`)."""
    notification = types.ServerNotification(types.ProgressNotification(params=types.ProgressNotificationParams(
        progressToken=token, progress=progress, total=total, message=message)))
    message_ = types.JSONRPCNotification(jsonrpc="2.0", **notification.model_dump(by_alias=True, mode="json",
                                                                                    exclude_none=True))
    return EVENT_HEAD + message_.model_dump_json(by_alias=True, exclude_none=True).encode() + EVENT_TAIL


def cancelled_answer_event(request_id: int | str) -> bytes:
    """The SSE event of the SDK's answer to a request the client cancelled (`RequestResponder.cancel`)."""
    message = types.JSONRPCError(jsonrpc="2.0", id=request_id,
                                 error=types.ErrorData(code=0, message="Request cancelled", data=None))
    return EVENT_HEAD + message.model_dump_json(by_alias=True, exclude_none=True).encode() + EVENT_TAIL


def sse_ping() -> bytes:
    """sse-starlette's keep-alive comment, which the SDK's SSE answers carry every `SSE_PING_SECONDS`."""
    from sse_starlette.event import ServerSentEvent

    return ServerSentEvent(comment=f"ping - {datetime.now(UTC)}", sep=EventSourceResponse.DEFAULT_SEPARATOR).encode()


SSE_PING_SECONDS: float = EventSourceResponse.DEFAULT_PING_INTERVAL
