"""ASGI middleware: a tool call's SSE answer leaves in two writes instead of three.

The SDK answers each POST /mcp with an SSE stream: sse-starlette sends the response head at once, then
the JSON-RPC response as one event, then the empty last chunk, and uvicorn writes each to the socket
by itself. On loopback here each write costs the server 50-80 us (it runs the receiver's TCP stack and
wakes the receiver, another vCPU), a fifth of the server's time at 16 calls in flight (py-spy), and each
wakes the client once more for nothing.

So for POST /mcp the head waits for the first body chunk, and an event that is a JSON-RPC response
(which the SDK always follows with the end of the stream) waits for that end: the head goes out, then
the event and the last chunk in one write. Anything else (progress notifications, requests to the
client, sse-starlette's pings) goes out at once, with whatever was held before it. Nothing waits longer
than HOLD_SECONDS: a long tool call still gets its head after a second, long before any client's read
timeout could matter (sse-starlette's first keep-alive comes after 15 s). At 50 ms, calls at 16 in flight
on a loaded machine outlasted the hold and their heads went out alone again.
"""

from __future__ import annotations

import asyncio
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HOLD_SECONDS = 1.0
# sse-starlette's framing of the SDK's `JSONRPCResponse | JSONRPCError` (`model_dump_json`: jsonrpc, id, then
# result or error; a request to the client has `method` after its id, a notification no id).
_ANSWER = re.compile(rb'event: message\r\ndata: \{"jsonrpc":"2\.0","id":(?:-?\d+|"(?:[^"\\]|\\.)*"),"(?:result|error)"')


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
        if start is not None:
            await self._send(start)
        if held is not None:
            body = held + body
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
