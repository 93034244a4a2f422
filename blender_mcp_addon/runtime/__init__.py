"""The Blender side of the bus: records in, jobs run on the main thread, updates out.

`Runtime.drain()` is the one drain function. In the GUI a `bpy.app.timers`
function calls it; in `blender -b` and the bpy module timers never fire, so a
blocking loop on the main thread calls it (drivers.py). It works within a
time budget per call so the GUI never stalls on a burst of records.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..client import BusClient, ClientConfig, ConnectionState, MessagePump, PumpItem, TokenKeeper
from ..code_policy import Refusal, check_script
from ..handlers import COMMANDS, Background, CommandError, Progress, Reply, load_all
from ..handlers.code import ScriptFailed, run_script
from ..limits import LimitError, Limits
from ..protocol.catalog import CATALOG
from ..session import note_scene_changed

log = logging.getLogger(__name__)
POLICIES = ("allow", "safe", "ask", "deny")
MAX_RESULT_BYTES = 900 * 1024  # under the server's 1 MiB payload cap, with room for the envelope
INTEGRATION_NAMES = {"polyhaven": "Poly Haven", "rodin": "Hyper3D Rodin", "sketchfab": "Sketchfab",
                     "hunyuan3d": "Hunyuan3D", "tripo": "Tripo", "meshy": "Meshy", "polypizza": "Poly Pizza",
                     "ambientcg": "ambientCG"}
# `details.cancel` of the update that answers a cancel_job (the server tells the caller from it whether the
# job really stopped): dropped or stopped; asked to stop at its next step; cannot be stopped.
CANCEL_DONE, CANCEL_REQUESTED, CANCEL_NOT_POSSIBLE = "done", "requested", "not_possible"


@dataclass(eq=False)  # one record per run of a job: compared by identity
class JobRecord:
    job_id: str
    command: str
    origin: str
    status: str = "queued"
    started: float = field(default_factory=time.time)
    finished: float | None = None
    error: str = ""
    progress: float | None = None
    message: str = ""
    checkpoint: str | None = None  # the checkpoint taken before it ran (checkpoint_before_code)

    @property
    def duration(self) -> float:
        return (self.finished or time.time()) - self.started


@dataclass
class _Suspended:
    record: JobRecord
    gen: Generator[Any, Any, Any]
    future: Future


class Runtime:
    def __init__(self, *, policy: str | Callable[[], str] = "allow",
                 integration_enabled: Callable[[str], bool] | None = None,
                 limits: Limits | Callable[[], Limits] | None = None,
                 checkpoint_before_code: bool | Callable[[], bool] = False):
        self.pump = MessagePump()
        self.client: BusClient | None = None
        self._policy = policy
        self._checkpoint_before_code = checkpoint_before_code
        self._limits = limits or Limits()
        self._integration_enabled = integration_enabled or (lambda _name: True)
        self.recent: deque[JobRecord] = deque(maxlen=50)
        self.approvals: dict[str, PumpItem] = {}
        self.messages: deque[dict[str, Any]] = deque(maxlen=50)
        self._cancelled: set[str] = set()
        self._suspended: dict[str, _Suspended] = {}
        # The job the main thread is inside (a handler or a generator's step), and whether it can be stopped
        # between steps. The client thread reads it to answer a cancel at once; the lock keeps that answer
        # before the job's final update, never after it.
        self._running: tuple[JobRecord, bool] | None = None
        self._lock = threading.RLock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="blender-mcp-bg")
        self.on_change: Callable[[], None] | None = None
        self.on_progress: Callable[[JobRecord | None], None] | None = None  # main thread; None when a job ends
        self.dirty = True  # something the panel shows changed since the last redraw
        load_all()

    # -- connection -----------------------------------------------------------------------------------
    @property
    def policy(self) -> str:
        value = self._policy() if callable(self._policy) else self._policy
        return value if value in POLICIES else "deny"

    def integration_enabled(self, name: str) -> bool:
        return bool(self._integration_enabled(name))

    @property
    def limits(self) -> Limits:
        return self._limits() if callable(self._limits) else self._limits

    @property
    def state(self) -> ConnectionState:
        return self.client.state if self.client else ConnectionState()

    def connect(self, config: ClientConfig, keeper: TokenKeeper) -> None:
        self.disconnect()
        self.client = BusClient(config, keeper, on_record=self._on_record, on_cancel=self._on_cancel,
                                on_state=lambda _s: self._changed())
        self.client.start()

    def disconnect(self, timeout: float = 5.0) -> None:
        if self.client is not None:
            self.client.stop(timeout)

    def shutdown(self, reason: str = "Blender is shutting down") -> None:
        """End every job that has not finished with a definite status, then leave the bus."""
        while (item := self.pump.pop()) is not None:
            if item.job_id:
                self._update(item.job_id, "cancelled", error=reason)
        for job_id in list(self.approvals):
            self.approvals.pop(job_id)
            self._update(job_id, "cancelled", error=reason)
        for job_id, suspended in list(self._suspended.items()):
            self._suspended.pop(job_id)
            suspended.gen.close()
            self._finish(suspended.record, "cancelled", error=reason)
        self.disconnect()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.pump.close()

    # -- client thread callbacks ----------------------------------------------------------------------
    def _on_record(self, priority: int, record: dict[str, Any], level: str) -> None:
        self.pump.push(priority, record, level)

    def _on_cancel(self, job_id: str) -> None:
        """Answer a cancel_job on the client thread, at once: the main thread may be busy with this very job.

        Every answer says in `details.cancel` what the cancel achieved (CANCEL_*)."""
        with self._lock:
            item = self.pump.remove_job(job_id)
            why = "cancelled before it started"
            if item is None and (item := self.approvals.pop(job_id, None)) is not None:
                why = "cancelled while awaiting approval"
            if item is not None:
                record = self._record_for(item)
                record.status, record.error, record.finished = "cancelled", why, time.time()
                self._remember(record)
                self._update(job_id, "cancelled", error=why, details={"cancel": CANCEL_DONE})
                self.dirty = True
                return
            self._cancelled.add(job_id)  # the main thread acts on it: stops a generator, discards a result
            running = self._running
            if running is not None and running[0].job_id == job_id and not running[1]:
                self._update(job_id, "running", message="cancel requested; it cannot be stopped", details={
                    "cancel": CANCEL_NOT_POSSIBLE,
                    "reason": f"{running[0].command} is running on Blender's main thread and cannot be stopped; "
                              "it will run to its end and its result will be discarded"})
            elif (running is not None and running[0].job_id == job_id) or job_id in self._suspended:
                self._update(job_id, "running", message="cancel requested; it stops at its next step",
                             details={"cancel": CANCEL_REQUESTED})
            # Otherwise the main thread has just taken it off the heap (it answers "done" as it starts) or the
            # job is unknown here (already finished: its final update has gone).
        self.pump.wake()

    # -- main thread ----------------------------------------------------------------------------------
    def drain(self, budget: float = 0.008) -> int:
        """Run queued jobs until `budget` seconds are used; returns how many steps ran."""
        deadline = time.perf_counter() + budget
        steps = 0
        for job_id, suspended in list(self._suspended.items()):
            if job_id in self._cancelled:
                # Between steps: stop now rather than when the background work (a download) would end.
                self._suspended.pop(job_id)
                suspended.future.cancel()
                suspended.gen.close()
                self._finish(suspended.record, "cancelled", error="cancelled while running; stopped between "
                             "steps", details={"cancel": CANCEL_DONE})
                steps += 1
            elif suspended.future.done():
                with self._lock:  # a cancel from now on finds it running, and is told "requested"
                    self._suspended.pop(job_id)
                    self._running = (suspended.record, True)
                self._resume(suspended.record, suspended.gen, suspended.future)
                steps += 1
        while time.perf_counter() < deadline:
            item = self.pump.pop()
            if item is None:
                break
            self._start(item)
            steps += 1
        return steps

    @property
    def busy(self) -> bool:
        return bool(len(self.pump) or self._suspended)

    def _start(self, item: PumpItem) -> None:
        payload = item.payload
        kind = payload.get("message_type")
        if kind not in ("job_dispatch", "command_dispatch") or not item.job_id:
            self.messages.append(item.record)  # free-form bus traffic: shown in the panel, not run
            self._changed()
            return
        record = self._record_for(item)
        with self._lock:  # a cancel that comes now finds the job either here or in the approvals, not lost between
            if record.job_id in self._cancelled:  # came as the main thread took the job off the heap
                self._finish(record, "cancelled", error="cancelled before it started", details={"cancel": CANCEL_DONE})
                return
            if self._needs_policy(kind, payload):
                policy = self.policy
                if policy == "deny":
                    self._finish(record, "error", error="code execution is disabled in Blender (policy: deny)")
                    return
                if policy == "safe" and (refusals := self._safe_refusals(kind, payload)):
                    self._finish(record, "error", error="refused by the safe code policy: "
                                 + "; ".join(str(r) for r in refusals) + ". Change the script, or ask the "
                                 "artist for the allow or ask policy.",
                                 details={"policy": "safe", "refusals": [{"line": r.line, "reason": r.reason}
                                                                         for r in refusals]})
                    return
                if policy == "ask":
                    self.approvals[record.job_id] = item
                    self._update(record.job_id, "queued", message="waiting for approval in Blender")
                    self._changed()
                    return
        self._run(item, record)

    def approve(self, job_id: str) -> bool:
        item = self.approvals.pop(job_id, None)
        if item is None:
            return False
        self._run(item, self._record_for(item))
        return True

    def reject(self, job_id: str) -> bool:
        item = self.approvals.pop(job_id, None)
        if item is None:
            return False
        self._finish(self._record_for(item), "error", error="rejected by the user in Blender")
        return True

    def _safe_refusals(self, kind: str, payload: dict[str, Any]) -> list[Refusal]:
        params = payload.get("params") if isinstance(payload.get("params"), dict) else {}
        source = payload.get("script") if kind == "job_dispatch" else params.get("code")
        output = self.limits.output_dir
        return check_script(source if isinstance(source, str) else "", [output] if output else [])

    @property
    def checkpoint_before_code(self) -> bool:
        value = self._checkpoint_before_code
        return bool(value() if callable(value) else value)

    def _checkpoint_first(self, record: JobRecord) -> None:
        """A checkpoint before a script runs, so a bad one never costs work; raises CommandError when it
        cannot be taken (nothing runs then)."""
        from ..handlers.history import save_checkpoint

        try:
            record.checkpoint = save_checkpoint(f"before-{record.command}-{record.job_id[-8:]}")["name"]
        except Exception as exc:  # noqa: BLE001 - a failed save must stop the script, whatever failed
            raise CommandError(f"could not take the checkpoint before the script ({exc}); nothing ran") from None

    def _undo_step(self, record: JobRecord, cmd: Any) -> None:
        """In a window, what a scene-changing job did becomes one undo step named after it; and the open
        file now has unsaved changes."""
        spec = CATALOG.get(record.command)
        if (cmd is None and record.command != "job_dispatch") or (spec is not None and not spec.changes_scene):
            return
        note_scene_changed()
        if record.command in ("undo", "redo"):  # they move along the stack: a step pushed now would end redo
            return
        from ..handlers.history import push_undo_step

        try:
            push_undo_step(f"MCP: {record.command} {record.job_id}")
        except Exception:  # noqa: BLE001 - the job's own outcome matters more than its undo step
            log.exception("could not push an undo step for %s", record.job_id)

    def _needs_policy(self, kind: str, payload: dict[str, Any]) -> bool:
        if kind == "job_dispatch":
            return True
        cmd = COMMANDS.get(str(payload.get("command")))
        return bool(cmd and cmd.needs_code_policy)

    def _record_for(self, item: PumpItem) -> JobRecord:
        return JobRecord(str(item.job_id), _command_of(item.payload), item.record.get("from_uuid") or "dispatch-tool")

    def _run(self, item: PumpItem, record: JobRecord) -> None:
        payload = item.payload
        self._remember(record)
        cmd = COMMANDS.get(str(payload.get("command"))) if payload.get("message_type") == "command_dispatch" else None
        with self._lock:
            if record.job_id in self._cancelled:  # came after _start looked, or while awaiting approval
                self._finish(record, "cancelled", error="cancelled before it started", details={"cancel": CANCEL_DONE})
                return
            self._running = (record, bool(cmd and cmd.is_generator))
        record.status = "running"
        record.started = time.time()
        try:
            if self._needs_policy(str(payload.get("message_type")), payload) and self.checkpoint_before_code:
                self._checkpoint_first(record)
            if payload.get("message_type") == "job_dispatch":
                try:
                    reply = run_script(payload.get("script", ""))
                finally:
                    self._undo_step(record, None)
                self._finish(record, "completed", reply)
                return
            name = str(payload.get("command"))
            params = payload.get("params") or {}
            if cmd is None:
                raise CommandError(f"unknown command {name!r}; known: {', '.join(sorted(COMMANDS))}")
            if cmd.integration and not self._integration_enabled(cmd.integration):
                label = INTEGRATION_NAMES.get(cmd.integration, cmd.integration)
                raise CommandError(f"{label} is disabled in the add-on preferences; enable it there to use {name}")
            if not isinstance(params, dict):
                raise CommandError("params must be an object")
            try:
                outcome = cmd.fn(**params)
            except TypeError as exc:
                if "argument" in str(exc) and exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
                    raise CommandError(f"bad params for {name}: {exc}") from None
                raise
            finally:
                if not cmd.is_generator:
                    self._undo_step(record, cmd)
            if cmd.is_generator:
                self._resume(record, outcome, None)
            else:
                self._finish(record, "completed", outcome)
        except ScriptFailed as exc:
            self._finish(record, "error", Reply(exc.stdout, {"stderr": exc.stderr}), error=exc.traceback)
        except (CommandError, LimitError) as exc:
            self._finish(record, "error", error=str(exc))
        except Exception:
            self._finish(record, "error", error=traceback.format_exc())

    def _resume(self, record: JobRecord, gen: Generator[Any, Any, Any], future: Future | None) -> None:
        """Step a generator handler until it finishes or hands work to a background thread."""
        self._running = (record, True)
        try:
            if future is None:
                step = next(gen)
            elif future.exception() is not None:
                step = gen.throw(future.exception())  # type: ignore[arg-type]
            else:
                step = gen.send(future.result())
            while True:
                if record.job_id in self._cancelled:
                    gen.close()
                    self._finish(record, "cancelled", error="cancelled while running; stopped between steps",
                                 details={"cancel": CANCEL_DONE})
                    return
                if isinstance(step, Progress):
                    record.progress, record.message = step.fraction, step.message
                    self._update(record.job_id, "running", progress=step.fraction, message=step.message)
                    self._progress(record)
                    self._changed()
                    step = next(gen)
                elif isinstance(step, Background):
                    fut = self._pool.submit(step.fn)
                    fut.add_done_callback(lambda _f: self.pump.wake())
                    with self._lock:
                        self._suspended[record.job_id] = _Suspended(record, gen, fut)
                        self._running = None
                    if step.message:
                        record.message = step.message
                    return
                else:
                    raise CommandError(f"handler yielded {type(step).__name__}, not Background or Progress")
        except StopIteration as stop:
            self._undo_step(record, COMMANDS.get(record.command))
            self._finish(record, "completed", stop.value)
        except (CommandError, LimitError) as exc:
            self._finish(record, "error", error=str(exc))
        except Exception:
            self._finish(record, "error", error=traceback.format_exc())

    def _finish(self, record: JobRecord, status: str, outcome: Any = None, error: str = "",
                details: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._finish_locked(record, status, outcome, error, details)
        self._changed()

    def _finish_locked(self, record: JobRecord, status: str, outcome: Any, error: str,
                       cancel_details: dict[str, Any] | None) -> None:
        running = self._running if self._running is not None and self._running[0] is record else None
        if running is not None:
            self._running = None
        if record.job_id in self._cancelled and status != "cancelled":
            # The cancel came while the job ran and it ended before it could be stopped (a plain handler
            # always, a generator within its last step): its changes to the scene stay; its result is
            # dropped, as the cancel's answer promised.
            how = "completed" if status == "completed" else "failed"
            why = ("it was in its last step" if running is not None and running[1]
                   else "it could not be stopped on Blender's main thread")
            status, outcome, cancel_details = "cancelled", None, {"cancel": CANCEL_NOT_POSSIBLE}
            error = (f"cancelled while running: {record.command} ran to its end ({how}) because {why}; "
                     "its result was discarded, its changes to the scene stay")
        self._cancelled.discard(record.job_id)
        reply = outcome if isinstance(outcome, Reply) else Reply(outcome)
        result, details = reply.result, reply.details
        if cancel_details:
            details = {**(details or {}), **cancel_details}
        if record.checkpoint:
            details = {**(details or {}), "checkpoint": record.checkpoint}
        try:
            size = len(json.dumps({"r": result, "d": details}, default=str))
        except (TypeError, ValueError):
            result, size = repr(result), 0
        if size > MAX_RESULT_BYTES:
            status, result, details = "error", None, None
            error = (f"the result is {size} bytes, over the bus limit of {MAX_RESULT_BYTES}: "
                     "return less (page it) or write it to a file and return the path")
        record.status, record.error, record.finished = status, error, time.time()
        if record.progress is not None:
            self._progress(None)
        self._remember(record)
        measured = size if 0 < size <= MAX_RESULT_BYTES else None  # not for a repr()'d or dropped result
        self._update(record.job_id, status, result=result, error=error, details=details, result_bytes=measured)

    def _update(self, job_id: str, status: str, result: Any = None, error: str = "", progress: float | None = None,
                message: str | None = None, details: dict[str, Any] | None = None,
                result_bytes: int | None = None) -> None:
        if self.client is not None:
            self.client.job_update(job_id, status, result=result, error=error, progress=progress, message=message,
                                   details=details, result_bytes=result_bytes)

    def _progress(self, record: JobRecord | None) -> None:
        if self.on_progress is not None:
            try:
                self.on_progress(record)
            except Exception:
                log.exception("on_progress failed")

    def _remember(self, record: JobRecord) -> None:
        if record not in self.recent:
            self.recent.append(record)

    def _changed(self) -> None:
        self.dirty = True
        if self.on_change is not None:
            try:
                self.on_change()
            except Exception:
                log.exception("on_change failed")


def _command_of(payload: dict[str, Any]) -> str:
    if payload.get("message_type") == "job_dispatch":
        return "job_dispatch"
    return str(payload.get("command") or payload.get("message_type") or "?")
