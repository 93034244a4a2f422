"""A bus record's wire bytes, encoded once for all its recipients."""

from __future__ import annotations

import json
from typing import Any

# How the SDK (sse-starlette) frames one JSON-RPC message as an SSE event: the JSON is compact, on one line.
EVENT_HEAD = b"event: message\r\ndata: "
EVENT_TAIL = b"\r\n\r\n"


def _dumps(value: Any) -> bytes:
    # ensure_ascii keeps the line ASCII: a lone surrogate from a caller's JSON cannot fail the encode,
    # and no client's line splitter can find a line break inside it (JSON escapes CR and LF).
    return json.dumps(value, separators=(",", ":")).encode("ascii")


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
        return (EVENT_HEAD + b'{"jsonrpc":"2.0","method":"notifications/message","params":{"level":'
                + _dumps(level) + b',"logger":' + _dumps(logger) + b',"data":{"target_uuid":' + _dumps(target_uuid)
                + self._rest + b"}}" + EVENT_TAIL)
