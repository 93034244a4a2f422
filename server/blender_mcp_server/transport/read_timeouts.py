"""Time limits on reading a request, for uvicorn's httptools protocol (the one it picks when installed).

uvicorn times only the idle gap after a response (timeout_keep_alive), and stops that timer at the first
byte of the next request: a client that sends its headers a byte at a time, or connects and sends nothing,
holds its connection (and its slot) for as long as it likes; 2,000 of them were held 60 s untouched.
Here the request line and headers must be complete within `header_timeout` of the connection opening or
the request's first byte, and the body may pause at most `body_timeout` between chunks. A connection
that runs out of either is answered 408 (when no response is under way on it) and closed.

Only reading is timed: once a request is read, its response (a Style A call waiting for Blender, the
standing GET stream) takes as long as it takes, and keep-alive idling is still uvicorn's own timer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .write_coalescing import CoalescingTransport

log = logging.getLogger(__name__)


def _timeout_response(what: str, seconds: float) -> bytes:
    text = f"Request Timeout: the request {what} took longer than {seconds:g} s to arrive\n".encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(text), text))


def read_timeout_protocol(header_timeout: float, body_timeout: float) -> type[asyncio.Protocol] | str:
    """A uvicorn `http=` protocol class with the read timeouts, or "auto" when httptools is missing."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # uvicorn falls back to h11, whose reads stay untimed
        log.warning("httptools is not installed: header_timeout and body_timeout are not enforced")
        return "auto"

    class ReadTimeoutProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._read_timer: asyncio.TimerHandle | None = None
            self._reading: str | None = None  # "headers", "body" or None (not reading a request)

        def _arm(self, what: str | None) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None
            self._reading = what
            if what is not None:
                delay = header_timeout if what == "headers" else body_timeout
                self._read_timer = self.loop.call_later(delay, self._read_timed_out)

        def _in_flight(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def _read_timed_out(self) -> None:
            self._read_timer = None
            if self.transport.is_closing():
                return
            what = self._reading
            # Not the client's stall: reading is paused while the app has not taken the body so far, or a
            # pipelined request waits for the response before it.
            if self.flow.read_paused or (what == "headers" and self._in_flight()):
                self._arm(what)
                return
            cycle = self.cycle
            if what == "body" and cycle is not None:
                # The app may be waiting in receive(): it hears a disconnect, and nothing it sends goes out.
                cycle.disconnected = True
                cycle.message_event.set()
            if what == "headers" or (cycle is not None and not cycle.response_started):
                self.transport.write(_timeout_response("headers" if what == "headers" else "body",
                                                       header_timeout if what == "headers" else body_timeout))
            self._reading = None
            self.transport.close()

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            # The writes of one turn of the loop leave together (write_coalescing.py says why).
            super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
            self._arm("headers")  # a connection that never sends a byte is cut too

        def connection_lost(self, exc: Exception | None) -> None:
            self._arm(None)
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            # uvicorn stops its keep-alive timer at any byte, and the parser skips blank lines before a
            # request without beginning one: time those bytes as headers too.
            if self._reading is None and not self._in_flight():
                self._arm("headers")
            super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._reading != "headers":  # the timer from connection_made keeps running for the first request
                self._arm("headers")

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            if self.parser.should_upgrade() and self._should_upgrade():
                self._arm(None)  # a WebSocket takes the connection over; these timers are not for it
            else:
                self._arm("body")  # stopped again by on_message_complete, at once for a request without a body

        def on_body(self, body: bytes) -> None:
            super().on_body(body)
            if self._reading == "body":
                self._arm("body")

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._arm(None)

    return ReadTimeoutProtocol
