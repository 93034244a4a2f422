"""The SDK behaviours sdk_shims.py relies on, checked against the installed (pinned) SDK.

When one of these fails after an upgrade, the shim beside it needs a new way in."""

from __future__ import annotations

import inspect
import logging

import pytest
from blender_mcp_server.delivery.encoding import SharedRecord
from blender_mcp_server.transport.sdk_shims import (
    SDK_REQUEST_LOGGER,
    on_logging_level_set,
    session_log_level,
    session_manager,
    set_completion_handler,
    set_session_idle_timeout,
)
from fastmcp import Client, Context, FastMCP
from mcp import types
from mcp.server import lowlevel
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from sse_starlette import ServerSentEvent

from blender_mcp_addon.protocol import MCP_DEFAULT_LEVEL, Priority

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("hooked", [False, True])
async def test_the_session_keeps_the_level_logging_set_level_asked_for(hooked: bool):
    """Also with `on_logging_level_set`'s wrapper around the SDK's handler, which must keep what it does."""
    mcp = FastMCP("shim")
    heard: list[str] = []
    if hooked:
        assert types.SetLevelRequest in mcp._mcp_server.request_handlers  # fastmcp registers one at construction
        assert on_logging_level_set(mcp, heard.append)
    seen: list[Priority] = []

    @mcp.tool
    async def level(ctx: Context) -> str:
        seen.append(session_log_level(ctx.session))
        return "ok"

    async with Client(mcp) as client:
        await client.call_tool("level", {})
        await client.set_logging_level("debug")
        await client.call_tool("level", {})
        await client.set_logging_level("error")
        await client.call_tool("level", {})
    assert seen == [MCP_DEFAULT_LEVEL, Priority.DEBUG, Priority.ERROR]
    assert heard == []  # an in-process session has no Mcp-Session-Id (over HTTP: test_replicas.py)
    if hooked:
        assert not on_logging_level_set(_without_set_level(), heard.append)


def _without_set_level() -> FastMCP:
    bare = FastMCP("bare")
    bare._mcp_server.request_handlers.pop(types.SetLevelRequest)
    return bare


async def test_the_session_manager_is_found_and_reads_its_idle_timeout_per_session():
    app = FastMCP("shim").http_app(path="/mcp", stateless_http=False)
    async with app.router.lifespan_context(app):  # where the server calls it: the manager is made per lifespan
        manager = session_manager(app, "/mcp")
        assert isinstance(manager, StreamableHTTPSessionManager)
        assert set_session_idle_timeout(app, "/mcp", 7.5) and manager.session_idle_timeout == 7.5
    # the manager must still read the attribute when it starts a session, not copy it at construction
    assert "self.session_idle_timeout" in inspect.getsource(StreamableHTTPSessionManager)
    assert not set_session_idle_timeout(app, "/elsewhere", 1.0)


def test_the_sdk_frames_sse_events_as_the_bus_writer_does():
    sdk = ServerSentEvent(data='{"a":1}', event="message").encode()
    ours = SharedRecord({"a": 1}).event("info", "_message_bus", "t")
    assert sdk.startswith(b"event: message\r\ndata: ") and sdk.endswith(b"\r\n\r\n")
    assert ours.startswith(b"event: message\r\ndata: ") and ours.endswith(b"\r\n\r\n")


def test_the_sdk_logs_requests_under_the_logger_the_server_quiets():
    assert lowlevel.server.logger.name == SDK_REQUEST_LOGGER
    assert isinstance(logging.getLogger(SDK_REQUEST_LOGGER), logging.Logger)


async def test_a_completion_handler_on_the_low_level_server_answers_and_is_advertised():
    mcp = FastMCP("shim")

    @mcp.resource("thing://{name}")
    def thing(name: str) -> str:
        return name

    seen: list[tuple[str, str, str]] = []

    async def complete(ref, argument, context):
        seen.append((ref.type, argument.name, argument.value))
        return types.Completion(values=[argument.value + "1", argument.value + "2"], total=2, hasMore=False)

    set_completion_handler(mcp, complete)
    async with Client(mcp) as client:
        assert client.initialize_result.capabilities.completions is not None
        done = await client.complete(types.ResourceTemplateReference(type="ref/resource", uri="thing://{name}"),
                                     {"name": "name", "value": "ab"})
    assert done.values == ["ab1", "ab2"] and seen == [("ref/resource", "name", "ab")]
