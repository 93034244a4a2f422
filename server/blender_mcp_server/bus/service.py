"""The bus service: what every bus tool does, independent of how the tool reached us.

Every public method takes the authenticated user first and only ever touches
that user's clients and jobs. Every method answers with a JSON-able dict; bad
input is a dict with `status: "error"`, an `error` code and a `message`, never
an exception the tool layer would turn into a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from blender_mcp_addon.protocol import (
    FINAL_JOB_STATUSES,
    JOB_UPDATE_PRIORITY,
    BusRecord,
    CancelJob,
    JobUpdate,
    Priority,
    PriorityError,
    Routing,
    new_id,
    parse_priority,
)
from blender_mcp_addon.protocol.answers import ErrorCode, bus_error
from blender_mcp_addon.protocol.versions import incompatibility, parse_client_versions, server_versions

from .. import __version__
from ..config import Settings
from ..delivery.encoding import SharedRecord
from ..delivery.outbox import OutboxFull
from ..storage.counters import CounterFactory, in_process
from ..storage.protocols import Prunable
from ..storage.records import ClientInfo
from ..transport.sdk_shims import session_log_level
from .caller import Caller
from .cluster import Cluster, SingleServer
from .directory import ClientEntry, Registry, RegistryError
from .jobs import Jobs
from .liveness import Liveness
from .router import choose_routing, fan_out
from .validation import MAX_CAPABILITIES, MAX_ID, bad_id, check_payload, measure

if TYPE_CHECKING:  # types only: metrics.py sits above bus/ and imports it
    from ..metrics import Metrics

log = logging.getLogger(__name__)
_RECORD_OVERHEAD = 300  # a record's envelope around its payload (ids, routing), in bytes, for the byte bounds


class Bus:
    def __init__(self, settings: Settings, registry: Registry, jobs: Jobs, stores: Sequence[Prunable] = (),
                 cluster: Cluster | None = None, counter: CounterFactory = in_process):
        self.settings = settings
        self.registry = registry
        self.jobs = jobs
        self.liveness = Liveness(settings, registry, stores)
        self.cluster: Cluster = cluster or SingleServer()
        registry.on_change, registry.on_gone = self.cluster.note, self.cluster.note_gone
        # per user, across replicas when `counter` makes shared (Redis) counters
        self._rate = counter("messages", settings.messages_per_minute, 60.0)
        self._update_rate = counter("job_updates", settings.job_updates_per_minute, 60.0)
        self._tasks: list[asyncio.Task] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.shutting_down = False
        self.metrics: Metrics | None = None  # set by app.py; None: no counting at all

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        await self.cluster.start(self)
        # Replicas keep offline persistent clients in the shared directory, and their records in the shared
        # queue store: whoever the client registers with next loads them (register). Alone, this server
        # brings its own back.
        if not self.cluster.shared:
            restored = await self.registry.restore(offline_max_records=self.settings.offline_max_records,
                                                   offline_max_bytes=self.settings.offline_max_bytes)
            if restored:
                log.info("restored %d records queued for offline persistent clients", restored)
        self._tasks = [loop.create_task(self.liveness.sweep_forever(), name="bus-sweep"),
                       loop.create_task(self.liveness.ping_forever(), name="bus-ping")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(e.outbox.close() for e in self.registry.all_entries()), return_exceptions=True)
        await self.registry.flush()
        await self.cluster.stop()

    def request_shutdown(self, then: Callable[[], None], grace: float = 0.5) -> bool:
        """From a signal handler: end every waiting dispatch with a definite status, then call `then`.

        The grace period lets those answers leave before `then` (uvicorn's own exit, which closes
        every SSE stream at once, the POST answers included) runs. False when the bus is not running.
        """
        loop = self._loop
        if loop is None or loop.is_closed():
            return False

        def begin() -> None:
            self.shutting_down = True
            waiting = bool(self.jobs.waiting())
            loop.create_task(self._begin_shutdown())
            loop.call_later(grace if waiting else 0.0, then)

        loop.call_soon_threadsafe(begin)
        return True

    async def _begin_shutdown(self) -> None:
        self.shutting_down = True
        for user_id, job_id in self.jobs.waiting():
            # Answer the waiting call first: the store may be slow (or gone) at shutdown.
            self.jobs.offer(user_id, job_id, {"job_id": job_id, "status": "cancelled",
                                              "error": "the bus server is shutting down; the job was cancelled"})
            job = await self.jobs.get(user_id, job_id)
            target = await self.find(user_id, job.target_uuid) if job and job.target_uuid else None
            if target is not None:
                await self._request_cancel(user_id, job_id, target, "the bus server is shutting down")
            await self.jobs.set_status(user_id, job_id, "cancelled")

    # -- clients --------------------------------------------------------------------------------------
    async def register(self, caller: Caller, *, client_uuid: str, client_type: str, is_persistent: bool,
                 capabilities: list[str] | None, group_id: str | None, label: str | None,
                 versions: Any = None) -> dict[str, Any]:
        for value, name, required in ((client_uuid, "client_uuid", True), (client_type, "client_type", True),
                                      (group_id, "group_id", False), (label, "label", False)):
            if bad := bad_id(value, name, required):
                return bad
        caps = capabilities or []
        if not isinstance(caps, list) or len(caps) > MAX_CAPABILITIES or any(
                bad_id(c, "capability") for c in caps):
            return bus_error(ErrorCode.INVALID_ARGUMENTS, f"capabilities: at most {MAX_CAPABILITIES} printable strings of at "
                                              f"most {MAX_ID} characters each")
        server = server_versions(__version__)
        try:
            said = parse_client_versions(versions)
        except ValueError as exc:
            return bus_error(ErrorCode.INVALID_ARGUMENTS, str(exc), server=server)
        if why := incompatibility(said.protocol, __version__):
            return bus_error(ErrorCode.INCOMPATIBLE_VERSION, why, server=server)
        if caller.session is None or not caller.session_id:
            return bus_error(ErrorCode.NO_SESSION, "registering needs a stateful MCP session (Streamable HTTP with a session id)")
        elsewhere: frozenset[str] = frozenset()
        if self.cluster.shared and self.registry.get(caller.user_id, client_uuid) is None:
            elsewhere = await self.cluster.uuids(caller.user_id)  # the limit is the bus's, not this replica's
        try:
            entry, took_over = await self.registry.register(
                caller.user_id, client_uuid=client_uuid, client_type=client_type, is_persistent=bool(is_persistent),
                capabilities=[str(c) for c in capabilities or []], group_id=group_id, label=label,
                session=caller.session, session_id=caller.session_id,
                versions=said.model_dump(exclude_none=True) or None, elsewhere=elsewhere)
        except RegistryError as exc:
            return bus_error(exc.status, str(exc))
        if self.cluster.shared:
            # Another replica may hold it (the client came back through the balancer after its replica
            # went away, or moved): it is this one's now, with whatever was kept for it meanwhile.
            await self.cluster.claim(entry)
            if entry.is_persistent:
                await self.registry.load_queued(entry, offline_max_records=self.settings.offline_max_records,
                                                offline_max_bytes=self.settings.offline_max_bytes)
        result: dict[str, Any] = {"status": "registered", "client_uuid": client_uuid, "user": caller.username,
                                  "online": entry.online, "took_over": took_over, "queued": len(entry.outbox),
                                  "server": server}
        level = session_log_level(caller.session)
        if level < Priority.DEBUG:
            missed = ", ".join(p.level for p in Priority if p > level)
            result["warning"] = (f"this session's log level is '{level.level}', so bus records at {missed} "
                                 "will not reach it (job_update replies are 'notice', dispatches 'info'). "
                                 "Call set_logging_level('debug') (MCP logging/setLevel) to receive everything.")
        return result

    async def unregister(self, caller: Caller, client_uuid: str) -> dict[str, Any]:
        if bad := bad_id(client_uuid, "client_uuid"):
            return bad
        entry = await self.registry.unregister(caller.user_id, client_uuid)
        if entry is None:
            return bus_error(ErrorCode.UNKNOWN_CLIENT, f"no client {client_uuid!r} on your bus")
        return {"status": "unregistered", "client_uuid": client_uuid, "dropped_records": len(entry.outbox)}

    async def find(self, user_id: str, uuid: str) -> ClientInfo | None:
        """A client of the user's bus: held here (a ClientEntry), else by another replica, else None."""
        return self.registry.get(user_id, uuid) or await self.cluster.lookup(user_id, uuid)

    async def everyone(self, user_id: str, *, fresh: bool = False) -> list[ClientInfo]:
        """Every client of the user's bus, on this replica and on the others (`fresh`: see Cluster.others)."""
        local = self.registry.clients(user_id)
        if not self.cluster.shared:
            return list(local)
        mine = {e.uuid for e in local}
        return [*local, *(c for c in await self.cluster.others(user_id, fresh=fresh) if c.uuid not in mine)]

    async def list_clients(self, caller: Caller) -> dict[str, Any]:
        persistent, ephemeral = [], []
        for entry in sorted(await self.everyone(caller.user_id, fresh=True), key=lambda e: e.uuid):
            (persistent if entry.is_persistent else ephemeral).append(entry.public())
        return {"persistent": persistent, "ephemeral": ephemeral}

    def heartbeat(self, caller: Caller, client_uuid: str) -> dict[str, Any]:
        entry = self.registry.get(caller.user_id, client_uuid)
        if entry is None:  # the server restarted or swept it: the client registers again
            return bus_error(ErrorCode.UNKNOWN_CLIENT, f"no client {client_uuid!r} on your bus; register again",
                             client_uuid=client_uuid)
        if entry.session_id != caller.session_id:
            return {"status": "replaced", "client_uuid": client_uuid}
        self.registry.touch(entry)
        self.registry.revive(entry)  # its heartbeat is proof of life, whatever the missed pings said
        self.cluster.note(entry)  # the other replicas see its last_seen move
        return {"status": "ok", "online": entry.online, "stream_open": self.registry.stream_open(caller.session_id),
                "queued": len(entry.outbox), "server_time": time.time()}

    # -- messages -------------------------------------------------------------------------------------
    def check_payload(self, payload: Any) -> tuple[int, dict[str, Any] | None]:
        return check_payload(payload, max_depth=self.settings.max_payload_depth,
                             max_bytes=self.settings.max_payload_bytes)

    def measure(self, payload: Any) -> tuple[int, dict[str, Any] | None]:
        return measure(payload, max_depth=self.settings.max_payload_depth, max_bytes=self.settings.max_payload_bytes)

    async def check_rate(self, caller: Caller) -> dict[str, Any] | None:
        if await self._rate.hit(caller.user_id):
            return None
        return bus_error(ErrorCode.RATE_LIMITED, f"more than {self._rate.limit} messages a minute on your bus",
                     retry_after=self._rate.retry_after())

    async def send(self, caller: Caller, *, payload: Any, from_uuid: str | None, target_uuid: str | None = None,
             group_id: str | None = None, client_type: str | None = None, priority: Any = "info") -> dict[str, Any]:
        try:
            prio = parse_priority(priority)
        except PriorityError as exc:
            return bus_error(ErrorCode.INVALID_PRIORITY, str(exc), valid=[p.level for p in Priority])
        for value, name in ((from_uuid, "from_uuid"), (target_uuid, "target_uuid"), (group_id, "group_id"),
                            (client_type, "client_type")):
            if bad := bad_id(value, name, required=False):
                return bad
        size, bad = self.check_payload(payload)
        if bad := bad or await self.check_rate(caller):
            return bad
        self.registry.touch_session(caller.session_id)
        routing = choose_routing(target_uuid, group_id, client_type)
        recipients = await self._recipients(caller.user_id, routing, from_uuid)
        if recipients is None:
            return bus_error(ErrorCode.UNKNOWN_TARGET, f"no client {routing.target_uuid!r} on your bus",
                             routing=routing.wire())
        job_id = payload.get("job_id") if isinstance(payload.get("job_id"), str) else None
        if job_id and payload.get("message_type") not in ("job_update", "cancel_job") and payload.get("kind") != "job_update":
            await self.jobs.record(caller.user_id, job_id, originator=from_uuid, target=routing.target_uuid,
                             command=payload.get("command") or payload.get("message_type"))
        if self.metrics is not None:
            self.metrics.messages += 1
        return await self.deliver(caller.user_id, recipients, routing, payload, prio, from_uuid=from_uuid,
                                  job_id=job_id, size=size)

    async def _recipients(self, user_id: str, routing: Routing, from_uuid: str | None) -> list[ClientInfo] | None:
        """Who gets a record routed so (None: a direct target that is not on the bus)."""
        if routing.type == "direct":
            found = await self.find(user_id, routing.target_uuid or "")
            return None if found is None else [found]
        return fan_out(await self.everyone(user_id), routing, from_uuid)

    async def deliver(self, user_id: str, recipients: list[ClientInfo], routing: Routing, payload: dict[str, Any],
                prio: Priority, *, from_uuid: str | None, job_id: str | None,
                message_id: str | None = None, size: int | None = None) -> dict[str, Any]:
        """Stamp one record per recipient and put it in that recipient's outbox (`size`: the payload's
        JSON bytes when the caller measured it; the outboxes' byte bounds count it)."""
        base = BusRecord(user_id=user_id, from_uuid=from_uuid, routing=routing, payload=payload, job_id=job_id,
                         message_id=message_id or new_id("msg"), priority=int(prio)).wire()
        shared = SharedRecord(base)
        record_size = (len(json.dumps(payload, separators=(",", ":"))) if size is None else size) + _RECORD_OVERHEAD
        delivery: dict[str, str] = {}
        to_store: list[tuple[Any, dict[str, Any], str]] = []
        full: OutboxFull | None = None
        elsewhere = [c for c in recipients if not isinstance(c, ClientEntry)]  # held by other replicas
        if elsewhere:
            delivery.update(await self.cluster.forward(elsewhere, int(prio), base, record_size))
        for entry in recipients:
            if not isinstance(entry, ClientEntry):
                continue
            data = dict(base, target_uuid=entry.uuid)
            state, item = self._put(entry, prio, data, shared, record_size)
            delivery[entry.uuid] = state
            if state == "outbox_full":
                full = item
            elif state == "queued" and entry.is_persistent and self.registry.store is not None:
                to_store.append((item, data, entry.uuid))
        if to_store:
            await self._keep_queued(user_id, prio, to_store)
        if self.metrics is not None:
            self.metrics.delivered(delivery)
        states = set(delivery.values())
        if not recipients:
            status = "no_recipients"
        elif states <= {"sent", "filtered"}:
            status = "sent"
        elif states == {"gone"}:
            status = "no_recipients"
        elif states == {"queued"}:
            status = "queued"
        elif "outbox_full" in states and len(recipients) == 1:
            return bus_error(ErrorCode.OUTBOX_FULL, f"the {full}; nothing was queued",
                         message_id=base["message_id"], routing=routing.wire())
        else:
            status = "partial" if states & {"outbox_full", "gone"} else "sent"
        return {"status": status, "message_id": base["message_id"], "routing": routing.wire(),
                "recipients": list(delivery), "delivery": delivery, "priority": prio.level}

    def _put(self, entry: ClientEntry, prio: Priority, data: dict[str, Any], shared: SharedRecord,
             size: int) -> tuple[str, Any]:
        """(delivery state, the outbox item when one was queued)."""
        try:
            if entry.online:
                if prio > session_log_level(entry.session):
                    return "filtered", None
                return "sent", entry.outbox.put(prio, data, shared=shared, size=size)
            return "queued", entry.outbox.put(prio, data, bound=self.settings.offline_max_records,
                                              max_bytes=self.settings.offline_max_bytes, shared=shared, size=size)
        except OutboxFull as exc:
            return "outbox_full", exc

    async def _keep_queued(self, user_id: str, prio: Priority, queued: list[tuple[Any, dict[str, Any], str]]) -> None:
        """Write the records just queued for offline persistent clients to the store, in one transaction:
        "queued" means kept, across a restart of the server."""
        store = self.registry.store
        assert store is not None
        now = time.time()
        ids = await store.add_offline_records([(user_id, uuid, int(prio), now, json.dumps(data, separators=(",", ":")))
                                         for _item, data, uuid in queued])
        for (item, _data, _uuid), stored_id in zip(queued, ids, strict=True):
            item.stored_id = stored_id

    # -- jobs -----------------------------------------------------------------------------------------
    async def job_update(self, caller: Caller, *, job_id: str, status: str, result: Any = None, error_text: str = "",
                   progress: float | None = None, message: str | None = None,
                   details: dict[str, Any] | None = None, from_uuid: str | None = None) -> dict[str, Any]:
        if bad := bad_id(job_id, "job_id") or bad_id(from_uuid, "from_uuid", required=False):
            return bad
        try:
            update = JobUpdate(job_id=job_id, status=status, result=result, error=error_text or "",
                               progress=progress, message=message, details=details,
                               from_uuid=from_uuid)
        except ValidationError as exc:
            return bus_error(ErrorCode.INVALID_ARGUMENTS, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                                        for e in exc.errors()))
        payload = update.model_dump(exclude_none=True)
        size, bad = self.measure(payload)
        if bad:
            return bad
        # Counted before it goes anywhere; for a call waiting on another replica the cluster counts it and
        # sends it in one round trip (a refused update is never sent).
        if self.jobs.is_waiting(caller.user_id, job_id) or not self.cluster.shared:
            allowed = await self._update_rate.hit(caller.user_id)
            waiting = allowed and self.jobs.offer(caller.user_id, job_id, payload)
        else:
            outcome = await self.cluster.forward_update(caller.user_id, job_id, payload, self._update_rate)
            allowed, waiting = outcome != "refused", outcome == "forwarded"
        if not allowed:
            return bus_error(ErrorCode.RATE_LIMITED, f"more than {self._update_rate.limit} job updates a minute on your bus",
                         retry_after=self._update_rate.retry_after())
        self.registry.touch_session(caller.session_id)
        if self.metrics is not None:
            self.metrics.job_updates += 1
        delivered = {"status": "delivered", "routing": {"type": "direct", "target_uuid": "dispatch-tool"}}
        # A Style A call waiting for it, here or on another replica, has its answer first (it names its own
        # command); the status is written after, in the statement that also reads the job for the other
        # routes. Not side by side: the store's client work would hold the PUBLISH back (measured ~0.7 ms).
        job = await self.jobs.set_status(caller.user_id, job_id, status)
        if waiting:
            return delivered
        if job is not None:
            payload.setdefault("command", job.command)
        if job is None:
            # The spec's fallback, only for jobs the store never knew.
            routing = Routing(type="broadcast")
            recipients = fan_out(await self.everyone(caller.user_id), routing, from_uuid)
            return await self.deliver(caller.user_id, recipients, routing, payload, JOB_UPDATE_PRIORITY,
                                      from_uuid=from_uuid, job_id=job_id, size=size)
        if not job.originator_uuid:
            return {"status": "dropped", "message": "the job's caller is no longer waiting for it"}
        routing = Routing(type="direct", target_uuid=job.originator_uuid)
        entry = await self.find(caller.user_id, job.originator_uuid)
        if entry is None:
            record = BusRecord(user_id=caller.user_id, from_uuid=from_uuid, target_uuid=job.originator_uuid,
                               routing=routing, payload=payload, job_id=job_id,
                               priority=int(JOB_UPDATE_PRIORITY)).wire()
            size = len(json.dumps(record, separators=(",", ":")))
            if self.registry.park(caller.user_id, job.originator_uuid, int(JOB_UPDATE_PRIORITY), record, size,
                                  max_records=self.settings.parked_max_records,
                                  max_bytes=self.settings.parked_max_bytes):
                return {"status": "queued", "routing": routing.wire(), "message_id": record["message_id"],
                        "message": "the originator is not registered; the update waits for it"}
            count, held = self.registry.parked(caller.user_id)
            return bus_error(ErrorCode.PARKED_FULL, f"{count} updates ({held} bytes) already wait for unregistered originators "
                                        f"on your bus (limits {self.settings.parked_max_records} records, "
                                        f"{self.settings.parked_max_bytes} bytes); this one is dropped",
                         limit_records=self.settings.parked_max_records, limit_bytes=self.settings.parked_max_bytes)
        return await self.deliver(caller.user_id, [entry], routing, payload, JOB_UPDATE_PRIORITY,
                                  from_uuid=from_uuid, job_id=job_id, size=size)

    async def cancel(self, caller: Caller, job_id: str, entry: ClientInfo | None = None,
               reason: str = "cancelled by the caller") -> dict[str, Any]:
        """Ask the job's target to drop it (queued) or flag it (running); it answers with a cancelled update."""
        if bad := bad_id(job_id, "job_id"):
            return bad
        job = await self.jobs.get(caller.user_id, job_id)
        if job is None:
            return bus_error(ErrorCode.UNKNOWN_JOB, f"no job {job_id!r} on your bus")
        if job.status in FINAL_JOB_STATUSES:
            return {"status": job.status, "job_id": job_id, "message": "the job had already finished"}
        target = entry or (await self.find(caller.user_id, job.target_uuid) if job.target_uuid else None)
        if target is None:
            await self.jobs.set_status(caller.user_id, job_id, "cancelled")
            return {"status": "cancelled", "job_id": job_id, "message": "its target is gone; marked cancelled"}
        await self._request_cancel(caller.user_id, job_id, target, reason)
        return {"status": "cancel_requested", "job_id": job_id, "target_uuid": target.uuid}

    async def _request_cancel(self, user_id: str, job_id: str, target: ClientInfo, reason: str) -> None:
        """A `cancel_job` record at `alert`, so it overtakes the queued work it cancels."""
        await self.deliver(user_id, [target], Routing(type="direct", target_uuid=target.uuid),
                     CancelJob(job_id=job_id, reason=reason).model_dump(), Priority.ALERT, from_uuid=None,
                     job_id=job_id)

    # -- what other replicas ask of this one (bus.cluster.Inbox) -------------------------------------
    async def records_arrived(self, user_id: str, priority: int, base: dict[str, Any], size: int,
                              targets: list[tuple[str, bool]]) -> None:
        prio, shared = Priority(priority), SharedRecord(base)
        now = time.time()
        keep: list[tuple[Any, dict[str, Any], str]] = []
        moved: list[tuple[str, str, int, float, str]] = []
        for uuid, persistent in targets:
            data = dict(base, target_uuid=uuid)
            entry = self.registry.get(user_id, uuid)
            if entry is None:  # it moved on meanwhile: a persistent client's record is kept for it
                if persistent:
                    moved.append((user_id, uuid, priority, now, json.dumps(data, separators=(",", ":"))))
                continue
            state, item = self._put(entry, prio, data, shared, size)
            if state == "queued" and entry.is_persistent:
                keep.append((item, data, uuid))
        if self.registry.store is not None:
            if keep:
                await self._keep_queued(user_id, prio, keep)
            if moved:
                await self.registry.store.add_offline_records(moved)

    def update_arrived(self, user_id: str, job_id: str, payload: dict[str, Any]) -> bool:
        return self.jobs.offer(user_id, job_id, payload)

    async def let_go(self, user_id: str, uuid: str) -> None:
        await self.registry.let_go(user_id, uuid)

    def held(self) -> list[ClientInfo]:
        return list(self.registry.all_entries())

    async def queue_grew(self, user_id: str, uuid: str) -> None:
        entry = self.registry.get(user_id, uuid)
        if entry is not None:
            await self.registry.load_queued(entry, offline_max_records=self.settings.offline_max_records,
                                            offline_max_bytes=self.settings.offline_max_bytes)
