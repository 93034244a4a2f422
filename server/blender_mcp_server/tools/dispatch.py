"""Style A: run one addon command on one Blender and wait for its answer (spec: write-your-own-llm-client).

The caller needs no registration and no job ids. The target is the named
`target_uuid`, else the one online Blender of the caller's bus. The job is
recorded in the store, the `command_dispatch` goes through the target's
outbox like any bus record, and the addon's `blender_job_update` comes back
to the waiting call in-process. Every outcome is a dict in the spec's shape.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec

from blender_mcp_addon.protocol import DEFAULT_PRIORITY, CommandDispatch, Routing, new_id
from blender_mcp_addon.protocol.answers import dispatch_answer

from ..bus.caller import Caller
from ..bus.directory import ClientEntry
from ..bus.service import Bus
from ..storage.records import ClientInfo, StoreUnavailable
from .backend_guard import unavailable_answer

TARGET_LOST_AFTER = 3.0  # seconds a target may be offline mid-job before the caller is told
ProgressFn = Callable[[float, str | None], Awaitable[None]]

HINT_NO_CLIENT = ("No Blender client connected to your bus. Open Blender, enable the BlenderMCP addon, "
                  "click Login then Connect.")
HINT_AMBIGUOUS = "Multiple Blender clients connected; pass target_uuid=<one of candidates> to disambiguate."

_P = ParamSpec("_P")
_DispatchFn = Callable[Concatenate[Bus, Caller, str, _P], Awaitable[dict[str, Any]]]


def _measured(fn: _DispatchFn[_P]) -> _DispatchFn[_P]:
    """Give the bus's metrics (when it has them) every answer and how long it took; a wrapper, so every
    return of `dispatch`, now or added later, is counted."""
    @functools.wraps(fn)
    async def measured(bus: Bus, caller: Caller, command: str, *args: _P.args, **kwargs: _P.kwargs) -> dict[str, Any]:
        started = time.perf_counter()
        answer = await fn(bus, caller, command, *args, **kwargs)
        if bus.metrics is not None:
            bus.metrics.dispatched(command, answer, time.perf_counter() - started)
        return answer
    return measured


async def choose_target(bus: Bus, caller: Caller, command: str, target_uuid: str | None) -> ClientInfo | dict[str, Any]:
    if target_uuid:
        entry = await bus.find(caller.user_id, target_uuid)
        if entry is None:
            return dispatch_answer("unknown_target", command, target_uuid, error=f"no client {target_uuid!r} on your bus",
                                   hint="call blender_list_available_clients to see the uuids on your bus")
        if not entry.online:
            return dispatch_answer("target_offline", command, target_uuid, error=f"{target_uuid} is offline",
                                   last_heartbeat=entry.last_seen, seconds_since_heartbeat=round(time.time() - entry.last_seen, 1),
                                   hint="open that Blender and connect it, or pick another target")
        return entry
    candidates = [c for c in await bus.everyone(caller.user_id) if c.client_type == "blender" and c.online]
    if not candidates:
        return dispatch_answer("no_client", command, error="no Blender client is connected to your bus",
                               hint=HINT_NO_CLIENT)
    if len(candidates) > 1:
        return dispatch_answer("ambiguous_target", command, error=f"{len(candidates)} Blender clients are connected",
                               candidates=sorted(c.uuid for c in candidates), hint=HINT_AMBIGUOUS)
    return candidates[0]


@_measured
async def dispatch(bus: Bus, caller: Caller, command: str, params: dict[str, Any], *, target_uuid: str | None,
                   timeout: float, progress: ProgressFn | None = None) -> dict[str, Any]:
    try:
        return await _dispatch(bus, caller, command, params, target_uuid=target_uuid, timeout=timeout,
                               progress=progress)
    except StoreUnavailable as exc:
        return dispatch_answer("backend_unavailable", command, target_uuid,
                               error=unavailable_answer(exc)["message"], retry_after=1)


async def _dispatch(bus: Bus, caller: Caller, command: str, params: dict[str, Any], *, target_uuid: str | None,
                    timeout: float, progress: ProgressFn | None) -> dict[str, Any]:
    if bus.shutting_down:
        return dispatch_answer("error", command, target_uuid, error="the bus server is shutting down; try again shortly")
    chosen = await choose_target(bus, caller, command, target_uuid)
    if isinstance(chosen, dict):
        return chosen
    entry = chosen
    job_id = new_id("j")
    payload = CommandDispatch(job_id=job_id, command=command, params=params).model_dump()
    size, bad = bus.measure(payload)
    if bad:
        return dispatch_answer("invalid_arguments", command, entry.uuid, error=bad["message"])
    updates = bus.jobs.wait_for(caller.user_id, job_id)
    remote = not isinstance(entry, ClientEntry)  # its Blender is on another replica: the update comes through it
    try:
        if bad := await _rate_and_record(bus, caller, entry, command, job_id, remote, timeout):
            return dispatch_answer("rate_limited", command, entry.uuid, error=bad["message"])
        sent = await bus.deliver(caller.user_id, [entry], Routing(type="direct", target_uuid=entry.uuid), payload,
                           DEFAULT_PRIORITY, from_uuid=f"dispatch:{caller.session_id or 'stateless'}", job_id=job_id,
                           size=size)
        if sent["status"] == "error":
            return dispatch_answer("error", command, entry.uuid, job_id, error=sent["message"])
        return await _wait(bus, caller, entry, command, job_id, updates, timeout, progress)
    finally:
        bus.jobs.stop_waiting(caller.user_id, job_id)
        if remote:
            bus.cluster.stop_expecting(caller.user_id, job_id)


async def _rate_and_record(bus: Bus, caller: Caller, entry: ClientInfo, command: str, job_id: str, remote: bool,
                           timeout: float) -> dict[str, Any] | None:
    """Count the call against the user's rate and record its job (and, for a Blender on another replica,
    where the call waits); the rate's refusal, if any. One server does them in turn; replicas send all
    three to their stores at once, and take the job back when the rate refused the call."""
    record = bus.jobs.record(caller.user_id, job_id, originator=None, target=entry.uuid, command=command)
    if not bus.cluster.shared:
        if bad := await bus.check_rate(caller):
            record.close()
            return bad
        await record
        return None
    waits = [bus.cluster.expect_update(caller.user_id, job_id, timeout + 2 * bus.settings.cancel_ack_timeout + 30)
             ] if remote else []
    bad, *_ = await asyncio.gather(bus.check_rate(caller), record, *waits)
    if bad:
        await bus.jobs.forget(caller.user_id, job_id)
    return bad


async def _wait(bus: Bus, caller: Caller, entry: ClientInfo, command: str, job_id: str,
                updates: asyncio.Queue[dict[str, Any]], timeout: float, progress: ProgressFn | None) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return await _timed_out(bus, caller, entry, command, job_id, updates, timeout)
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for wraps the get in a task of its own per wait
            async with asyncio.timeout(min(remaining, 0.5)):
                update = await updates.get()
        except TimeoutError:
            try:
                current = await bus.find(caller.user_id, entry.uuid)
            except StoreUnavailable:
                continue  # the job is out; whether its target still lives can wait for the backend
            if current is None or (not current.online and current.offline_since
                                   and time.time() - current.offline_since > TARGET_LOST_AFTER):
                await bus.jobs.set_status(caller.user_id, job_id, "error")
                return dispatch_answer("target_lost", command, entry.uuid, job_id,
                                       error=f"{entry.uuid} went offline while running the job "
                                             f"({current.offline_reason if current else 'unregistered'})",
                                       last_heartbeat=entry.last_seen)
            continue
        status = update.get("status")
        if status in ("queued", "running"):
            if progress is not None and (update.get("progress") is not None or update.get("message")):
                await progress(float(update.get("progress") or 0.0), update.get("message"))
            continue
        return _answer(command, entry, job_id, update)


async def _timed_out(bus: Bus, caller: Caller, entry: ClientInfo, command: str, job_id: str,
                     updates: asyncio.Queue[dict[str, Any]], timeout: float) -> dict[str, Any]:
    """Cancel the job and say what really happened to it.

    The target's client thread answers a cancel at once, even while its main thread is busy: `cancel`
    in the update's details is "done" (dropped from its queue, or stopped), "requested" (it stops at its
    next step) or "not_possible" (a command running on Blender's main thread runs to its end). Without an
    answer within `cancel_ack_timeout` the cancel is only "unconfirmed". A job that finishes meanwhile
    answers with its real outcome."""
    await bus.cancel(caller, job_id, entry, reason="the caller's timeout passed")
    outcome, reason = "unconfirmed", ""
    try:
        async with asyncio.timeout(bus.settings.cancel_ack_timeout):
            while True:
                update = await updates.get()
                said = (update.get("details") or {}).get("cancel")
                if update.get("status") in ("completed", "error"):
                    return _answer(command, entry, job_id, update)
                if update.get("status") == "cancelled":
                    outcome = "done"
                    break
                if said in ("not_possible", "requested"):
                    outcome, reason = said, str((update.get("details") or {}).get("reason") or "")
                    if said == "not_possible":
                        break
    except TimeoutError:
        pass
    error = {"done": f"no answer within {timeout:g} s; the job was cancelled",
             "requested": f"no answer within {timeout:g} s; the job stops at its next step",
             "not_possible": f"no answer within {timeout:g} s, and Blender cannot stop it: {reason}",
             "unconfirmed": f"no answer within {timeout:g} s; the job was asked to cancel, and {entry.uuid} has "
                            "not confirmed it"}[outcome]
    return dispatch_answer("timeout", command, entry.uuid, job_id, error=error, cancel=outcome,
                           last_heartbeat=entry.last_seen,
                           seconds_since_heartbeat=round(time.time() - entry.last_seen, 1),
                           target_online=entry.online,
                           hint="raise _timeout for long work; a recent heartbeat means Blender is busy, an old one "
                                "that it is gone")


def _answer(command: str, entry: ClientInfo, job_id: str, update: dict[str, Any]) -> dict[str, Any]:
    """The dispatch answer for a job's final update."""
    result = update.get("result")
    if isinstance(result, dict | list):
        result = json.dumps(result)
    extra = {"details": update["details"]} if update.get("details") else {}
    return dispatch_answer(update.get("status") or "error", command, entry.uuid, job_id, result,
                           update.get("error") or "", **extra)
