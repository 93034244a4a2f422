"""The bus's checks of what callers send: ids, payload size and depth, and catalog commands' params.

Each check answers with the structured error to return (or None), never an exception.
"""

from __future__ import annotations

import json
from typing import Any

from blender_mcp_addon.protocol import CommandDispatch, PayloadError, parse_payload
from blender_mcp_addon.protocol.answers import ErrorCode, bus_error
from blender_mcp_addon.protocol.catalog import CATALOG

MAX_ID = 200
MAX_CAPABILITIES = 64  # per client, each a short id like the other names


def _depth_over(value: Any, limit: int) -> bool:
    """Whether JSON `value` nests deeper than `limit` (walked without recursion: the point is deep input)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def bad_id(value: Any, name: str, required: bool = True) -> dict[str, Any] | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID or not value.isprintable():
        return bus_error(ErrorCode.INVALID_ARGUMENTS, f"{name} must be a non-empty printable string of at most {MAX_ID} characters")
    return None


def measure(payload: Any, *, max_depth: int, max_bytes: int) -> tuple[int, dict[str, Any] | None]:
    """(the payload's JSON size in bytes, the error if it is too deep or too large): for payloads the server
    just dumped from a validated model (a job update, a dispatch), which parsing again would only repeat
    on every job. The size rides on to `deliver`, so the payload is encoded once."""
    if not isinstance(payload, dict):
        return 0, bus_error(ErrorCode.INVALID_PAYLOAD, "payload must be a JSON object")
    if _depth_over(payload, max_depth):
        # fastmcp clients and the extension refuse records this deep ("recursion limit exceeded"): a
        # record no one can read must not be reported sent.
        return 0, bus_error(ErrorCode.INVALID_PAYLOAD, f"payload nests deeper than {max_depth} levels",
                            limit=max_depth)
    try:
        size = len(json.dumps(payload, separators=(",", ":")).encode())
    except (TypeError, ValueError) as exc:
        return 0, bus_error(ErrorCode.INVALID_PAYLOAD, f"payload is not JSON-serialisable: {exc}")
    if size > max_bytes:
        return size, bus_error(ErrorCode.PAYLOAD_TOO_LARGE,
                               f"payload is {size} bytes; the limit is {max_bytes} bytes. "
                               "Send large data (images, files) by reference or in chunks.",
                               limit=max_bytes, size=size)
    return size, None


def check_payload(payload: Any, *, max_depth: int, max_bytes: int) -> tuple[int, dict[str, Any] | None]:
    """A caller's payload: a JSON object within the size cap that parses as its message_type, and a
    `command_dispatch` of a catalog command whose params the catalog accepts (as Style A checks
    them). Returns (its size in bytes, the error to answer or None)."""
    size, bad = measure(payload, max_depth=max_depth, max_bytes=max_bytes)
    if bad:
        return size, bad
    try:
        parsed = parse_payload(payload)
    except PayloadError as exc:
        return size, bus_error(ErrorCode.INVALID_PAYLOAD, str(exc))
    if isinstance(parsed, CommandDispatch) and (spec := CATALOG.get(parsed.command)) is not None:
        try:
            spec.validate(parsed.params)
        except ValueError as exc:
            return size, bus_error(ErrorCode.INVALID_ARGUMENTS, f"params of {parsed.command}: {exc}",
                                   command=parsed.command)
    return size, None
