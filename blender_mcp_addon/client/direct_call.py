"""A tool call on the client's own MCP session, written as the SDK writes it, without the SDK's plumbing.

Why: a tool call through fastmcp's Client and the MCP SDK (mcp 1.x) passes the request through a memory
stream to the transport's writer task, which starts one more task per POST, validates the JSON-RPC
answer with pydantic, hands it back through two more memory streams to the waiting call, and formats
the whole request and the whole answer into debug strings (f-strings, built whatever the log level).
On a busy headless worker the one call it makes per batch of job updates was most of the client thread's
time (py-spy, bench/bench_dispatch.py).

`DirectCaller.call` sends the same bytes the SDK would send for `client.call_tool(name, arguments)` (the
JSON-RPC body, fastmcp's `progressToken`, the session and protocol headers, the same bearer through the
same `httpx.Auth`) on a pooled connection of its own, and reads the answer the server's SSE stream
carries. The request id comes from the SDK session's own counter, so it can never collide with one of
the SDK's calls on that session. Anything unexpected (no session yet, an HTTP error, an answer it cannot
read) returns None and the caller goes the SDK's way instead; nothing here changes what the server sees.

Every SDK internal this relies on is named in `sdk_session_parts`; tests/test_direct_call.py fails when the
pinned SDK changes one of them, or the body it writes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from .keepalive import client_factory

log = logging.getLogger(__name__)

# As the SDK's transport asks (mcp/client/streamable_http.py `_prepare_headers`).
ACCEPT = "application/json, text/event-stream"


@dataclass
class ToolAnswer:
    """What `read_answer` reads from a tool call's result (the SDK's CallToolResult field names)."""

    content: list[Any]
    structuredContent: Any = None  # noqa: N815 - the MCP field name read_answer looks for
    isError: bool = False  # noqa: N815


@dataclass
class _Text:
    type: str
    text: str | None = None


def sdk_session_parts(client: Any) -> tuple[Any, str, str] | None:
    """(the SDK's ClientSession, the Mcp-Session-Id, the negotiated protocol version), or None.

    Relies on fastmcp's `Client.session` (the SDK's ClientSession, whose private `_request_id` is the
    next JSON-RPC id it will use and is incremented by each request it sends), `Client.transport.
    get_session_id()` and `Client.initialize_result.protocolVersion`."""
    try:
        session = client.session
        session_id = client.transport.get_session_id()
        init = client.initialize_result
    except Exception:  # noqa: BLE001 - not connected, or another fastmcp: the SDK's way then
        return None
    if not session_id or init is None or not isinstance(getattr(session, "_request_id", None), int):
        return None
    return session, str(session_id), str(init.protocolVersion)


class DirectCaller:
    """Tool calls on one fastmcp Client's session, sent directly (see the module's docstring)."""

    def __init__(self, url: str, auth: httpx.Auth | None, read_timeout: float) -> None:
        self.url = url
        self._http = client_factory(auth=auth, timeout=httpx.Timeout(30.0, read=read_timeout))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, client: Any, name: str, arguments: dict[str, Any]) -> ToolAnswer | None:
        parts = sdk_session_parts(client)
        if parts is None:
            return None
        session, session_id, protocol = parts
        request_id = session._request_id
        session._request_id = request_id + 1  # taken from the SDK's counter: no id is ever used twice
        body = request_body(request_id, name, arguments)
        headers = {"accept": ACCEPT, "content-type": "application/json", "mcp-session-id": session_id,
                   "mcp-protocol-version": protocol}
        try:
            response = await self._http.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.debug("direct %s failed (%s); the SDK's way instead", name, exc)
            return None
        if response.status_code != 200:
            return None
        return answer_of(response.headers.get("content-type", ""), response.content, request_id)


def request_body(request_id: int, name: str, arguments: dict[str, Any]) -> bytes:
    """The body the SDK posts for fastmcp's `call_tool(name, arguments)`: its key order, fastmcp's
    `progressToken` (the request id), httpx's compact JSON encoding."""
    message = {"method": "tools/call", "params": {"name": name, "arguments": arguments,
                                                  "_meta": {"progressToken": request_id}},
               "jsonrpc": "2.0", "id": request_id}
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def answer_of(content_type: str, body: bytes, request_id: int) -> ToolAnswer | None:
    """The tool result in a POST's answer (an SSE stream or plain JSON), or None if it is not there."""
    messages: list[Any] = []
    try:
        if content_type.startswith("application/json"):
            messages.append(json.loads(body))
        else:
            for event in body.decode().replace("\r\n", "\n").split("\n\n"):
                data = [line[5:].lstrip(" ") for line in event.split("\n") if line.startswith("data:")]
                if data:
                    messages.append(json.loads("\n".join(data)))
    except ValueError:
        return None
    for message in messages:
        if isinstance(message, dict) and message.get("id") == request_id:
            result = message.get("result")
            if not isinstance(result, dict):
                return None  # a JSON-RPC error: the SDK's way says it properly
            content = [_Text(str(c.get("type")), c.get("text")) for c in result.get("content") or []
                       if isinstance(c, dict)]
            return ToolAnswer(content, result.get("structuredContent"), bool(result.get("isError")))
    return None
