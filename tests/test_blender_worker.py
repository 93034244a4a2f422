"""A real headless Blender worker with the installed zip, against the real server: Style B end to end."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid as uuid_mod

import pytest

from blender_mcp_addon.protocol.versions import PROTOCOL_VERSION, RELEASE
from tests import blenders
from tests.blender_worker import Worker
from tests.helpers import ROOT, bus_client, send, start_fresh, tool_json, wait_online

pytestmark = [pytest.mark.blender, pytest.mark.anyio]


@pytest.fixture(scope="module")
def worker(server, tmp_path_factory):
    w = Worker(server.url, tmp_path_factory.mktemp("blender-user"), "blender-it-01", "--group", "farm",
               "--capabilities", "scene,code,rendering")
    yield w
    w.stop()


async def run_job(client, target: str, script: str, priority: str = "info", timeout: float = 60) -> dict:
    job_id = f"job-{uuid_mod.uuid4().hex[:8]}"
    start = len(client.collector.records)
    res = await send(client, target_uuid=target, from_uuid=client.registration["client_uuid"], priority=priority,
                     payload={"message_type": "job_dispatch", "job_id": job_id, "script": script})
    assert res["status"] in ("sent", "queued"), res
    deadline = time.monotonic() + timeout
    while True:
        for rec in client.collector.records[start:]:
            p = rec["payload"]
            if p.get("kind") == "job_update" and p["job_id"] == job_id and p["status"] in ("completed", "error", "cancelled"):
                return p
        assert time.monotonic() < deadline, f"no final update for {job_id}"
        await asyncio.sleep(0.02)


async def test_worker_registers_and_runs_a_script(server, worker):
    async with bus_client(server.url, uuid="it-llm-1") as llm:
        entry = await wait_online(llm, "blender-it-01", timeout=90)
        assert entry["client_type"] == "blender" and entry["is_persistent"] and entry["group_id"] == "farm"
        assert entry["capabilities"] == ["scene", "code", "rendering"]
        versions = entry["versions"]  # what the worker told the server when it registered
        assert versions["addon"] == RELEASE and versions["protocol"] == PROTOCOL_VERSION
        assert versions["blender"].startswith(".".join(map(str, blenders.version())))
        assert versions["python"].count(".") == 2
        update = await run_job(llm, "blender-it-01", "import bpy\nprint(len(bpy.data.objects))")
        assert update["status"] == "completed" and update["result"] == "3\n"  # the default scene: cube, light, camera
        assert update["from_uuid"] == "blender-it-01"
        update = await run_job(llm, "blender-it-01", "import bpy\nbpy.data.objects['Cube'].name")
        assert update["details"]["value"] == "'Cube'"


async def test_a_script_that_raises_returns_an_error_with_the_traceback(server, worker):
    async with bus_client(server.url, uuid="it-llm-2") as llm:
        await wait_online(llm, "blender-it-01", timeout=90)
        update = await run_job(llm, "blender-it-01", "print('before')\nimport sys\nprint('oops', file=sys.stderr)\n1/0")
        assert update["status"] == "error"
        assert "ZeroDivisionError" in update["error"] and "Traceback" in update["error"]
        assert update["result"] == "before\n" and update["details"]["stderr"] == "oops\n"
        # the worker is still fine
        assert (await run_job(llm, "blender-it-01", "print(2)"))["result"] == "2\n"


async def test_jobs_leave_the_heap_in_priority_order(server, worker):
    """Block Blender's main thread, queue six jobs, and read the order they ran in."""
    async with bus_client(server.url, uuid="it-llm-3") as llm:
        await wait_online(llm, "blender-it-01", timeout=90)
        setup = "import bpy\nbpy.app.driver_namespace['order'] = []\nimport time\ntime.sleep(2.0)"
        blocker = asyncio.create_task(run_job(llm, "blender-it-01", setup))
        await asyncio.sleep(0.8)  # the blocker is running on the main thread now
        sent = [("debug", "d"), ("info", "i1"), ("emergency", "e"), ("warning", "w"), ("notice", "n"), ("info", "i2")]
        jobs = [asyncio.create_task(run_job(llm, "blender-it-01",
                                            f"import bpy\nbpy.app.driver_namespace['order'].append('{tag}')", prio))
                for prio, tag in sent]
        await asyncio.sleep(0.3)
        await blocker
        await asyncio.gather(*jobs)
        order = await run_job(llm, "blender-it-01", "import bpy\nprint(','.join(bpy.app.driver_namespace['order']))")
        assert order["result"].strip() == "e,w,n,i1,i2,d"


async def test_scene_command_dispatch(server, worker):
    async with bus_client(server.url, uuid="it-llm-4") as llm:
        await wait_online(llm, "blender-it-01", timeout=90)
        await send(llm, target_uuid="blender-it-01", from_uuid="it-llm-4", payload={
            "message_type": "command_dispatch", "job_id": "cmd-scene-1", "command": "get_scene_info",
            "params": {"limit": 2}})
        await send(llm, target_uuid="blender-it-01", from_uuid="it-llm-4", payload={
            "message_type": "command_dispatch", "job_id": "cmd-bad-1", "command": "no_such_command", "params": {}})
        records = await llm.collector.wait_for(2, timeout=30)
        by_job = {r["payload"]["job_id"]: r["payload"] for r in records}
        scene = by_job["cmd-scene-1"]["result"]
        assert scene["object_count"] == 3 and len(scene["objects"]) == 2 and scene["limit"] == 2
        assert {"Camera", "Cube"} == {o["name"] for o in scene["objects"]}
        assert by_job["cmd-bad-1"]["status"] == "error" and "unknown command" in by_job["cmd-bad-1"]["error"]


async def test_worker_survives_a_server_restart(fresh_server, tmp_path):
    w = Worker(fresh_server.url, tmp_path / "user", "blender-restart-01")
    try:
        async with bus_client(fresh_server.url, uuid="rs-llm") as llm:
            await wait_online(llm, "blender-restart-01", timeout=90)
        fresh_server.stop()
        time.sleep(1.0)
        fresh_server.start()
        async with bus_client(fresh_server.url, uuid="rs-llm-2") as llm:
            await wait_online(llm, "blender-restart-01", timeout=60)  # reconnected and registered again
            update = await run_job(llm, "blender-restart-01", "print('after restart')")
            assert update["result"] == "after restart\n"
    finally:
        w.stop()


async def test_sigterm_exits_cleanly_and_unregisters(server, tmp_path):
    w = Worker(server.url, tmp_path / "user", "blender-term-01", "--policy", "deny")
    async with bus_client(server.url, uuid="term-llm") as llm:
        await wait_online(llm, "blender-term-01", timeout=90)
        denied = await run_job(llm, "blender-term-01", "print('never')")
        assert denied["status"] == "error" and "policy: deny" in denied["error"]
        assert w.stop(signal.SIGTERM) == 0, w.log()[-3000:]
        listing = tool_json(await llm.call_tool("blender_list_available_clients", {}))
        assert "blender-term-01" not in [c["uuid"] for c in listing["persistent"]], "unregistered on exit"
        assert "stopped" in w.log()


async def test_style_b_helper_shrinks_the_spec_example(server, worker):
    from blender_mcp_addon.client import BusSession

    async with bus_client(server.url, uuid="it-llm-5") as watch:
        await wait_online(watch, "blender-it-01", timeout=90)
    async with BusSession(server.url, username="demo", password="demo", client_uuid="llm-helper") as bus:
        update = await bus.run_script("blender-it-01", "import bpy\nprint(len(bpy.data.objects))")
        assert update["status"] == "completed" and update["result"] == "3\n"
        scene = await bus.run_command("blender-it-01", "get_scene_info", {"limit": 1})
        assert scene["result"]["object_count"] == 3
        await bus.send({"hello": "me"}, target_uuid="llm-helper")
        record = await asyncio.wait_for(bus.records().__anext__(), 10)
        assert record["payload"] == {"hello": "me"}


async def test_the_spec_style_b_client_runs_unchanged_against_this_blender(server, worker):
    async with bus_client(server.url, uuid="it-llm-6") as watch:
        await wait_online(watch, "blender-it-01", timeout=90)
    proc = await asyncio.create_subprocess_exec(sys.executable, str(ROOT / "tests/spec_clients/style_b.py"),
                                                server.url, "blender-it-01", stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()[-2000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert result["kind"] == "job_update" and result["status"] == "completed" and result["result"] == "3\n"


async def test_the_worker_serves_the_blend_file_it_was_started_with(server, tmp_path):
    """`blender -b scene.blend -c mcp_worker ...`: the jobs see that file's scene, not the default one."""
    scene = tmp_path / "scene.blend"
    make = ("import bpy, sys\nbpy.ops.mesh.primitive_uv_sphere_add()\nbpy.context.object.name = 'Marker'\n"
            "bpy.ops.wm.save_as_mainfile(filepath=sys.argv[-1])\nimport os\nos._exit(0)\n")
    subprocess.run(blenders.script_command(make, str(scene)), check=True, capture_output=True, timeout=120,
                   env={**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "maker")})
    w = Worker(server.url, tmp_path / "user", "blender-blend-01", blend=scene)
    try:
        async with bus_client(server.url, uuid="blend-llm") as llm:
            await wait_online(llm, "blender-blend-01", timeout=90)
            update = await run_job(llm, "blender-blend-01", "import bpy\nprint(bpy.data.filepath)\n"
                                                            "print(sorted(o.name for o in bpy.data.objects))")
    finally:
        w.stop()
    assert update["result"] == f"{scene}\n['Camera', 'Cube', 'Light', 'Marker']\n", update


async def test_an_idle_worker_sends_only_its_heartbeat(server, tmp_path):
    """A headless worker has no panel: while idle it calls blender_heartbeat every 3 s and nothing else
    (it used to list the bus's clients with every beat, for a panel it does not have)."""
    from tests.tcp_proxy import CuttableProxy

    proxy = await CuttableProxy(server.port).start()
    w = Worker(proxy.url, tmp_path / "user", "blender-idle-01")
    try:
        async with bus_client(server.url, uuid="idle-llm") as llm:
            await wait_online(llm, "blender-idle-01", timeout=90)
        await asyncio.sleep(1.0)
        proxy.upstream.clear()
        await asyncio.sleep(10.0)
        sent = bytes(proxy.upstream)
    finally:
        w.stop()
        await proxy.stop()
    beats = sent.count(b'"blender_heartbeat"')
    assert 2 <= beats <= 5, beats
    assert sent.count(b'"tools/call"') == beats, sent.decode(errors="replace")[-2000:]


async def test_a_worker_refused_for_good_exits_with_the_reason(tmp_path):
    """A refusal retrying cannot mend (here: the user's bus is at its client limit) ends the worker with
    exit code 1 and the server's reason in its log, instead of a worker that sits there doing nothing."""
    srv = start_fresh(tmp_path / "server", BLENDER_MCP_MAX_CLIENTS_PER_USER="1")
    try:
        async with bus_client(srv.url, uuid="the-only-client", persistent=True):
            w = Worker(srv.url, tmp_path / "user", "blender-one-too-many")
            try:
                code = await asyncio.to_thread(w.proc.wait, 120)
            finally:
                w.stop()
    finally:
        srv.stop()
    assert code == 1, w.log()[-3000:]
    assert "(limit 1)" in w.log()
