"""Bus records written straight onto a session's standing GET stream.

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
import json
from typing import Any

from starlette.types import Message, Send

_EVENT_HEAD = b"event: message\r\ndata: "
_EVENT_TAIL = b"\r\n\r\n"


def _dumps(value: Any) -> bytes:
    # ensure_ascii keeps the line ASCII: a lone surrogate from a caller's JSON cannot fail the encode,
    # and no client's line splitter can find a line break inside it (JSON escapes CR and LF).
    return json.dumps(value, separators=(",", ":")).encode("ascii")


class StreamGone(Exception):
    """The GET stream has ended (or its client disconnected): the record was not written."""


class SharedRecord:
    """One bus record's JSON, encoded once for all its recipients: only `target_uuid` differs between them.

    `event()` frames it as one SSE event carrying a JSON-RPC `notifications/message`, as the SDK
    would have (a record with a single recipient is simply a SharedRecord shared by nobody).

    Without it a broadcast to 1,000 clients encodes the same payload 1,000 times. Encoded lazily, by
    the first outbox that writes it, so records that every recipient filters away cost nothing.
    """

    __slots__ = ("base", "_rest")

    def __init__(self, base: dict[str, Any]):
        self.base = base
        self._rest: bytes | None = None

    def event(self, level: str, logger: str, target_uuid: str) -> bytes:
        if self._rest is None:
            rest = _dumps({k: v for k, v in self.base.items() if k != "target_uuid"})[1:]  # '"k":v,...}'
            self._rest = rest if rest == b"}" else b"," + rest
        return (_EVENT_HEAD + b'{"jsonrpc":"2.0","method":"notifications/message","params":{"level":'
                + _dumps(level) + b',"logger":' + _dumps(logger) + b',"data":{"target_uuid":' + _dumps(target_uuid)
                + self._rest + b"}}" + _EVENT_TAIL)


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
        """Write one encoded event; raises `StreamGone` if the stream is no longer there to take it."""
        if not self.open:
            raise StreamGone
        async with self._lock:
            if not self.open:
                raise StreamGone
            await self._send({"type": "http.response.body", "body": event, "more_body": True})
