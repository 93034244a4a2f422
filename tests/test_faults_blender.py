"""Faults with a real headless Blender worker: cancel, server restart mid-job, token expiry, kill -9 mid-job."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.blender_worker import Worker
from tests.helpers import ServerProcess, bus_client, send, start_fresh, tool_json, wait_online
from tests.test_dispatch import call, style_a

pytestmark = [pytest.mark.blender, pytest.mark.anyio]


async def final(client, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rec in client.collector.records:
            p = rec["payload"]
            if p.get("job_id") == job_id and p.get("status") in ("completed", "error", "cancelled"):
                return p
        await asyncio.sleep(0.05)
    raise AssertionError(f"no final update for {job_id}")


def job(job_id: str, script: str) -> dict:
    return {"message_type": "job_dispatch", "job_id": job_id, "script": script}


@contextlib.contextmanager
def own_server_and_worker(tmp_path: Path, worker_uuid: str, **env: str) -> Iterator[tuple[ServerProcess, Worker]]:
    """A server of the test's own (to restart, stop or configure) and a headless worker on it; both go after."""
    srv = start_fresh(tmp_path / "srv", **env)
    w = Worker(srv.url, tmp_path / "user", worker_uuid)
    try:
        yield srv, w
    finally:
        w.stop()
        srv.stop()


async def test_cancel_queued_and_running_jobs(server, tmp_path):
    w = Worker(server.url, tmp_path / "user", "blender-cancel-01")
    try:
        async with bus_client(server.url, uuid="cx-llm") as llm:
            await wait_online(llm, "blender-cancel-01", timeout=90)
            await send(llm, target_uuid="blender-cancel-01", from_uuid="cx-llm",
                       payload=job("cx-running", "import time\ntime.sleep(2.5)\nprint('finished anyway')"))
            await asyncio.sleep(0.7)
            await send(llm, target_uuid="blender-cancel-01", from_uuid="cx-llm", payload=job("cx-queued", "print(1)"))
            await asyncio.sleep(0.3)
            queued = tool_json(await llm.call_tool("blender_cancel_job", {"job_id": "cx-queued"}))
            running = tool_json(await llm.call_tool("blender_cancel_job", {"job_id": "cx-running"}))
            assert queued["status"] == running["status"] == "cancel_requested"
            q = await final(llm, "cx-queued", 10)
            assert q["status"] == "cancelled" and "before it started" in q["error"]
            r = await final(llm, "cx-running", 20)
            assert r["status"] == "cancelled" and "while running" in r["error"]
            unknown = tool_json(await llm.call_tool("blender_cancel_job", {"job_id": "no-such-job"}))
            assert unknown["error"] == "unknown_job"
    finally:
        w.stop()


async def test_a_reply_made_during_a_server_restart_reaches_its_originator(tmp_path):
    with own_server_and_worker(tmp_path, "blender-restart-02") as (srv, _):
        async with bus_client(srv.url, uuid="rs-orig") as llm:
            await wait_online(llm, "blender-restart-02", timeout=90)
            await send(llm, target_uuid="blender-restart-02", from_uuid="rs-orig",
                       payload=job("rs-job", "import time\ntime.sleep(3)\nprint('survived')"))
            await asyncio.sleep(0.5)
            srv.stop()  # the job is running in Blender; its reply has nowhere to go
        await asyncio.sleep(0.5)
        srv.start()
        async with bus_client(srv.url, uuid="rs-orig") as llm:  # the originator comes back under its uuid
            update = await final(llm, "rs-job", 60)
            assert update["status"] == "completed" and update["result"] == "survived\n"
            assert "blender-restart-02" in [c["uuid"] for c in tool_json(
                await llm.call_tool("blender_list_available_clients", {}))["persistent"] if c["online"]]


async def test_access_token_expiring_during_a_long_connection(tmp_path):
    with own_server_and_worker(tmp_path, "blender-ttl-01", BLENDER_MCP_ACCESS_TTL="3") as (srv, w):
        api_token = srv.cli("token", "create", "demo").stdout.strip()  # the test's own client must not expire
        async with bus_client(srv.url, token=api_token, uuid="ttl-llm") as llm:
            await wait_online(llm, "blender-ttl-01", timeout=90)
        await asyncio.sleep(10)  # three access-token lifetimes of the worker's login
        async with bus_client(srv.url, token=api_token, uuid="ttl-llm-2") as llm:
            entry = await wait_online(llm, "blender-ttl-01", timeout=10)
            assert entry["online"]
            await send(llm, target_uuid="blender-ttl-01", from_uuid="ttl-llm-2", payload=job("ttl-job", "print('fresh')"))
            assert (await final(llm, "ttl-job", 30))["result"] == "fresh\n"
        assert "reconnecting" not in w.log()  # refreshed in place, the connection never dropped


async def test_killing_blender_mid_job_gives_target_lost(server, tmp_path):
    w = Worker(server.url, tmp_path / "user", "blender-doomed-01", username="alice", password="alice-pw")
    try:
        async with bus_client(server.url, username="alice", password="alice-pw", uuid="k-watch") as watch:
            await wait_online(watch, "blender-doomed-01", timeout=90)
        async with await style_a(server.url, "alice", "alice-pw") as client:
            task = asyncio.create_task(call(client, "blender_execute_code",
                                            {"code": "import time\ntime.sleep(30)", "_timeout": 60}))
            await asyncio.sleep(1.5)
            w.proc.send_signal(signal.SIGKILL)
            started = time.monotonic()
            lost = await asyncio.wait_for(task, 30)
            assert lost["status"] == "target_lost" and lost["target_uuid"] == "blender-doomed-01"
            assert time.monotonic() - started < 15
    finally:
        w.stop()


async def test_server_shutdown_ends_waiting_calls_with_a_definite_status(tmp_path):
    with own_server_and_worker(tmp_path, "blender-shutdown-01") as (srv, _):
        async with bus_client(srv.url, uuid="sd-watch") as watch:
            await wait_online(watch, "blender-shutdown-01", timeout=90)
        async with await style_a(srv.url) as client:
            task = asyncio.create_task(call(client, "blender_execute_code",
                                            {"code": "import time\ntime.sleep(4)", "_timeout": 60}))
            await asyncio.sleep(1.0)
            srv.proc.send_signal(signal.SIGTERM)
            answer = await asyncio.wait_for(task, 15)
            assert answer["status"] == "cancelled" and "shutting down" in answer["error"] and answer["job_id"]
        assert srv.proc.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after a clean stop


async def test_a_dropped_network_recovers_and_loses_nothing(server, tmp_path):
    from tests.tcp_proxy import CuttableProxy

    proxy = await CuttableProxy(server.port).start()
    w = Worker(proxy.url, tmp_path / "user", "blender-netdrop-01")
    try:
        async with bus_client(server.url, uuid="nd-llm") as llm:
            await wait_online(llm, "blender-netdrop-01", timeout=90)
            await send(llm, target_uuid="blender-netdrop-01", from_uuid="nd-llm", payload=job("nd-1", "print(1)"))
            assert (await final(llm, "nd-1", 30))["result"] == "1\n"
            proxy.cut()
            await wait_online(llm, "blender-netdrop-01", online=False, timeout=20)
            answer = await send(llm, target_uuid="blender-netdrop-01", from_uuid="nd-llm",
                                payload=job("nd-2", "print('sent while cut off')"))
            assert answer["status"] == "queued"
            update = await final(llm, "nd-2", 60)  # reconnected by itself, the queued job ran
            assert update["result"] == "sent while cut off\n"
    finally:
        w.stop()
        await proxy.stop()


async def test_a_worker_frozen_past_its_pings_comes_back_within_a_heartbeat(server, tmp_path):
    """SIGSTOP a worker until the server marks it offline (two missed pings) while its stream stays open;
    after SIGCONT it must be online again within one heartbeat (3 s), not wait for its stream to drop."""
    import os

    w = Worker(server.url, tmp_path / "user", "blender-frozen-01")
    try:
        async with bus_client(server.url, uuid="frozen-llm") as llm:
            await wait_online(llm, "blender-frozen-01", timeout=90)
            os.kill(w.proc.pid, signal.SIGSTOP)
            try:
                offline = await wait_online(llm, "blender-frozen-01", online=False, timeout=30)
            finally:
                os.kill(w.proc.pid, signal.SIGCONT)
            resumed = time.monotonic()
            assert offline["online"] is False
            await wait_online(llm, "blender-frozen-01", timeout=8)
            back_after = time.monotonic() - resumed
            update = await final_after_send(llm, "blender-frozen-01", "frozen-job-1", "print('alive')")
    finally:
        w.stop()
    assert back_after < 6, back_after  # one heartbeat (3 s) and the round trip
    assert update["result"] == "alive\n"


async def final_after_send(llm, target: str, job_id: str, script: str) -> dict:
    await send(llm, target_uuid=target, from_uuid=llm.registration["client_uuid"], payload=job(job_id, script))
    return await final(llm, job_id, timeout=30)
