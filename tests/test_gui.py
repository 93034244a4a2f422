"""The GUI path in a real Blender window under Xvfb: panel, operators, the timer-driven drainer, screenshots.

Uses `BLENDER_GUI` (shell words, e.g. a chroot launcher: "/var/cache/blender-mcp/chroots/sid.run blender")
or else the `blender` on PATH (Debian's 3.4 here, installed by ./bmcp test). Blender 4.2+ installs the
zip as an artist does (Preferences > Install from Disk: `package_install_files` in the window), older
ones through the legacy add-on installer. The panel's pictures go to test-output/gui/blender-X.Y.Z/ for
people; the assertions are on Blender's state.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from blender_mcp_addon.protocol.answers import read_answer
from tests.blender_worker import extension_zip
from tests.blenders import version_of
from tests.helpers import ROOT, bus_client, send, tool_json, wait_online
from tests.test_dispatch import call, style_a

pytestmark = [pytest.mark.gui, pytest.mark.anyio]
BLENDER_GUI = shlex.split(os.environ["BLENDER_GUI"]) if os.environ.get("BLENDER_GUI") else (
    [shutil.which("blender")] if shutil.which("blender") else None)


async def wait_file(path: Path, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            log = (path.parent / "blender.log").read_text(errors="replace")[-3000:]
            raise AssertionError(f"Blender exited early ({proc.returncode}): {log}")
        assert time.monotonic() < deadline, f"no {path.name} within {timeout} s"
        await asyncio.sleep(0.1)


async def final_updates(client, job_ids: set[str], timeout: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while True:
        done = {r["payload"]["job_id"]: r["payload"] for r in client.collector.records
                if r["payload"].get("kind") == "job_update" and r["payload"]["status"] in ("completed", "error")}
        if job_ids <= set(done):
            return done
        assert time.monotonic() < deadline, f"{len(job_ids - set(done))} jobs unanswered"
        await asyncio.sleep(0.05)


async def object_names(client) -> set[str]:
    scene = await call(client, "blender_get_scene_info")
    assert scene["status"] == "completed", scene
    return {o["name"] for o in json.loads(scene["result"])["objects"]}


async def undo_in_the_window(client, out: Path, proc: subprocess.Popen) -> None:
    """Each scene-changing job is one undo step: the artist's Ctrl-Z takes back exactly what the model did."""
    made = await call(client, "blender_execute_code", {"code": (
        "bpy.ops.mesh.primitive_cube_add(location=(4, 4, 0))\nbpy.context.active_object.name = 'ModelMade'")})
    assert made["status"] == "completed", made
    await call(client, "blender_execute_code", {"code": "bpy.data.objects['Cube'].location.x = 2.5"})
    assert "ModelMade" in await object_names(client)
    (out / "go-ctrl-z").touch()
    await wait_file(out / "phase-ctrl-z-typed", 30, proc)
    deadline = time.monotonic() + 10
    moved = "print(round(bpy.data.objects['Cube'].location.x, 2))"
    while True:  # the key press is handled by Blender's event loop: soon, not at once
        where = await call(client, "blender_get_object_info", {"name": "Cube"})
        if json.loads(where["result"])["location"][0] == 0.0:
            break
        assert time.monotonic() < deadline, "Ctrl-Z did not take back the last job"
        await asyncio.sleep(0.2)
    assert "ModelMade" in await object_names(client)  # one step: only the last job was taken back
    undone = await call(client, "blender_undo")
    assert undone["status"] == "completed", undone
    assert "ModelMade" not in await object_names(client)
    redone = await call(client, "blender_redo", {"steps": 2})
    assert redone["status"] == "completed" and json.loads(redone["result"])["redo"] == 2, redone
    assert "ModelMade" in await object_names(client)
    assert (await call(client, "blender_execute_code", {"code": moved}))["result"] == "2.5\n"
    # a checkpoint taken and restored in the window: the file reloads under the running add-on
    made = await call(client, "blender_checkpoint", {"name": "gui-cp"})
    assert made["status"] == "completed", made
    await call(client, "blender_execute_code", {"code": "bpy.data.objects.remove(bpy.data.objects['ModelMade'])"})
    assert "ModelMade" not in await object_names(client)
    restored = await call(client, "blender_restore_checkpoint", {"name": "gui-cp"})
    assert restored["status"] == "completed", restored
    assert "ModelMade" in await object_names(client)  # and the drainer still runs jobs after the reload


@pytest.mark.skipif(not BLENDER_GUI or not shutil.which("xvfb-run"), reason="needs blender and xvfb-run on PATH")
async def test_panel_and_timer_driven_drainer_in_a_real_window(server, tmp_path):
    env = {**os.environ, "BLENDER_USER_SCRIPTS": str(tmp_path / "scripts"), "BLENDER_USER_CONFIG": str(tmp_path / "config"),
           "BLENDER_USER_RESOURCES": str(tmp_path / "resources")}
    out = ROOT / "test-output" / "gui" / f"blender-{'.'.join(map(str, version_of([*BLENDER_GUI, '--version'], env)))}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    # Saved preferences with the splash off: no first-run Quick Setup over the window in the pictures.
    subprocess.run([*BLENDER_GUI, "-b", "--factory-startup", "--python-expr",
                    "import bpy; bpy.context.preferences.view.show_splash = False; bpy.ops.wm.save_userpref()"],
                   env=env, check=True, capture_output=True, timeout=120)
    log = open(out / "blender.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", *BLENDER_GUI,
                             "--python", str(ROOT / "tests/gui/gui_driver.py"), "--", extension_zip(), server.url,
                             str(out)], stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)  # its own process group: Blender and Xvfb go together
    try:
        await wait_file(out / "phase-connected", 180, proc)
        async with bus_client(server.url, uuid="gui-llm") as llm:
            await wait_online(llm, "blender-gui-01")
            # Style A through the timer-driven drainer
            async with await style_a(server.url) as client:
                scene = await call(client, "blender_get_scene_info")
                assert scene["status"] == "completed" and json.loads(scene["result"])["object_count"] == 3
                code = await call(client, "blender_execute_code", {"code": "import bpy\nprint(bpy.app.background)"})
                assert code["result"] == "False\n"  # a real window, not blender -b
                # look: the artist's 3D view grabbed with a temporary shading, which goes back afterwards
                shot = await client.call_tool("blender_look", {"shading": "wireframe", "max_size": 256})
                look = json.loads(read_answer(shot)["result"])
                assert look["source"] == "viewport" and max(look["width"], look["height"]) <= 256, look
                assert shot.content[1].type == "image"
                kind = await call(client, "blender_execute_code", {"code": "import bpy\nprint(next(a for w in "
                                  "bpy.context.window_manager.windows for a in w.screen.areas if a.type == 'VIEW_3D')"
                                  ".spaces.active.shading.type)"})
                assert kind["result"] == "SOLID\n"
                await undo_in_the_window(client, out, proc)
            # Style B
            await send(llm, target_uuid="blender-gui-01", from_uuid="gui-llm",
                       payload={"message_type": "job_dispatch", "job_id": "gui-b-1", "script": "print('b')"})
            assert (await final_updates(llm, {"gui-b-1"}, 30))["gui-b-1"]["result"] == "b\n"
            # A burst of 1,000 queued records, drained by the GUI timer within its per-tick budget
            (out / "go-burst").touch()
            await wait_file(out / "phase-burst-ready", 30, proc)
            ids = {f"burst-{i}" for i in range(1000)}
            sem = asyncio.Semaphore(16)

            async def one(job_id: str) -> None:
                async with sem:
                    await send(llm, target_uuid="blender-gui-01", from_uuid="gui-llm",
                               payload={"message_type": "job_dispatch", "job_id": job_id, "script": "x = 1"})

            await asyncio.gather(*(one(j) for j in sorted(ids)))
            await final_updates(llm, ids, 180)
            (out / "go-burst-done").touch()
            # ask mode: the job waits in the approval inbox until the panel's Approve
            await wait_file(out / "phase-ask-ready", 30, proc)
            await send(llm, target_uuid="blender-gui-01", from_uuid="gui-llm",
                       payload={"message_type": "job_dispatch", "job_id": "gui-ask-1", "script": "print('approved')"})
            approved = await final_updates(llm, {"gui-ask-1"}, 60)
            assert approved["gui-ask-1"]["result"] == "approved\n"
            queued = [r for r in llm.collector.records if r["payload"]["job_id"] == "gui-ask-1"
                      and r["payload"]["status"] == "queued"]
            assert queued and "approval" in queued[0]["payload"]["message"]
            listing = tool_json(await llm.call_tool("blender_list_available_clients", {}))
            entry = next(c for c in listing["persistent"] if c["uuid"] == "blender-gui-01")
            assert entry["label"] == "GUI test Blender" and entry["online"]
            (out / "go-error").touch()
            await wait_file(out / "results.json", 60, proc)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # xvfb-run alone would leave Blender running
        log.close()
    results = json.loads((out / "results.json").read_text())
    assert not results["errors"] or all(e.startswith("tab:") for e in results["errors"]), results["errors"]
    assert results["login"] == ["FINISHED"] and results["approve"] == ["FINISHED"]
    if "tab_clicks" in results:  # the MCP tab was on screen: its panel asked for the bus's clients
        assert results["listed"], "the panel on screen never got the bus's client list"
    assert results["approved_job"] == "gui-ask-1"
    assert "session expired" in results["error_reason"] or "refresh" in results["error_reason"]
    assert ["gui-ask-1", "job_dispatch", "completed"] in results["recent"]
    ticks = results["ticks"]
    print(f"\nGUI drainer under a 1,000-record burst: {ticks['count']} busy ticks, p50 {ticks['p50_ms']:.2f} ms, "
          f"p99 {ticks['p99_ms']:.2f} ms, worst {ticks['worst_ms']:.2f} ms wall, {ticks['worst_cpu_ms']:.2f} ms CPU")
    # The budget is 8 ms of work per tick. Judge it on the main thread's CPU time: wall time on a shared VM
    # also counts the slices the OS gave the server and this test (CI once saw a 16.2 ms wall tick at 7.7 p50).
    # A drainer that ignored its budget would spend ~100 ms of CPU on the burst in one tick.
    assert ticks["count"] > 1 and ticks["worst_cpu_ms"] < 16.0, ticks
    pictures = {name: (out / f"panel-{name}.png").read_bytes()
                for name in ("disconnected", "connected-with-jobs", "pending-approval", "error")}
    for name, data in pictures.items():
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
    # Four states, four pictures: a blank or frozen window would give the same bytes twice.
    assert len(set(pictures.values())) == len(pictures), "the panel's pictures do not change with its state"
