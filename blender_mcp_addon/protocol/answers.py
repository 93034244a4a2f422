"""What the bus tools and the dispatch tools answer: status values, error codes, shapes, and how to read them.

One set for the server that writes the answers and for every client that reads
them (the extension, the tests, the benchmarks), so a code cannot drift
between the two sides.

Two shapes:

- A bus tool (`blender_register_client`, `blender_send_message`, ...) answers
  with its own success status (`registered`, `sent`, `queued`, ...) or, when it
  refuses, with `{"status": "error", "error": <ErrorCode>, "message": <text>}`
  plus whatever helps (`limit`, `retry_after`, `routing`, ...).
- A dispatch tool (`blender_<command>`) always answers with every key of
  `DISPATCH_KEYS`: `status` (a `DispatchStatus`), `command`, `target_uuid`,
  `job_id`, `result`, `error`, plus extras such as `hint` or `candidates`.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypedDict

ERROR = "error"


class ErrorCode:
    """The `error` of a refused bus tool call."""

    INVALID_ARGUMENTS = "invalid_arguments"
    INVALID_PAYLOAD = "invalid_payload"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    INVALID_PRIORITY = "invalid_priority"
    RATE_LIMITED = "rate_limited"
    OUTBOX_FULL = "outbox_full"
    PARKED_FULL = "parked_full"
    UNKNOWN_TARGET = "unknown_target"
    UNKNOWN_CLIENT = "unknown_client"
    UNKNOWN_JOB = "unknown_job"
    NO_SESSION = "no_session"
    TOO_MANY_CLIENTS = "too_many_clients"
    INCOMPATIBLE_VERSION = "incompatible_version"
    BACKEND_UNAVAILABLE = "backend_unavailable"  # a replica's Redis or PostgreSQL is out of reach: retry
    TOOL_ERROR = "tool_error"  # not the bus's: the tool call itself failed (schema, transport), see read_answer


# Refusals of blender_register_client that retrying cannot mend: the extension stops instead of reconnecting.
PERMANENT_REGISTRATION_ERRORS = frozenset({ErrorCode.INVALID_ARGUMENTS, ErrorCode.TOO_MANY_CLIENTS,
                                           ErrorCode.INCOMPATIBLE_VERSION})

SendStatus = Literal["sent", "queued", "partial", "no_recipients"]
DeliveryState = Literal["sent", "queued", "filtered", "outbox_full", "gone"]  # gone: its replica went away  # per recipient, in a send's `delivery`
JobUpdateStatus = Literal["delivered", "sent", "queued", "partial", "no_recipients", "dropped"]
CancelStatus = Literal["cancel_requested", "cancelled", "completed", "error"]
HeartbeatStatus = Literal["ok", "replaced"]

DispatchStatus = Literal[
    "completed", "error", "cancelled",  # the job's own outcome
    "timeout", "target_lost",  # the job was sent, its answer did not come
    "no_client", "ambiguous_target", "unknown_target", "target_offline",  # no target to send it to
    "rate_limited", "invalid_arguments",  # refused before it was sent
    "backend_unavailable",  # a replica could not reach its Redis or PostgreSQL
]
DISPATCH_KEYS = ("status", "command", "target_uuid", "job_id", "result", "error")
# A timed-out dispatch's `cancel`: what became of the job it cancelled.
CancelOutcome = Literal["done", "requested", "not_possible", "unconfirmed"]


class BusError(TypedDict):
    status: Literal["error"]
    error: str
    message: str


class DispatchAnswer(TypedDict):
    status: DispatchStatus
    command: str
    target_uuid: str | None
    job_id: str | None
    result: Any
    error: str


def bus_error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """A bus tool's refusal."""
    return {"status": ERROR, "error": code, "message": message, **extra}


def is_error(answer: dict[str, Any], code: str | None = None) -> bool:
    """Whether a bus answer is a refusal (of `code`, when given)."""
    return answer.get("status") == ERROR and (code is None or answer.get("error") == code)


def dispatch_answer(status: str, command: str, target: str | None = None, job_id: str | None = None,
                    result: Any = None, error: str = "", **extra: Any) -> dict[str, Any]:
    """A dispatch tool's answer, with every key of DISPATCH_KEYS whatever the outcome."""
    return {"status": status, "command": command, "target_uuid": target, "job_id": job_id, "result": result,
            "error": error, **extra}


def read_answer(result: Any) -> dict[str, Any]:
    """The JSON answer in a tool call's result (fastmcp's CallToolResult or the MCP SDK's).

    The answer is the first text content, parsed; a result with none falls back to its structured
    content. A result that is no JSON object (a tool error such as a schema refusal, which the SDK
    reports as text) reads as a `tool_error` refusal carrying that text, never as an exception.
    """
    content = getattr(result, "content", None) or []
    text = next((getattr(c, "text", None) for c in content if getattr(c, "type", None) == "text"), None)
    if text is None:
        structured = getattr(result, "structured_content", None) or getattr(result, "structuredContent", None)
        if isinstance(structured, dict):
            return structured
        return bus_error(ErrorCode.TOOL_ERROR, "the tool answered with no text")
    try:
        answer = json.loads(text)
    except ValueError:
        return bus_error(ErrorCode.TOOL_ERROR, text)
    if not isinstance(answer, dict):
        return bus_error(ErrorCode.TOOL_ERROR, text)
    if getattr(result, "is_error", None) or getattr(result, "isError", None):
        return answer if is_error(answer) else bus_error(ErrorCode.TOOL_ERROR, text)
    return answer
