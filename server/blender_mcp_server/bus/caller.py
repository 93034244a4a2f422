"""Who called: the authenticated user of one tool call and the MCP session it came on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Caller:
    """The authenticated user of one tool call, and the MCP session it came on."""

    user_id: str
    username: str
    session: Any = None
    session_id: str | None = None
