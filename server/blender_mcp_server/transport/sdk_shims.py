"""Every place the server leans on the MCP SDK's or fastmcp's internals, in one module.

Each function says which behaviour of the pinned SDK it relies on, and
tests/test_sdk_shims.py (the session table: tests/test_edge_limits.py; answering
a tool call beside the SDK: tests/test_fast_job_updates.py) fails when an
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
from collections.abc import Awaitable, Callable, Container
from typing import TYPE_CHECKING, Any

from mcp import types
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


# --- answering a tool call beside the SDK (tools/fast_job_updates.py) ------------------------------------


def sdk_would_serve(manager: Any, session_id: str, user: Any) -> bool:
    """Whether the SDK would take a POST on session `session_id` by `user` straight to that open session,
    with nothing about the session to update: it is in the manager's table (private `_server_instances`),
    was opened by the same credential (private `_session_owners`, compared through the SDK's public
    `authorization_context`), is not terminated, and has a request in flight (its GET stream; the
    transport's private `_requests_in_flight`), so its idle countdown is suspended anyway."""
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, authorization_context

    table = getattr(manager, "_server_instances", None)
    owners = getattr(manager, "_session_owners", None)
    if not isinstance(table, dict) or not isinstance(owners, dict) or not isinstance(user, AuthenticatedUser):
        return False
    transport = table.get(session_id)
    if transport is None or transport.is_terminated or owners.get(session_id) != authorization_context(user):
        return False
    idle = getattr(transport, "idle_scope", None)
    return idle is None or (not idle.cancel_called and getattr(transport, "_requests_in_flight", 0) > 0)


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


def tool_answer_sse(request_id: int | str, content: list[Any], structured: dict[str, Any] | None,
                    session_id: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """(headers, body) of the SDK's answer to a tools/call POST whose tool returned (content, structured):
    the low-level server's CallToolResult, the session's JSONRPCResponse dump, the transport's SSE headers
    and sse-starlette's event framing, byte for byte (tests/test_fast_job_updates.py compares them)."""
    result = types.CallToolResult(content=list(content), structuredContent=structured, isError=False)
    message = types.JSONRPCResponse(jsonrpc="2.0", id=request_id,
                                    result=result.model_dump(by_alias=True, mode="json", exclude_none=True))
    body = EVENT_HEAD + message.model_dump_json(by_alias=True, exclude_none=True).encode() + EVENT_TAIL
    headers = [(b"cache-control", b"no-cache, no-transform"), (b"connection", b"keep-alive"),
               (b"content-type", b"text/event-stream"), (b"mcp-session-id", session_id.encode()),
               (b"x-accel-buffering", b"no")]
    return headers, body
