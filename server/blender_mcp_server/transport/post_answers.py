"""ASGI middleware: a tool call answered at once leaves as one JSON response, in one socket write.

The SDK answers each POST /mcp with an SSE stream: sse-starlette sends the response head at once, then
the JSON-RPC response as one event, then the empty last chunk, and uvicorn writes each to the socket
by itself. On loopback here each write costs the server 50-80 us (it runs the receiver's TCP stack and
wakes the receiver, another vCPU), a fifth of the server's time at 16 calls in flight (py-spy), and each
wakes the client once more for nothing. And the Python SDK's client (fastmcp's) stops reading an SSE
answer at its JSON-RPC response, before the last chunk, so its HTTP pool cannot reuse the
connection: every tool call of a stock client opened a new one.

So for POST /mcp the head waits for the first body chunk, and an event that is a JSON-RPC response
(which the SDK always follows with the end of the stream) waits for that end. When the stream turns out
to be that one answer and nothing else, it goes out as what Streamable HTTP also allows for a POST's
answer, and every MCP client must read: `Content-Type: application/json` with the JSON-RPC message as
the body and a Content-Length, the SDK's other headers kept. A client reads such a body to its end,
so its connection goes back to the pool (measured with stock fastmcp callers at 16 in flight: a quarter
less client CPU per call, a tenth less server CPU). Anything else (progress notifications, requests to
the client, sse-starlette's pings) leaves the answer an SSE stream, sent at once with whatever was held
before it. Nothing waits longer than HOLD_SECONDS: a long tool call still gets its SSE head after a
second, long before any client's read timeout could matter (sse-starlette's first keep-alive comes
after 15 s). At 50 ms, calls at 16 in flight on a loaded machine outlasted the hold and their heads went
out alone again.

One behaviour of the SDK's Python client (mcp 1.30) differs between the two forms: a JSON answer that
lands while the client is closing, between its session's end and its transport's, raises from the
client's `async with` (ClosedResourceError), where an SSE one is only logged. Only a client that leaves
with a call still on the wire meets it; tests/test_replicas.stand_in_blender lets its last call finish.
"""

from __future__ import annotations

import asyncio
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..delivery.encoding import EVENT_HEAD, EVENT_TAIL

HOLD_SECONDS = 1.0
# sse-starlette's framing of the SDK's `JSONRPCResponse | JSONRPCError` (`model_dump_json`: jsonrpc, id, then
# result or error; a request to the client has `method` after its id, a notification no id).
_ANSWER = re.compile(re.escape(EVENT_HEAD)
                     + rb'\{"jsonrpc":"2\.0","id":(?:-?\d+|"(?:[^"\\]|\\.)*"),"(?:result|error)"')


class _Held:
    """The send of one POST's response, holding its head and its answer event for a moment."""

    __slots__ = ("_send", "_lock", "_sse", "_start", "_body", "_timer")

    def __init__(self, send: Send) -> None:
        self._send = send
        self._lock = asyncio.Lock()
        self._sse = False  # this response is an SSE stream (its head was held)
        self._start: Message | None = None
        self._body: bytes | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def __call__(self, message: Message) -> None:
        async with self._lock:
            kind = message["type"]
            if kind == "http.response.start" and not self._sse and _is_sse(message):
                self._sse = True
                self._start = message
                self._timer = asyncio.get_running_loop().call_later(HOLD_SECONDS, self._flush_soon)
                return
            if kind == "http.response.body" and self._sse:
                body, more = message.get("body", b""), message.get("more_body", False)
                if more and self._body is None and _ANSWER.match(body):
                    self._body = body  # the end of the stream follows: they leave together
                    if self._timer is None:
                        self._timer = asyncio.get_running_loop().call_later(HOLD_SECONDS, self._flush_soon)
                    return
                await self._flush(body, more)
                return
            await self._send(message)

    async def _flush(self, body: bytes = b"", more: bool = True) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        start, held = self._start, self._body
        self._start = self._body = None
        if held is not None:
            body = held + body
        if start is not None and not more and (message := _answer_json(body)) is not None:
            await self._send(_as_json(start, len(message)))
            await self._send({"type": "http.response.body", "body": message, "more_body": False})
            return
        if start is not None:
            await self._send(start)
        if body or not more:
            await self._send({"type": "http.response.body", "body": body, "more_body": more})

    def _flush_soon(self) -> None:
        self._timer = None
        asyncio.get_running_loop().create_task(self._flush_late())

    async def _flush_late(self) -> None:
        try:
            async with self._lock:
                if self._start is not None or self._body is not None:
                    await self._flush()
        except Exception:  # noqa: BLE001 - the client went away meanwhile: the response's own task ends it
            pass


def _answer_json(stream: bytes) -> bytes | None:
    """The JSON-RPC message of an SSE stream that is exactly one answer event (the SDK's JSON is on one line:
    compact, newlines escaped), else None."""
    if not (_ANSWER.match(stream) and stream.endswith(EVENT_TAIL) and stream.count(b"\r\n") == 3):
        return None
    return stream[len(EVENT_HEAD):-len(EVENT_TAIL)]


def _as_json(start: Message, length: int) -> Message:
    headers = [(k, v) for k, v in start.get("headers", []) if k not in (b"content-type", b"content-length")]
    return {**start, "headers": [*headers, (b"content-type", b"application/json"),
                                 (b"content-length", str(length).encode())]}


def _is_sse(start: Message) -> bool:
    return start.get("status") == 200 and any(
        k == b"content-type" and v.startswith(b"text/event-stream") for k, v in start.get("headers", []))


class PostAnswers:
    def __init__(self, app: ASGIApp, path: str = "/mcp"):
        self.app = app
        self.path = path.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _Held(send))
