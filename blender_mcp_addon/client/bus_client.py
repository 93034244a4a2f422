"""The embedded bus client: one thread, one asyncio loop, one fastmcp Client at a time.

Network and parsing live here, never on Blender's main thread. Records for
this client are handed to `on_record` (which queues them on the pump) without
awaiting anything: mcp 1.x runs the message handler inline, so a handler
that awaited a tool call would deadlock the client (docs/architecture.md).

Job updates go through `job_update()`, a thread-safe queue that survives
reconnects: an update made while the server is away is sent on the next session.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..asyncio_thread import declare_asyncio_thread
from ..protocol import priority_from_level
from ..protocol.answers import PERMANENT_REGISTRATION_ERRORS, ErrorCode, is_error, read_answer
from ..protocol.versions import PROTOCOL_VERSION, RELEASE, server_incompatibility
from .auth import AuthError, TokenKeeper
from .direct_call import DirectCaller
from .keepalive import client_factory
from .records import bus_record_of

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 3.0
UPDATES_PER_CALL = 64  # the server takes up to 256; 64 keeps one call's answer small
BATCH_BYTES = 1024 * 1024
READ_TIMEOUT = 45.0  # above the server's 15 s keep-alives, or the GET stream dies silently (docs/architecture.md)


@dataclass
class ClientConfig:
    server_url: str
    client_uuid: str
    client_type: str = "blender"
    is_persistent: bool = True
    label: str | None = None
    group_id: str | None = None
    capabilities: list[str] = field(default_factory=list)
    # Told to the server at registration (protocol/versions.py); the runtime adds Blender's and Python's.
    versions: dict[str, Any] = field(default_factory=lambda: {"addon": RELEASE, "protocol": PROTOCOL_VERSION})
    # Whether to refresh the panel's "On the bus" list with the next heartbeat: a bool, or asked before each
    # beat (the window asks whether its panel was drawn lately). Off by default: a headless worker, or a
    # Blender whose panel nobody looks at, must cost the server nothing while idle beyond its heartbeat.
    list_clients: bool | Callable[[], bool] = False


@dataclass
class ConnectionState:
    """What the panel shows. `status`: disconnected, connecting, connected, reconnecting, error."""

    status: str = "disconnected"
    reason: str = ""
    retry_at: float | None = None
    since: float = field(default_factory=time.time)
    clients: list[dict[str, Any]] = field(default_factory=list)
    server: dict[str, Any] = field(default_factory=dict)  # the server's versions, once registered
    listed_at: float = 0.0  # when `clients` was last fetched (the panel redraws when it changes)

    def describe(self) -> str:
        if self.status == "reconnecting" and self.retry_at:
            wait = max(0, round(self.retry_at - time.time()))
            return f"reconnecting in {wait} s" + (f" ({self.reason})" if self.reason else "")
        return f"{self.status}: {self.reason}" if self.reason else self.status


_heap_frozen = False


def freeze_heap_once() -> None:
    """Move the long-lived heap (Blender's, fastmcp's, pydantic's objects) out of the collector's sight.

    A full collection over that heap took 50-200 ms here, holding the GIL, so Blender's UI froze for
    as long (measured in the GUI test). After `gc.freeze()` full collections only walk objects made
    since, and stay short. Done once, after the first connection has imported everything.
    """
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.collect()
        gc.freeze()


class _Reconnect(Exception):
    pass


class _Fatal(Exception):
    """Stop trying: the same attempt would fail again (refused credentials, uuid owned by someone else)."""


class BusClient:
    def __init__(self, config: ClientConfig, keeper: TokenKeeper, *,
                 on_record: Callable[[int, dict[str, Any], str], None],
                 on_cancel: Callable[[str], None] | None = None,
                 on_state: Callable[[ConnectionState], None] | None = None):
        self.config = config
        self.keeper = keeper
        self._on_record = on_record
        self._on_cancel = on_cancel
        self._on_state = on_state
        self.state = ConnectionState()
        # (update, its JSON size if the runtime already measured it, else None)
        self._updates: collections.deque[tuple[dict[str, Any], int | None]] = collections.deque()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._kick: asyncio.Event | None = None
        self._direct: DirectCaller | None = None  # job updates without the SDK's plumbing (direct_call.py)

    # -- public, any thread ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        ready = threading.Event()
        self._thread = threading.Thread(target=self._thread_main, args=(ready,), name="blender-mcp-bus", daemon=True)
        self._thread.start()
        ready.wait(5)

    def stop(self, timeout: float = 5.0) -> None:
        """Unregister and disconnect; returns when the thread has ended or `timeout` passed."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def job_update(self, job_id: str, status: str, result: Any = None, error: str = "",
                   progress: float | None = None, message: str | None = None,
                   details: dict[str, Any] | None = None, result_bytes: int | None = None) -> None:
        """Queue a job update. `result_bytes`: the JSON size of `{"r": result, "d": details}` when the
        caller has measured it (the runtime does, for its result cap), so batching need not dump it again."""
        update = {"job_id": job_id, "status": status, "result": result, "error": error or "",
                  "from_uuid": self.config.client_uuid}
        if progress is not None:
            update["progress"] = max(0.0, min(1.0, float(progress)))
        if message:
            update["message"] = message
        if details:
            update["details"] = details
        size = None
        if result_bytes is not None:  # the result was measured; add the short fields and the keys
            size = result_bytes + len(json.dumps([job_id, status, error, message, update["from_uuid"]])) + 128
        self._updates.append((update, size))
        self._poke()

    def pending_updates(self) -> int:
        return len(self._updates)

    # -- the thread -----------------------------------------------------------------------------------
    def _poke(self) -> None:
        loop, kick = self._loop, self._kick
        if loop is not None and kick is not None and not loop.is_closed():
            loop.call_soon_threadsafe(kick.set)

    def _thread_main(self, ready: threading.Event) -> None:
        declare_asyncio_thread()
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._stop, self._kick = asyncio.Event(), asyncio.Event()
        ready.set()
        try:
            loop.run_until_complete(self._main())
        finally:
            if self.state.status != "error":  # an error stays on screen, with its reason, until the next connect
                self._set_state("disconnected")
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None

    def _set_state(self, status: str, reason: str = "", retry_at: float | None = None) -> None:
        clients = self.state.clients if status == "connected" else []
        self.state = ConnectionState(status, reason, retry_at, time.time(), clients, self.state.server,
                                     self.state.listed_at if status == "connected" else 0.0)
        if self._on_state:
            try:
                self._on_state(self.state)
            except Exception:
                log.exception("state callback failed")

    async def _main(self) -> None:
        assert self._stop is not None
        delay = 0.5
        while not self._stop.is_set():
            self._set_state("connecting")
            started = time.monotonic()
            try:
                await self._session()
            except _Fatal as exc:
                self._set_state("error", str(exc))
                return
            except AuthError as exc:
                self._set_state("error", str(exc))
                return
            except Exception as exc:  # network loss, server restart, a dead stream: all mean "try again"
                reason = _short(exc)
                if time.monotonic() - started > 30:
                    delay = 0.5  # the last session was healthy for a while: start backing off from scratch
                retry = delay * random.uniform(0.8, 1.2)
                self._set_state("reconnecting", reason, time.time() + retry)
                log.info("bus connection lost (%s); retrying in %.1f s", reason, retry)
                try:
                    await asyncio.wait_for(self._stop.wait(), retry)
                except TimeoutError:
                    pass
                delay = min(delay * 2, 15.0)

    async def _session(self) -> None:
        from fastmcp import Client
        from fastmcp.client.transports import StreamableHttpTransport

        assert self._stop is not None
        await self.keeper.ensure()
        transport = StreamableHttpTransport(url=f"{self.keeper.base}/mcp", auth=self.keeper.auth(),
                                            httpx_client_factory=client_factory)
        client = Client(transport, message_handler=self._handle, log_handler=_ignore_logs, timeout=READ_TIMEOUT,
                        init_timeout=15)
        self._direct = DirectCaller(f"{self.keeper.base}/mcp", self.keeper.auth(), READ_TIMEOUT)
        try:
            await self._connected(client)
        finally:
            direct, self._direct = self._direct, None
            if direct is not None:
                await direct.aclose()

    async def _connected(self, client: Any) -> None:
        assert self._stop is not None
        async with client:
            await client.set_logging_level("debug")
            await self._register(client)
            freeze_heap_once()
            self._set_state("connected")
            tasks = [asyncio.create_task(coro) for coro in
                     (self._send_updates(client), self._heartbeat(client), self._refresh_tokens(),
                      self._stop.wait())]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            # stop requested: deliver what is pending, then leave the bus cleanly
            await self._flush_updates(client, deadline=time.monotonic() + 2)
            try:
                await asyncio.wait_for(client.call_tool("blender_unregister_client",
                                                        {"client_uuid": self.config.client_uuid}), 3)
            except Exception:
                pass

    async def _register(self, client: Any) -> None:
        c = self.config
        result = await client.call_tool("blender_register_client", {
            "client_uuid": c.client_uuid, "client_type": c.client_type, "is_persistent": c.is_persistent,
            "capabilities": c.capabilities, "group_id": c.group_id or None, "label": c.label or None,
            "versions": c.versions,
        }, raise_on_error=False)
        answer = read_answer(result)
        if answer.get("status") != "registered":
            message = answer.get("message") or str(answer)
            if answer.get("error") in PERMANENT_REGISTRATION_ERRORS:
                raise _Fatal(message)
            raise _Reconnect(message)
        if why := server_incompatibility(answer):
            raise _Fatal(why)
        self.state.server = answer.get("server") or {}
        if not self.state.server:
            log.warning("the server did not say its version; it predates the version exchange")
        else:
            log.info("registered with server %s (bus protocol %s)", self.state.server.get("version"),
                     self.state.server.get("protocol"))

    async def _handle(self, message: Any) -> None:
        """The message handler: queue and return, never await anything slow (see module docstring)."""
        found = bus_record_of(message)
        if found is None:
            return
        data, level = found
        target = data.get("target_uuid")
        if target and target != self.config.client_uuid:
            return  # stamped for another client
        payload = data.get("payload") or {}
        if payload.get("message_type") == "cancel_job" and self._on_cancel:
            self._on_cancel(str(payload.get("job_id", "")))
            return
        self._on_record(int(priority_from_level(level, data.get("priority"))), data, level)

    async def _send_updates(self, client: Any) -> None:
        assert self._kick is not None
        while True:
            await self._flush_updates(client)
            self._kick.clear()
            if not self._updates:
                await self._kick.wait()

    async def _flush_updates(self, client: Any, deadline: float | None = None) -> None:
        """Send queued job updates: all that have piled up, in one `blender_job_updates` call.

        A tool call costs the server and this thread about 2 ms each here, more than the job itself for
        most commands; one call per reply capped a busy worker at ~100 jobs/s. One call at a time
        also keeps each job's updates in order.
        """
        while self._updates:
            if deadline is not None and time.monotonic() > deadline:
                return
            batch = self._next_batch()
            try:
                outcomes = await self._send_batch(client, [update for update, _ in batch])
            except BaseException:
                # back to the front for the next session; a repeat is harmless (waiters take the first final)
                self._updates.extendleft(reversed(batch))
                raise
            for (update, _), outcome in zip(batch, outcomes, strict=False):
                if outcome.get("status") == "error":
                    log.warning("job_update for %s refused: %s", update.get("job_id"), outcome.get("message"))

    async def _send_batch(self, client: Any, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        result: Any = None
        if self._direct is not None:
            result = await self._direct.call(client, "blender_job_updates", {"updates": batch})
        if result is None:  # not sent directly, or its answer unreadable: a repeat is harmless (see above)
            result = await client.call_tool("blender_job_updates", {"updates": batch}, raise_on_error=False)
        answer = read_answer(result)
        if answer.get("status") == "ok":
            return answer.get("results", [])
        # The whole call was refused (one malformed update fails the schema): send them one by one, so
        # only the bad one is lost. Resending a refused update would not help.
        log.warning("job updates refused as a batch (%s); sending them one by one", result.content)
        outcomes = []
        for update in batch:
            single = await client.call_tool("blender_job_update", update, raise_on_error=False)
            outcomes.append(read_answer(single))
        return outcomes

    def _next_batch(self) -> list[tuple[dict[str, Any], int | None]]:
        """The oldest updates, at least one, within UPDATES_PER_CALL and BATCH_BYTES (one result may be 900 KB,
        runtime.MAX_RESULT_BYTES; several in one request would pass the transport's 4 MiB body limit)."""
        batch = [self._updates.popleft()]
        size = _size(*batch[0])
        while self._updates and len(batch) < UPDATES_PER_CALL:
            size += _size(*self._updates[0])
            if size > BATCH_BYTES:
                break
            batch.append(self._updates.popleft())
        return batch

    async def _heartbeat(self, client: Any) -> None:
        closed_streak = 0
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            beat = read_answer(await client.call_tool("blender_heartbeat", {"client_uuid": self.config.client_uuid},
                                                      raise_on_error=False))
            status = beat.get("status")
            if status == "replaced":
                raise _Fatal("another session registered this client uuid")
            if is_error(beat, ErrorCode.UNKNOWN_CLIENT) or status == ErrorCode.UNKNOWN_CLIENT:  # the latter: 0.1.0
                await self._register(client)  # the server restarted or swept us: join again
                continue
            closed_streak = 0 if beat.get("stream_open") else closed_streak + 1
            if closed_streak >= 2:
                raise _Reconnect("the server no longer sees this client's event stream")
            if not self._wants_listing():
                continue
            try:
                listing = read_answer(await client.call_tool("blender_list_available_clients", {}))
                self.state.clients = listing.get("persistent", []) + listing.get("ephemeral", [])
                self.state.listed_at = time.time()
            except Exception:
                pass

    def _wants_listing(self) -> bool:
        want = self.config.list_clients
        try:
            return bool(want() if callable(want) else want)
        except Exception:  # a broken callback must not end the heartbeat
            log.exception("list_clients callback failed")
            return False

    async def _refresh_tokens(self) -> None:
        while True:
            await asyncio.sleep(min(max(self.keeper.seconds_until_refresh(), 1.0), 3600))
            if self.keeper.seconds_until_refresh() <= 0:
                await self.keeper.ensure()


def _size(update: dict[str, Any], known: int | None) -> int:
    return known if known is not None else len(json.dumps(update, default=str))


async def _ignore_logs(_message: Any) -> None:
    """Bus records are handled by the message handler; other server logs are not the artist's business."""


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "connect" in text.lower() and "refused" in text.lower() or "ConnectError" in type(exc).__name__:
        return "server unreachable"
    return text.splitlines()[0][:160]
