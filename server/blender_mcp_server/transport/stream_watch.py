"""ASGI middleware that tells the directory when a session's standing GET stream opens and closes.

The transport silently drops records for a session without an open GET
stream, so "online" must mean "stream open". Watching the HTTP exchange
itself needs no private attributes of the MCP SDK, and a killed client is
noticed as soon as its socket closes.

It also puts a `StreamWriter` between the SDK and the socket, so the bus can
write its records onto that stream directly (see sse_channel.py).
"""

from __future__ import annotations

from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .sse_channel import StreamWriter


class StreamListener(Protocol):
    """Who is told of each session's GET stream (the bus's directory)."""

    def stream_opened(self, session_id: str, writer: StreamWriter | None = None) -> None: ...

    def stream_closed(self, session_id: str, writer: StreamWriter | None = None) -> None: ...


class StreamWatch:
    def __init__(self, app: ASGIApp, registry: StreamListener, path: str = "/mcp"):
        self.app = app
        self.registry = registry
        self.path = path.rstrip("/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        session_id = next((v.decode() for k, v in scope["headers"] if k == b"mcp-session-id"), None)
        if not session_id:
            await self.app(scope, receive, send)
            return
        writer = StreamWriter(send)
        opened = False

        async def watch_send(message: Message) -> None:
            nonlocal opened
            await writer.send(message)
            if writer.open and not opened:
                opened = True
                self.registry.stream_opened(session_id, writer)

        async def watch_receive() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                writer.disconnected()
            return message

        try:
            await self.app(scope, watch_receive, watch_send)
        finally:
            writer.disconnected()
            if opened:
                self.registry.stream_closed(session_id, writer)
