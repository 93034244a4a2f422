"""A socket transport whose writes within one turn of the event loop leave as one write.

uvicorn writes each ASGI message to the socket at once: a response head, each body chunk, the last chunk.
On loopback here one write costs 50-80 us of the server's time (the kernel runs the receiver's side of
TCP in it and wakes the receiver on the other vCPU), and every write wakes the client again. The
writes an answer makes one after another (post_answers.py holds a tool call's head, answer event and last
chunk until they can go together), and the bus records queued for one client in the same turn, now
cost one write. A write waits for the end of the current turn of the loop, no longer.
"""

from __future__ import annotations

import asyncio
from typing import Any


class CoalescingTransport:
    """Wraps uvicorn's transport: `write` buffers until the loop's next turn; everything else is the
    transport's own, and `close` sends what is buffered first."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._parts: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._parts:
            self._loop.call_soon(self.flush)
        self._parts.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if not self._parts:
            return
        data = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
        self._parts = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._parts = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._parts))

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause_reading, set_protocol ...
        return getattr(self._transport, name)
