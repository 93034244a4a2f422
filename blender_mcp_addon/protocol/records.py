"""Pydantic models of everything the bus puts on the wire.

One `notifications/message` per target carries a `BusRecord` as its `data`,
under logger `_message_bus` (spec: why-mcp-logging-as-a-bus). The record's
`payload` is free-form for the bus; the three payloads the product itself
speaks (`job_dispatch`, `command_dispatch`, `job_update`) plus `cancel_job`
have models here so the server and the addon agree on one shape.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MESSAGE_BUS_LOGGER = "_message_bus"

RoutingType = Literal["direct", "group", "type_filter", "broadcast"]
JobStatus = Literal["queued", "running", "completed", "error", "cancelled"]
FINAL_JOB_STATUSES: frozenset[str] = frozenset({"completed", "error", "cancelled"})


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


class Routing(BaseModel):
    """`data.routing`: which mode chose the recipients, and by which field."""

    model_config = ConfigDict(extra="ignore")

    type: RoutingType
    target_uuid: str | None = None
    group_id: str | None = None
    client_type: str | None = None

    def wire(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class BusRecord(BaseModel):
    """`data` of one bus notification, stamped with the one target it is for."""

    model_config = ConfigDict(extra="ignore")

    user_id: str
    from_uuid: str | None = None
    target_uuid: str | None = None
    routing: Routing
    payload: dict[str, Any] = Field(default_factory=dict)
    job_id: str | None = None
    message_id: str = Field(default_factory=lambda: new_id("msg"))
    priority: int = 6
    timestamp: float = Field(default_factory=time.time)

    def wire(self) -> dict[str, Any]:
        data = self.model_dump()
        data["routing"] = self.routing.wire()
        return data


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow")


class JobDispatch(_Payload):
    """Run a Python script in Blender (spec Style B)."""

    message_type: Literal["job_dispatch"] = "job_dispatch"
    job_id: str = Field(min_length=1, max_length=200)
    script: str


class CommandDispatch(_Payload):
    """Run one named command of the addon's registry with its params (Style A)."""

    message_type: Literal["command_dispatch"] = "command_dispatch"
    job_id: str = Field(min_length=1, max_length=200)
    command: str = Field(min_length=1, max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)


class CancelJob(_Payload):
    """Drop a queued job from the target's heap, or flag a running one."""

    message_type: Literal["cancel_job"] = "cancel_job"
    job_id: str = Field(min_length=1, max_length=200)


class JobUpdate(_Payload):
    """A job's state change, routed back to the job's originator at `notice`.

    Carries both `kind` (what the spec's JobWaiter checks) and `message_type`
    (what every other payload is keyed on).
    """

    kind: Literal["job_update"] = "job_update"
    message_type: Literal["job_update"] = "job_update"
    job_id: str = Field(min_length=1, max_length=200)
    status: JobStatus
    result: Any = None
    error: str = ""
    progress: float | None = Field(default=None, ge=0.0, le=1.0)
    message: str | None = None
    details: dict[str, Any] | None = None
    command: str | None = None
    from_uuid: str | None = None


PAYLOAD_MODELS: dict[str, type[_Payload]] = {
    "job_dispatch": JobDispatch,
    "command_dispatch": CommandDispatch,
    "cancel_job": CancelJob,
    "job_update": JobUpdate,
}


class PayloadError(ValueError):
    """A payload that names one of the product's message types but does not fit its model."""


def parse_payload(payload: dict[str, Any]) -> _Payload | None:
    """Validate a payload of a known type; return None for free-form payloads.

    The bus carries any JSON object, so an unknown `message_type` is not an
    error; a known one that is malformed is (the receiver could not act on it).
    """
    kind = payload.get("message_type") or payload.get("kind")
    model = PAYLOAD_MODELS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return None
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}" for err in exc.errors()
        )
        raise PayloadError(f"malformed {kind} payload: {problems}") from None
