"""Style B in a few lines, for LLM-side Python code (spec: write-your-own-llm-client, Style B).

    async with BusSession("http://127.0.0.1:8000", username="demo", password="demo",
                          client_uuid="llm-mine") as bus:
        update = await bus.run_script("blender-demo01", "import bpy\\nprint(len(bpy.data.objects))")
        print(update["result"])            # "3\\n"
        async for record in bus.records(): # everything else addressed to you: broadcasts, progress ...
            ...

It logs in, subscribes at "debug" (so nothing is filtered away), registers,
waits for job updates with a `JobWaiter`, and unregisters on exit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from ..protocol import new_id
from ..protocol.answers import read_answer
from .auth import TokenKeeper
from .keepalive import client_factory
from .records import bus_record_of


class JobWaiter:
    """Futures keyed by job id, resolved by the `job_update` records that arrive for them."""

    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.progress: dict[str, list[dict[str, Any]]] = {}

    def register(self, job_id: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._futures[job_id] = future
        return future

    def resolve(self, record: dict[str, Any]) -> bool:
        """True if the record was a job update this waiter handled (final, or progress of a waited job)."""
        payload = record.get("payload") or {}
        if payload.get("kind") != "job_update":
            return False
        job_id = payload.get("job_id", "")
        if payload.get("status") in ("queued", "running"):
            if job_id in self._futures:
                self.progress.setdefault(job_id, []).append(payload)
                return True
            return False
        future = self._futures.pop(job_id, None)
        if future is None or future.done():
            return False
        future.set_result(payload)
        return True

    def cancel_all(self) -> None:
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()


class BusSession:
    def __init__(self, server_url: str, *, username: str | None = None, password: str | None = None,
                 token: str | None = None, client_uuid: str | None = None, client_type: str = "llm",
                 persistent: bool = False, capabilities: list[str] | None = None, group_id: str | None = None,
                 label: str | None = None):
        self.keeper = TokenKeeper(server_url, username=username, password=password, api_token=token)
        self.client_uuid = client_uuid or new_id("llm")
        self.registration_args = {"client_uuid": self.client_uuid, "client_type": client_type,
                                  "is_persistent": persistent, "capabilities": capabilities or [],
                                  "group_id": group_id, "label": label}
        self.waiter = JobWaiter()
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._client: Any = None
        self.registration: dict[str, Any] = {}

    async def __aenter__(self) -> BusSession:
        from fastmcp import Client
        from fastmcp.client.transports import StreamableHttpTransport

        await self.keeper.ensure()
        transport = StreamableHttpTransport(url=f"{self.keeper.base}/mcp", auth=self.keeper.auth(),
                                            httpx_client_factory=client_factory)
        self._client = Client(transport, message_handler=self._handle, log_handler=_ignore, timeout=60)
        await self._client.__aenter__()
        await self._client.set_logging_level("debug")
        self.registration = await self.call("blender_register_client", self.registration_args)
        if self.registration.get("status") != "registered":
            await self._client.__aexit__(None, None, None)
            raise RuntimeError(f"could not join the bus: {self.registration}")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.waiter.cancel_all()
        try:
            await self.call("blender_unregister_client", {"client_uuid": self.client_uuid})
        finally:
            await self._client.__aexit__(*exc)

    async def call(self, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        return read_answer(await self._client.call_tool(tool, args or {}, raise_on_error=False))

    async def send(self, payload: dict[str, Any], *, target_uuid: str | None = None, group_id: str | None = None,
                   client_type: str | None = None, priority: str | int = "info") -> dict[str, Any]:
        return await self.call("blender_send_message", {
            "payload": payload, "from_uuid": self.client_uuid, "target_uuid": target_uuid, "group_id": group_id,
            "client_type": client_type, "priority": priority})

    async def dispatch(self, target_uuid: str, payload: dict[str, Any], *, timeout: float = 60,
                       priority: str | int = "info") -> dict[str, Any]:
        """Send a job payload (a `job_id` is added) and wait for its final job_update payload."""
        job_id = payload.get("job_id") or new_id("job")
        future = self.waiter.register(job_id)
        sent = await self.send({**payload, "job_id": job_id}, target_uuid=target_uuid, priority=priority)
        if sent.get("status") == "error":
            self.waiter._futures.pop(job_id, None)
            raise RuntimeError(f"{sent.get('error')}: {sent.get('message')}")
        return await asyncio.wait_for(future, timeout)

    async def run_script(self, target_uuid: str, script: str, **kw: Any) -> dict[str, Any]:
        return await self.dispatch(target_uuid, {"message_type": "job_dispatch", "script": script}, **kw)

    async def run_command(self, target_uuid: str, command: str, params: dict[str, Any] | None = None,
                          **kw: Any) -> dict[str, Any]:
        return await self.dispatch(target_uuid, {"message_type": "command_dispatch", "command": command,
                                                 "params": params or {}}, **kw)

    async def records(self) -> AsyncIterator[dict[str, Any]]:
        """Bus records addressed to this client that were not replies to its own waited jobs."""
        while True:
            yield await self._inbox.get()

    async def _handle(self, message: Any) -> None:
        found = bus_record_of(message)
        if found is None:
            return
        record, _level = found
        if record.get("target_uuid") not in (None, self.client_uuid):
            return
        if not self.waiter.resolve(record):
            self._inbox.put_nowait(record)


async def _ignore(_message: Any) -> None:
    pass
