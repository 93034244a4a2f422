"""Reading bus records out of MCP messages, shared by the embedded client and the Style B helper."""

from __future__ import annotations

import json
from typing import Any

from ..protocol import MESSAGE_BUS_LOGGER


def bus_record_of(message: Any) -> tuple[dict[str, Any], str] | None:
    """(data, level) of a `notifications/message` from logger `_message_bus`; None for anything else."""
    inner = getattr(message, "root", message)
    if getattr(inner, "method", None) != "notifications/message":
        return None
    params = getattr(inner, "params", None)
    if params is None:
        return None
    get = params.get if isinstance(params, dict) else lambda k: getattr(params, k, None)
    if get("logger") != MESSAGE_BUS_LOGGER:
        return None
    data = get("data")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if not isinstance(data, dict):
        return None
    return data, str(get("level") or "info")
