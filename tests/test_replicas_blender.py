"""A real headless Blender (the bpy module) on a bus of replicas, connected through HAProxy: its replica is
killed mid-job, the caller on the other replica hears `target_lost`, and the Blender comes back on the
replica left by itself.

Not marked `blender`: it needs the replicas' services more than a particular Blender, so it runs once,
on the test venv's bpy, not in every Blender row."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from tests.blender_worker import Worker
from tests.helpers import bus_client, tool_json, wait_online
from tests.services import PostgresServer, RedisServer
from tests.test_replicas import Replicas

pytestmark = pytest.mark.anyio


async def test_a_blender_outlives_its_replica(tmp_path: Path, fresh_redis: RedisServer,
                                              fresh_postgres: PostgresServer, haproxy_factory):
    replicas = Replicas(tmp_path / "bus", fresh_redis, fresh_postgres, count=2).start()
    # The balancer knows replica 0 alone at first, so the Blender lands there and cannot come back before
    # the caller (straight on replica 1) has heard that it is lost.
    proxy = haproxy_factory([replicas.servers[0].port])
    proxy.wait_states({replicas.servers[0].port: "UP"})
    worker = Worker(proxy.url, tmp_path / "blender", "farm-blender")
    try:
        async with bus_client(replicas.url(1)) as caller:
            await wait_online(caller, "farm-blender", timeout=120)
            ok = tool_json(await caller.call_tool("blender_execute_code", {"code": "x = 1"}))
            assert ok["status"] == "completed", ok
            call = asyncio.create_task(caller.call_tool("blender_execute_code", {
                "code": "import time\ntime.sleep(20)", "_timeout": 60}))
            await asyncio.sleep(1.0)  # the job is running on Blender's main thread
            started = time.monotonic()
            replicas.servers[0].stop(signal.SIGKILL)
            lost = tool_json(await asyncio.wait_for(call, 30))
            assert lost["status"] == "target_lost", lost
            assert time.monotonic() - started < 15
            # Replica 1 takes the balancer's traffic: the worker reconnects and registers again by itself.
            proxy.set_backends([replicas.servers[1].port])
            await wait_online(caller, "farm-blender", timeout=90)
            again = tool_json(await caller.call_tool("blender_execute_code", {"code": "y = 2"}))
            assert again["status"] == "completed", again
    finally:
        worker.stop()
        replicas.stop()
