"""The Streamable HTTP delivery channel: bus records written straight onto a session's standing GET stream.

Why not `session.send_log_message`: the MCP SDK carries a server notification
through three memory-object streams (session -> message router -> GET stream
writer -> sse-starlette) before it reaches the socket. In the fan-out
benchmark that was ~110 of the ~190 us of server CPU per delivered record,
and it capped the bus near 5,000 deliveries/s on this machine.

The wire format of that stream is public (Streamable HTTP: an SSE event
`message` whose `data` is one JSON-RPC message), so the bus writes its
`notifications/message` records itself. Everything else on the stream
(responses, pings, list_changed, sse-starlette's keep-alives) still goes the
SDK's way; one lock around the ASGI `send` keeps each SSE event whole.

`StreamWatch` makes one `StreamWriter` per GET stream and hands the SDK its
`send`; the registry gives it to the client's outbox.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Message, Send

from blender_mcp_addon.protocol import MESSAGE_BUS_LOGGER, Priority

from ..delivery.channel import ChannelGone
from ..delivery.encoding import SharedRecord
from .sdk_shims import session_log_level


class StreamWriter:
    """One open GET stream: the SDK's `send` (locked) and a direct `write` for bus records."""

    def __init__(self, send: Send):
        self._send = send
        self._lock = asyncio.Lock()
        self.open = False  # from the 200 response start until the last body chunk or a disconnect

    async def send(self, message: Message) -> None:
        """The `send` the SDK's SSE response gets: the same socket, one event at a time."""
        async with self._lock:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.open = False
            await self._send(message)
            if message["type"] == "http.response.start" and message["status"] == 200:
                self.open = True

    def disconnected(self) -> None:
        """The client went away: stop writing now, before the SDK's response notices and ends."""
        self.open = False

    async def write(self, event: bytes) -> None:
        """Write one encoded event; raises `ChannelGone` if the stream is no longer there to take it."""
        if not self.open:
            raise ChannelGone
        async with self._lock:
            if not self.open:
                raise ChannelGone
            await self._send({"type": "http.response.body", "body": event, "more_body": True})


class GetStreamChannel:
    """A session's records onto its open GET stream, through `writer` (see the module's docstring)."""

    def __init__(self, session: Any, writer: StreamWriter):
        self.session = session
        self.writer = writer

    def wants(self, level: Priority) -> bool:
        return level <= session_log_level(self.session)

    async def write(self, record: SharedRecord, level: Priority, target_uuid: str) -> None:
        await self.writer.write(record.event(level.level, MESSAGE_BUS_LOGGER, target_uuid))


class SessionChannel:
    """The SDK's own way, for a session with no HTTP stream to write on (an in-memory transport)."""

    def __init__(self, session: Any):
        self.session = session

    def wants(self, level: Priority) -> bool:
        return level <= session_log_level(self.session)

    async def write(self, record: SharedRecord, level: Priority, target_uuid: str) -> None:
        await self.session.send_log_message(level.level, dict(record.base, target_uuid=target_uuid),
                                            logger=MESSAGE_BUS_LOGGER)


def channel_for(session: Any, writer: StreamWriter | None) -> GetStreamChannel | SessionChannel:
    return SessionChannel(session) if writer is None else GetStreamChannel(session, writer)
