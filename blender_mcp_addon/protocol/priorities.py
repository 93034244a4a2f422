"""The eight RFC 5424 priorities of the bus (spec: priority-levels).

A priority travels twice on the wire: as the MCP log level string of the
`notifications/message` record (what MCP clients filter on) and as the integer
`priority` inside the record's data (what the addon's heap orders on).
0 is the most urgent, 7 the least.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class Priority(IntEnum):
    EMERGENCY = 0
    ALERT = 1
    CRITICAL = 2
    ERROR = 3
    WARNING = 4
    NOTICE = 5
    INFO = 6
    DEBUG = 7

    @property
    def level(self) -> str:
        """The MCP log level string (lowercase) for this priority."""
        return self.name.lower()


DEFAULT_PRIORITY = Priority.INFO
"""What `blender_send_message` uses when the caller names none."""

JOB_UPDATE_PRIORITY = Priority.NOTICE
"""What server-routed `blender_job_update` replies use."""

MCP_DEFAULT_LEVEL = Priority.WARNING
"""The level an MCP session is at until it calls `logging/setLevel` (spec: the set_logging_level gotcha)."""

VALID_PRIORITY_VALUES: tuple[str, ...] = tuple(p.level for p in Priority)


class PriorityError(ValueError):
    """Raised for a priority that is none of the level names, enum names or 0-7."""


def parse_priority(value: Any) -> Priority:
    """Accept the lowercase MCP level name, the enum name, or an int 0-7.

    Anything else raises `PriorityError` with the valid values listed, so the
    caller can answer with a structured error instead of a traceback.
    """
    if isinstance(value, Priority):
        return value
    if isinstance(value, bool):  # bool is an int subclass; True is not a priority
        raise PriorityError(_message(value))
    if isinstance(value, int):
        if 0 <= value <= 7:
            return Priority(value)
        raise PriorityError(_message(value))
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return parse_priority(int(text))
        try:
            return Priority[text.upper()]
        except KeyError:
            pass
    raise PriorityError(_message(value))


def priority_from_level(level: str | None, fallback: Any = None) -> Priority:
    """Read a record's priority: the level string first, the data's int second (spec)."""
    if level:
        try:
            return parse_priority(level)
        except PriorityError:
            pass
    if fallback is not None:
        try:
            return parse_priority(fallback)
        except PriorityError:
            pass
    return DEFAULT_PRIORITY


def _message(value: Any) -> str:
    return (
        f"unknown priority {value!r}: use one of {', '.join(VALID_PRIORITY_VALUES)} "
        "(or the enum name, or an int 0-7, 0 = most urgent)"
    )
