"""The bus tools (spec: bus tools), thin wrappers that hand the authenticated caller to `Bus`."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastmcp import Context, FastMCP
from pydantic import BaseModel, ConfigDict, Field

from ..bus.caller import Caller
from ..bus.service import Bus
from .context import caller_of

MAX_UPDATES_PER_CALL = 256


class JobUpdateArgs(BaseModel):
    """One update in blender_job_updates: the same fields as blender_job_update's arguments."""

    model_config = ConfigDict(extra="forbid")
    job_id: str
    status: Annotated[str, Field(description="queued|running|completed|error|cancelled")]
    result: Any = None
    error: str = ""
    progress: Annotated[float | None, Field(description="0.0-1.0")] = None
    message: str | None = None
    details: dict[str, Any] | None = None
    from_uuid: str | None = None


JobUpdateList = Annotated[list[JobUpdateArgs], Field(max_length=MAX_UPDATES_PER_CALL)]


async def apply_job_updates(bus: Bus, caller: Caller, updates: list[JobUpdateArgs]) -> dict[str, Any]:
    """blender_job_updates' answer: each update applied in order, one result each (also the fast path's,
    fast_calls.py)."""
    results = [await bus.job_update(caller, job_id=u.job_id, status=u.status, result=u.result, error_text=u.error,
                                    progress=u.progress, message=u.message, details=u.details, from_uuid=u.from_uuid)
               for u in updates]
    return {"status": "ok", "results": results}


def add_bus_tools(mcp: FastMCP, bus: Bus) -> None:
    # No output schema: the answers are still structured content (and `.data` on fastmcp clients), but
    # neither the SDK's server nor its client re-checks the JSON Schema itself on every call, which was
    # about a tenth of the server's time per tool call.
    tool = functools.partial(mcp.tool, output_schema=None)

    @tool(name="blender_register_client")
    async def register_client(
        client_uuid: str,
        client_type: Annotated[str, Field(description='"blender", "llm", or your own kind')],
        ctx: Context,
        is_persistent: bool = False,
        capabilities: list[str] | None = None,
        group_id: str | None = None,
        label: str | None = None,
        versions: Annotated[dict[str, Any] | None, Field(
            description='what the client runs: {"addon": "0.1.0", "blender": "5.2.2", "python": "3.14.1", '
                        '"protocol": 1}; a protocol the server cannot serve is refused as incompatible_version'
        )] = None,
    ) -> dict[str, Any]:
        """Join your bus as `client_uuid`, bound to this MCP session.

        Call set_logging_level("debug") first, or records below "warning" (dispatches, job updates)
        will not reach you. Persistent clients stay listed (offline) when their session ends and
        receive what was queued for them when they register again; ephemeral ones disappear.
        The answer's `server` says the server's version and the bus protocols it serves.
        """
        return await bus.register(caller_of(ctx), client_uuid=client_uuid, client_type=client_type,
                                  is_persistent=is_persistent, capabilities=capabilities, group_id=group_id, label=label,
                            versions=versions)

    @tool(name="blender_unregister_client")
    async def unregister_client(client_uuid: str, ctx: Context) -> dict[str, Any]:
        """Leave your bus."""
        return await bus.unregister(caller_of(ctx), client_uuid)

    @tool(name="blender_list_available_clients")
    async def list_available_clients(ctx: Context) -> dict[str, Any]:
        """The clients on your bus: {"persistent": [...], "ephemeral": [...]}, each with uuid, client_type,
        group_id, capabilities, label, online, last_seen and versions (what it said it runs)."""
        return await bus.list_clients(caller_of(ctx))

    @tool(name="blender_send_message")
    async def send_message(
        payload: dict[str, Any],
        ctx: Context,
        from_uuid: str | None = None,
        target_uuid: str | None = None,
        group_id: str | None = None,
        client_type: str | None = None,
        priority: Annotated[str | int, Field(description="emergency|alert|critical|error|warning|notice|info|debug or 0-7")] = "info",
    ) -> dict[str, Any]:
        """Send a message on your bus. Routing: target_uuid > group_id > client_type > broadcast
        (the first set wins; broadcast alone excludes from_uuid). A payload with a job_id makes
        from_uuid that job's originator, so blender_job_update replies go back to it."""
        return await bus.send(caller_of(ctx), payload=payload, from_uuid=from_uuid, target_uuid=target_uuid,
                        group_id=group_id, client_type=client_type, priority=priority)

    @tool(name="blender_job_update")
    async def job_update(
        job_id: str,
        status: Annotated[str, Field(description="queued|running|completed|error|cancelled")],
        ctx: Context,
        result: Any = None,
        error: str = "",
        progress: Annotated[float | None, Field(description="0.0-1.0")] = None,
        message: str | None = None,
        details: dict[str, Any] | None = None,
        from_uuid: str | None = None,
    ) -> dict[str, Any]:
        """Report a job's state; routed direct to the job's originator at "notice"
        (broadcast on your bus if the server never knew the job)."""
        return await bus.job_update(caller_of(ctx), job_id=job_id, status=status, result=result, error_text=error,
                              progress=progress, message=message, details=details,
                              from_uuid=from_uuid)

    @tool(name="blender_job_updates")
    async def job_updates(
        updates: JobUpdateList,
        ctx: Context,
    ) -> dict[str, Any]:
        """Several blender_job_update calls in one, applied in order; answers one result per update.

        What the Blender extension uses: one tool call per job is most of a dispatch's cost on a busy
        worker, so it sends whatever replies have piled up while the last call was on the wire."""
        return await apply_job_updates(bus, caller_of(ctx), updates)

    @tool(name="blender_cancel_job")
    async def cancel_job(job_id: str, ctx: Context) -> dict[str, Any]:
        """Cancel a job on your bus: a queued one is dropped from the target's queue, a running one is
        flagged and reported as cancelled when it returns."""
        return await bus.cancel(caller_of(ctx), job_id)

    @tool(name="blender_heartbeat")
    async def heartbeat(client_uuid: str, ctx: Context) -> dict[str, Any]:
        """Tell the bus this client is alive; answers whether the server sees its event stream open."""
        return bus.heartbeat(caller_of(ctx), client_uuid)
