"""The extension's bus client (bpy-free) against a real server: replies piled up go out in one batch."""

from __future__ import annotations

import asyncio
import time

import pytest

from blender_mcp_addon.client.auth import TokenKeeper
from blender_mcp_addon.client.bus_client import BusClient, ClientConfig
from tests.helpers import bus_client

pytestmark = pytest.mark.anyio


async def test_queued_replies_go_out_together_and_a_malformed_one_loses_only_itself(server):
    base = server.url
    async with bus_client(base, uuid="bc-llm") as llm:
        client = BusClient(ClientConfig(server_url=base, client_uuid="bc-blender", client_type="blender"),
                           TokenKeeper(base, username="demo", password="demo"), on_record=lambda *_: None)
        # Queued before the connection exists, so all three travel in the first batch. Jobs the store never
        # knew are broadcast (spec fallback), so bc-llm hears them.
        client.job_update("bc-1", "completed", result="one")
        client.job_update("bc-2", "completed", details="not an object")  # type: ignore[arg-type]
        client.job_update("bc-3", "completed", result="three")
        client.start()
        try:
            replies = await llm.collector.wait_for(2, timeout=15)
            await asyncio.sleep(0.5)
            assert sorted(r["payload"]["job_id"] for r in llm.collector.records) == ["bc-1", "bc-3"]
            deadline = time.monotonic() + 5
            while client.pending_updates() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert client.pending_updates() == 0
            assert [r["payload"]["result"] for r in replies] == ["one", "three"]  # in order
        finally:
            await asyncio.to_thread(client.stop)


async def test_tool_calls_reuse_their_connection(server):
    """The SDK closes a POST's SSE answer before its last chunk, which cost each job update and heartbeat
    a new TCP connection (client/keepalive.py): now they share the connections of the pool."""
    from tests.tcp_proxy import CuttableProxy

    proxy = await CuttableProxy(server.port).start()
    client = BusClient(ClientConfig(server_url=proxy.url, client_uuid="bc-reuse", client_type="blender",
                                    list_clients=False),
                       TokenKeeper(proxy.url, username="demo", password="demo"), on_record=lambda *_: None)
    client.start()
    try:
        deadline = time.monotonic() + 30
        while client.state.status != "connected" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert client.state.status == "connected", client.state.describe()
        before = proxy.connections
        for i in range(20):  # one at a time: each is its own blender_job_updates call
            client.job_update(f"reuse-{i}", "completed", result=i)
            deadline = time.monotonic() + 5
            while client.pending_updates() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.02)
        assert proxy.connections - before <= 2, f"{proxy.connections - before} new connections for 20 calls"
    finally:
        await asyncio.to_thread(client.stop)
        await proxy.stop()


async def test_the_client_list_is_fetched_only_while_asked_for(server, monkeypatch):
    """By default (a headless worker) a heartbeat is the only call an idle client makes; the window's panel
    asks for the bus's client list only while it is drawn (`list_clients` as a callable)."""
    from blender_mcp_addon.client import bus_client as module
    from tests.tcp_proxy import CuttableProxy

    monkeypatch.setattr(module, "HEARTBEAT_SECONDS", 0.2)
    proxy = await CuttableProxy(server.port).start()
    looking = [False]
    client = BusClient(ClientConfig(server_url=proxy.url, client_uuid="bc-listing", client_type="blender",
                                    list_clients=lambda: looking[0]),
                       TokenKeeper(proxy.url, username="demo", password="demo"), on_record=lambda *_: None)
    assert ClientConfig(server_url=proxy.url, client_uuid="x").list_clients is False
    client.start()
    try:
        deadline = time.monotonic() + 30
        while client.state.status != "connected" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert client.state.status == "connected", client.state.describe()
        proxy.upstream.clear()
        await asyncio.sleep(2.0)
        idle = bytes(proxy.upstream)
        assert idle.count(b'"blender_heartbeat"') >= 2, idle.decode(errors="replace")[-1000:]
        assert b"blender_list_available_clients" not in idle and not client.state.clients
        looking[0] = True
        deadline = time.monotonic() + 10
        while not client.state.clients and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        # (the module's other tests' clients may still be in their grace period on the shared server)
        assert "bc-listing" in [c["uuid"] for c in client.state.clients] and client.state.listed_at > 0
    finally:
        await asyncio.to_thread(client.stop)
        await proxy.stop()
