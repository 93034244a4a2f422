"""Replicas when their backends fail: Redis and PostgreSQL restarted under a running bus, and a replica
killed under a waiting Style A call. Each asserts that nothing reported `queued` is lost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import bus_client, send, tool_json, wait_online
from tests.services import PostgresServer, RedisServer
from tests.test_replicas import Replicas, stand_in_blender

pytestmark = pytest.mark.anyio


@pytest.fixture
def pair(tmp_path: Path, fresh_redis: RedisServer, fresh_postgres: PostgresServer) -> Iterator[Replicas]:
    """Two replicas on a Redis and a PostgreSQL of the test's own, which it may kill."""
    group = Replicas(tmp_path / "bus", fresh_redis, fresh_postgres, count=2).start()
    yield group
    group.stop()


async def _until(check, timeout: float = 20.0, pause: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if result := await check():
                return result
        except Exception:  # noqa: BLE001 - the backend is still coming back
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError("the bus did not recover")
        await asyncio.sleep(pause)


async def _listings(client, n: int) -> list[dict]:
    """`n` blender_list_available_clients at once (each reads the shared directory: fresh)."""
    return [tool_json(answer) for answer in await asyncio.gather(
        *(client.call_tool("blender_list_available_clients", {}) for _ in range(n)))]


async def test_a_redis_restart_loses_nothing_queued_and_the_bus_recovers(pair):
    async with bus_client(pair.url(1), uuid="kept-node", client_type="render", persistent=True):
        pass
    async with bus_client(pair.url(0), uuid="fault-sender") as sender:
        await wait_online(sender, "kept-node", online=False)
        await _listings(sender, 16)  # the replica's Redis clients now pool many connections, which die below
        queued = [await send(sender, from_uuid="fault-sender", target_uuid="kept-node", payload={"n": n})
                  for n in range(5)]
        assert all(q["status"] == "queued" for q in queued), queued

        pair.redis.restart(hard=True)  # kill -9: only what Redis acknowledged (and wrote to its log) survives
        pair.redis.kill()
        started = time.monotonic()
        refused = await send(sender, from_uuid="fault-sender", target_uuid="kept-node", payload={"n": "lost"})
        assert refused["status"] == "error" and refused["error"] == "backend_unavailable", refused
        assert time.monotonic() - started < 5
        pair.redis.restart()

        async def queued_again():
            answer = await send(sender, from_uuid="fault-sender", target_uuid="kept-node", payload={"n": 5})
            return answer if answer["status"] == "queued" else None

        await _until(queued_again)
        # a Redis that is back is back for every call: no pooled connection that died with it fails one
        assert all("persistent" in listing for listing in await _listings(sender, 16))
    async with bus_client(pair.url(0), uuid="kept-node", client_type="render", persistent=True) as back:
        records = await back.collector.wait_for(6)
        assert sorted(r["payload"]["n"] for r in records) == [0, 1, 2, 3, 4, 5]
        # and records cross replicas again: the listeners came back by themselves
        async with bus_client(pair.url(1), uuid="fault-sender-2") as other:
            async def crossed():
                answer = await send(other, from_uuid="fault-sender-2", target_uuid="kept-node", payload={"n": 6})
                return answer["status"] == "sent"

            await _until(crossed)
            await back.collector.wait_for(7)


async def test_a_replica_taken_for_gone_lets_go_of_a_client_that_moved_meanwhile(pair):
    """A replica that stalls past its liveness (here SIGSTOP; in the wild a Redis outage or a long pause)
    is taken for gone. A client registering again elsewhere meanwhile must still be taken from it (else it
    keeps the client as its own offline one and queues what it is sent there), and what the others kept
    meanwhile for a persistent client it still holds online must reach that client once it is back."""
    async with bus_client(pair.url(1), uuid="moved-node", client_type="render", persistent=True):
        pass
    stalled = pair.servers[1].proc
    async with bus_client(pair.url(1), uuid="stayed-node", client_type="render", persistent=True) as stayed, \
            bus_client(pair.url(0), uuid="stall-sender") as early:
        await wait_online(early, "stayed-node")
        os.kill(stalled.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(3)  # past the 1.5 s liveness: replica 0 now takes replica 1 for gone
            kept = await send(early, from_uuid="stall-sender", target_uuid="stayed-node", payload={"kept": 1})
            assert kept["status"] == "queued", kept  # its replica looks gone: kept for it
            async with bus_client(pair.url(0), uuid="moved-node", client_type="render", persistent=True) as moved:
                os.kill(stalled.pid, signal.SIGCONT)
                # the client that stayed gets what was kept for it without registering again
                assert [r["payload"] for r in await stayed.collector.wait_for(1, timeout=10)] == [{"kept": 1}]
                async with bus_client(pair.url(1), uuid="moved-sender") as sender:
                    async def delivered_there():
                        answer = await send(sender, from_uuid="moved-sender", target_uuid="moved-node", payload={})
                        return answer["status"] == "sent"

                    await _until(delivered_there, timeout=10)
                    await moved.collector.wait_for(1)
        finally:
            os.kill(stalled.pid, signal.SIGCONT)


async def test_a_postgresql_restart_answers_backend_unavailable_then_heals(pair):
    async with stand_in_blender(pair.url(1), "pg-blender"):
        async with bus_client(pair.url(0)) as caller:
            await wait_online(caller, "pg-blender")
            assert tool_json(await caller.call_tool("blender_get_scene_info", {}))["status"] == "completed"
            pair.database.kill()
            started = time.monotonic()
            down = tool_json(await caller.call_tool("blender_get_scene_info", {}))
            assert down["status"] == "backend_unavailable", down
            assert time.monotonic() - started < 8
            login = httpx.post(f"{pair.url(1)}/auth/login", json={"username": "demo", "password": "demo"},
                               timeout=15)
            assert login.status_code == 503 and login.json()["error"] == "backend_unavailable"
            pair.database.restart()

            async def works():
                return tool_json(await caller.call_tool("blender_get_scene_info", {}))["status"] == "completed"

            await _until(works)


async def test_killing_the_callers_replica_leaves_no_orphaned_job(pair):
    hold = asyncio.Event()
    async with stand_in_blender(pair.url(1), "survivor", hold=hold) as blender:
        try:
            caller_session = bus_client(pair.url(0))
            caller = await caller_session.__aenter__()
            await wait_online(caller, "survivor")
            call = asyncio.create_task(caller.call_tool("blender_get_scene_info", {"_timeout": 60}))
            records = await blender.collector.wait_for(1)
            job_id = records[0]["payload"]["job_id"]
            pair.servers[0].stop(signal.SIGKILL)
            hold.set()  # the Blender finishes the job after its caller's replica died
            with pytest.raises(Exception):  # noqa: B017 - the caller's connection died with its replica
                await asyncio.wait_for(call, 30)
            with contextlib.suppress(Exception):  # ending a session on a dead server fails as it may
                await caller_session.__aexit__(None, None, None)

            def status() -> str | None:
                with pair.database.connect() as conn:
                    row = conn.execute("SELECT status FROM jobs WHERE job_id=%s", (job_id,)).fetchone()
                return row[0] if row else None

            async def final():
                return status() in ("completed", "error", "cancelled")

            await _until(final, timeout=10)
        finally:
            pair.servers[0].start()
