"""The bus wire protocol, bpy-free: imported by the server, the addon and Style B clients."""

from .priorities import (
    DEFAULT_PRIORITY,
    JOB_UPDATE_PRIORITY,
    MCP_DEFAULT_LEVEL,
    VALID_PRIORITY_VALUES,
    Priority,
    PriorityError,
    parse_priority,
    priority_from_level,
)
from .records import (
    FINAL_JOB_STATUSES,
    MESSAGE_BUS_LOGGER,
    BusRecord,
    CancelJob,
    CommandDispatch,
    JobDispatch,
    JobStatus,
    JobUpdate,
    PayloadError,
    Routing,
    new_id,
    parse_payload,
)
from .versions import PROTOCOL_VERSION, RELEASE, ClientVersions

__all__ = [
    "DEFAULT_PRIORITY",
    "PROTOCOL_VERSION",
    "RELEASE",
    "FINAL_JOB_STATUSES",
    "JOB_UPDATE_PRIORITY",
    "MCP_DEFAULT_LEVEL",
    "MESSAGE_BUS_LOGGER",
    "VALID_PRIORITY_VALUES",
    "BusRecord",
    "CancelJob",
    "ClientVersions",
    "CommandDispatch",
    "JobDispatch",
    "JobStatus",
    "JobUpdate",
    "PayloadError",
    "Priority",
    "PriorityError",
    "Routing",
    "new_id",
    "parse_payload",
    "parse_priority",
    "priority_from_level",
]
