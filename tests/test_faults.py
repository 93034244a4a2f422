"""Faults with real processes: a client killed with -9, a frozen subscriber that stops reading its stream."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import ROOT, bus_client, send, start_fresh, tool_json, wait_online

pytestmark = pytest.mark.anyio


async def spawn_subscriber(base: str, uuid: str, group: str | None = None, user: str = "demo",
                           password: str = "demo", persistent: bool = False) -> asyncio.subprocess.Process:
    """A plain fastmcp client registered as a `blender` client, in its own process (so it can be killed)."""
    args = [sys.executable, str(ROOT / "tests/spec_clients/subscriber.py"), base, uuid] + ([group] if group else [])
    env = {**os.environ, "BUS_USER": user, "BUS_PASSWORD": password, "BUS_PERSISTENT": "1" if persistent else "0"}
    proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line.strip() == b"ready"
    return proc


async def test_killed_client_is_noticed_quickly(server):
    async with bus_client(server.url, uuid="k9-watch") as watch:
        proc = await spawn_subscriber(server.url, "k9-victim")
        await wait_online(watch, "k9-victim")
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        started = time.monotonic()
        while True:
            listing = tool_json(await watch.call_tool("blender_list_available_clients", {}))
            if "k9-victim" not in [c["uuid"] for c in listing["ephemeral"]]:
                break
            assert time.monotonic() - started < 15, "a killed client must leave the bus within 15 s"
            await asyncio.sleep(0.2)
        res = await send(watch, target_uuid="k9-victim", from_uuid="k9-watch", payload={})
        assert res["error"] == "unknown_target"


async def test_frozen_subscriber_never_slows_the_sender_or_its_peers(server):
    """A SIGSTOPped subscriber stops reading its stream; group sends must keep flowing to the healthy peer."""
    async with (bus_client(server.url, uuid="st-sender") as sender,
                bus_client(server.url, uuid="st-healthy", client_type="blender", group_id="st-group") as healthy):
        stuck = await spawn_subscriber(server.url, "st-stuck", "st-group")
        try:
            await wait_online(sender, "st-stuck")
            os.kill(stuck.pid, signal.SIGSTOP)
            blob = "x" * 32_000
            slowest = 0.0
            for n in range(400):
                t0 = time.monotonic()
                res = await send(sender, group_id="st-group", from_uuid="st-sender", payload={"n": n, "blob": blob})
                slowest = max(slowest, time.monotonic() - t0)
                assert res["status"] in ("sent", "partial"), res
            records = await healthy.collector.wait_for(400, timeout=60)
            assert [r["payload"]["n"] for r in records] == list(range(400))
            assert slowest < 2.0, f"a send took {slowest:.2f} s"
            # the stuck one is detected (send timeout or ping): offline, and being ephemeral, removed
            deadline = time.monotonic() + 20
            while any(c["uuid"] == "st-stuck" and c["online"] for c in
                      tool_json(await sender.call_tool("blender_list_available_clients", {}))["ephemeral"]):
                assert time.monotonic() < deadline, "the frozen subscriber was never marked offline"
                await asyncio.sleep(0.2)
        finally:
            os.kill(stuck.pid, signal.SIGKILL)
            await stuck.wait()


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):  # noqa: SIM115 - a one-shot read
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_a_frozen_persistent_subscriber_costs_the_server_a_bounded_number_of_bytes(tmp_path):
    """Flooded with 1 MB records while SIGSTOPped, it holds at most the outbox's byte bound in the server."""
    srv = start_fresh(tmp_path / "srv", BLENDER_MCP_OUTBOX_MAX_BYTES=str(8 * 1024 * 1024),
                      BLENDER_MCP_OFFLINE_MAX_BYTES=str(4 * 1024 * 1024))
    try:
        async with bus_client(srv.url, uuid="fz-sender") as sender:
            stuck = await spawn_subscriber(srv.url, "fz-stuck", persistent=True)
            try:
                await wait_online(sender, "fz-stuck")
                os.kill(stuck.pid, signal.SIGSTOP)
                before = _rss_mb(srv.proc.pid)
                blob = "x" * 1_000_000
                answers = [await send(sender, target_uuid="fz-stuck", payload={"n": n, "blob": blob})
                           for n in range(300)]
                grew = _rss_mb(srv.proc.pid) - before
                full = [a for a in answers if a.get("error") == "outbox_full"]
                assert len(full) > 250 and "bytes" in full[-1]["message"], answers[-1]
                assert grew < 150, f"the server grew by {grew:.0f} MB for one frozen subscriber"
            finally:
                os.kill(stuck.pid, signal.SIGKILL)
                await stuck.wait()
    finally:
        srv.stop()
