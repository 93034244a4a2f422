"""Limits and bad input, each answered with a structured error; random arguments to every tool."""

from __future__ import annotations

import asyncio
import time
from typing import get_args

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blender_mcp_addon.protocol.answers import DISPATCH_KEYS, DispatchStatus, ErrorCode, read_answer
from blender_mcp_addon.protocol.catalog import COMMANDS
from tests.helpers import ServerProcess, bus_client, free_port, login, send, start_fresh, tool_json
from tests.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("limited"), free_port(), env={
        "BLENDER_MCP_MESSAGES_PER_MINUTE": "8", "BLENDER_MCP_MAX_CLIENTS_PER_USER": "3",
        "BLENDER_MCP_OFFLINE_MAX_RECORDS": "2"}).start()
    yield srv
    srv.stop()


async def test_limits_answer_with_structured_errors(limited):
    base = limited.url
    async with bus_client(base, uuid="lim-a") as a, bus_client(base, uuid="lim-b", persistent=True):
        pass  # lim-b is now offline and persistent
    async with bus_client(base, uuid="lim-a") as a, bus_client(base, uuid="lim-c"):
        too_many = tool_json(await a.call_tool("blender_register_client", {"client_uuid": "lim-d", "client_type": "llm"}))
        assert too_many["error"] == "too_many_clients" and "limit 3" in too_many["message"]
        answers = [await send(a, target_uuid="lim-b", from_uuid="lim-a", payload={"n": i}) for i in range(3)]
        assert [r["status"] for r in answers[:2]] == ["queued", "queued"]
        assert answers[2]["error"] == "outbox_full"  # the offline bound: the sender is told, nothing silently dropped
        answers = [await send(a, target_uuid="lim-a", payload={"n": i}) for i in range(6)]
        limited_answers = [r for r in answers if r.get("error") == "rate_limited"]
        assert limited_answers and limited_answers[0]["retry_after"] >= 1


BUS_TOOLS = {
    "blender_register_client": ["client_uuid", "client_type", "is_persistent", "capabilities", "group_id", "label"],
    "blender_unregister_client": ["client_uuid"],
    "blender_list_available_clients": [],
    "blender_send_message": ["payload", "from_uuid", "target_uuid", "group_id", "client_type", "priority"],
    "blender_job_update": ["job_id", "status", "result", "error", "progress", "message", "details", "from_uuid"],
    "blender_job_updates": ["updates"],
    "blender_cancel_job": ["job_id"],
    "blender_heartbeat": ["client_uuid"],
}
DISPATCH_TOOLS = {c.tool_name for c in COMMANDS}
BUS_ERROR_CODES = {v for k, v in vars(ErrorCode).items() if k.isupper()}
TOOLS = {**BUS_TOOLS, **{c.tool_name: [p.name for p in c.params] + ["target_uuid", "_timeout"] for c in COMMANDS}}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10)


@st.composite
def tool_calls(draw):
    name = draw(st.sampled_from(sorted(TOOLS)))
    keys = draw(st.lists(st.sampled_from(TOOLS[name] or ["x"]) | st.text(min_size=1, max_size=8), max_size=5))
    return name, {k: draw(json_values) for k in keys}


def test_random_arguments_to_every_tool_get_structured_answers(server):
    token = login(server.url)["access_token"]

    async def run(calls):
        transport = StreamableHttpTransport(url=f"{server.url}/mcp", headers={"Authorization": f"Bearer {token}"})
        async with Client(transport, timeout=30) as client:
            for name, args in calls:
                result = await client.call_tool(name, args, raise_on_error=False)
                answer = read_answer(result)
                if result.is_error:  # the tool's schema refused it: a validation message
                    assert answer["error"] == ErrorCode.TOOL_ERROR, (name, args, answer)
                    assert answer["message"] and "Traceback" not in answer["message"], (name, args, answer)
                elif name in DISPATCH_TOOLS:
                    assert set(DISPATCH_KEYS) <= set(answer), (name, args, answer)
                    assert answer["status"] in get_args(DispatchStatus), (name, args, answer)
                elif answer.get("status") == "error":
                    assert answer["error"] in BUS_ERROR_CODES and answer["message"], (name, args, answer)
                else:
                    assert "status" in answer or {"persistent", "ephemeral"} <= set(answer), (name, args, answer)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(tool_calls(), min_size=1, max_size=6))
    def fuzz(calls):
        asyncio.run(run(calls))

    fuzz()
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"


async def test_a_session_that_goes_quiet_is_pinged_once(server):
    """The SDK keeps a session's last answer alive until its next message; the bus pings quiet sessions."""
    proxy = await CuttableProxy(server.port).start()
    token = login(server.url)["access_token"]
    transport = StreamableHttpTransport(url=f"{proxy.url}/mcp", headers={"Authorization": f"Bearer {token}"})
    try:
        async with Client(transport, timeout=30) as client:  # never registers: the liveness pings leave it alone
            await client.list_tools()
            for _ in range(6):  # busy for 2.4 s: every call re-arms the 2 s timer
                await client.call_tool("blender_list_available_clients", {})
                await asyncio.sleep(0.4)
            assert proxy.downstream.count(b'"method":"ping"') == 0
            await asyncio.sleep(3)
            assert proxy.downstream.count(b'"method":"ping"') == 1
            assert tool_json(await client.call_tool("blender_list_available_clients", {}))  # still healthy
    finally:
        await proxy.stop()


def test_heap_freezer_freezes_new_sessions_and_reclaims_after_many_leave():
    import gc

    from blender_mcp_server.bus.directory import Registry
    from blender_mcp_server.gc_policy import HeapFreezer

    registry = Registry(max_clients_per_user=10, outbox_max=10, send_timeout=1)
    freezer = HeapFreezer(registry, new_streams=3, closed_streams=5)
    try:
        assert freezer.step() is None
        for i in range(3):
            registry.stream_opened(f"s{i}")
        assert freezer.step() == "young" and gc.get_freeze_count() > 0
        assert freezer.step() is None  # nothing new since
        for i in range(3):
            registry.stream_closed(f"s{i}")
        assert freezer.step() is None  # too few have left for a full pass
        for i in range(3, 5):
            registry.stream_opened(f"s{i}")
            registry.stream_closed(f"s{i}")
        assert freezer.step() == "full"
        assert freezer.step() is None
    finally:
        gc.unfreeze()


async def test_parked_job_updates_are_bounded_per_user_by_count_bytes_and_age(tmp_path):
    """Updates for an originator that left wait for it, within per-user bounds, and age out."""
    srv = start_fresh(tmp_path / "srv", BLENDER_MCP_PARKED_MAX_BYTES=str(2 * 1024 * 1024),
                      BLENDER_MCP_PARKED_MAX_RECORDS="50", BLENDER_MCP_PARKED_MAX_AGE="3")
    try:
        async with bus_client(srv.url, uuid="park-blender", client_type="blender", persistent=True) as blender:
            async with bus_client(srv.url, uuid="park-llm") as llm:
                await send(llm, target_uuid="park-blender", from_uuid="park-llm",
                           payload={"message_type": "job_dispatch", "job_id": "park-job", "script": "x = 1"})
                await blender.collector.wait_for(1)
            deadline = time.monotonic() + 15
            while True:  # the ephemeral originator leaves the bus a grace period after its session ended
                listing = tool_json(await blender.call_tool("blender_list_available_clients", {}))
                if "park-llm" not in [c["uuid"] for c in listing["ephemeral"]]:
                    break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)

            async def update(result: str) -> dict:
                return tool_json(await blender.call_tool("blender_job_update", {
                    "job_id": "park-job", "status": "running", "result": result, "from_uuid": "park-blender"}))

            answers = [await update("x" * 500_000) for _ in range(6)]
            assert [a["status"] for a in answers] == ["queued"] * 4 + ["error"] * 2, answers
            assert answers[4]["error"] == "parked_full" and answers[4]["limit_bytes"] == 2 * 1024 * 1024
            small = [await update("s") for _ in range(50)]  # the count bound, whatever the size
            assert [a["status"] for a in small].count("queued") == 46 and small[-1]["error"] == "parked_full"
            await asyncio.sleep(4.5)  # past parked_max_age: the sweep dropped them all
            assert (await update("after"))["status"] == "queued"
    finally:
        srv.stop()


async def test_what_receivers_cannot_read_is_refused_at_send_time(server):
    """fastmcp clients and the extension drop records nested ~200 deep, so the bus refuses them up front;
    capabilities are bounded like every other name."""
    def nested(depth: int) -> dict:
        value: dict = {"leaf": 1}
        for _ in range(depth - 1):
            value = {"n": value}
        return value

    async with bus_client(server.url, uuid="deep-a") as a, bus_client(server.url, uuid="deep-b"):
        ok = await send(a, target_uuid="deep-b", from_uuid="deep-a", payload=nested(60))
        assert ok["status"] == "sent", ok
        deep = await send(a, target_uuid="deep-b", from_uuid="deep-a", payload=nested(250))
        assert deep["status"] == "error" and deep["error"] == "invalid_payload" and deep["limit"] == 64
        for caps in (["c"] * 65, ["x" * 300]):
            bad = tool_json(await a.call_tool("blender_register_client", {
                "client_uuid": "deep-caps", "client_type": "blender", "capabilities": caps}))
            assert bad["status"] == "error" and bad["error"] == "invalid_arguments" and "capabilities" in bad["message"]


async def test_a_persistent_client_gone_for_long_leaves_the_listing(tmp_path):
    srv = start_fresh(tmp_path / "srv", BLENDER_MCP_PERSISTENT_MAX_OFFLINE="1.5")
    try:
        async with bus_client(srv.url, uuid="long-gone", client_type="blender", persistent=True):
            pass
        async with bus_client(srv.url) as watch:
            await asyncio.sleep(0.6)
            listing = tool_json(await watch.call_tool("blender_list_available_clients", {}))
            assert [c["uuid"] for c in listing["persistent"]] == ["long-gone"]  # offline, still listed
            await asyncio.sleep(2.5)
            listing = tool_json(await watch.call_tool("blender_list_available_clients", {}))
            assert listing["persistent"] == []
    finally:
        srv.stop()


async def test_style_b_dispatches_are_checked_against_the_catalog_like_style_a(server):
    async with (bus_client(server.url, uuid="sb-llm") as llm,
                bus_client(server.url, uuid="sb-blender", client_type="blender") as blender):
        def dispatch(job_id: str, command: str, params: dict) -> dict:
            return {"message_type": "command_dispatch", "job_id": job_id, "command": command, "params": params}

        bad = await send(llm, target_uuid="sb-blender", from_uuid="sb-llm",
                         payload=dispatch("sb-1", "render_image", {"resolution_x": 30000, "resolution_y": 30000}))
        assert bad["status"] == "error" and bad["error"] == "invalid_arguments", bad
        assert "resolution_x" in bad["message"] and bad["command"] == "render_image"
        typo = await send(llm, target_uuid="sb-blender", from_uuid="sb-llm",
                          payload=dispatch("sb-2", "get_scene_info", {"limt": 5}))
        assert typo["error"] == "invalid_arguments" and "limt" in typo["message"]
        ok = await send(llm, target_uuid="sb-blender", from_uuid="sb-llm",
                        payload=dispatch("sb-3", "render_image", {"resolution_x": 64, "resolution_y": 64}))
        own = await send(llm, target_uuid="sb-blender", from_uuid="sb-llm",
                         payload=dispatch("sb-4", "a_command_of_my_own", {"anything": [1, 2]}))
        assert ok["status"] == "sent" and own["status"] == "sent"  # not the catalog's: for the receiver to judge
        records = await blender.collector.wait_for(2)
        await asyncio.sleep(0.3)
        assert [r["payload"]["job_id"] for r in records] == ["sb-3", "sb-4"]
