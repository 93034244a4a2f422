"""Style A: every dispatch tool against a real headless Blender worker with the built zip."""

from __future__ import annotations

import ast
import asyncio
import base64
import json
import signal
import struct
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from blender_mcp_addon.protocol.answers import DISPATCH_KEYS, read_answer
from tests.blender_worker import Worker
from tests.fakes.polyhaven import EVIL_ID, HDRI_ID, MODEL_ID, TEXTURE_ID, FakePolyHaven
from tests.helpers import ROOT, bus_client, login, wait_online
from tests.test_faults import spawn_subscriber

pytestmark = [pytest.mark.blender, pytest.mark.anyio]
TARGET = "blender-demo01"


@pytest.fixture(scope="module")
def polyhaven():
    fake = FakePolyHaven().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """The worker's output folder: the only one its save_blend and export_scene may write in."""
    return tmp_path_factory.mktemp("outputs")


@pytest.fixture(scope="module")
def worker(server, polyhaven, outputs, tmp_path_factory):
    w = Worker(server.url, tmp_path_factory.mktemp("blender-user"), TARGET, "--output-dir", str(outputs),
               env={"BLENDER_MCP_POLYHAVEN_API_URL": polyhaven.url})
    yield w
    w.stop()


@asynccontextmanager
async def style_a_on(base: str, target: str, username: str = "demo", password: str = "demo"):
    """A Style A client of `username`'s bus, once its Blender `target` is online."""
    async with bus_client(base, username=username, password=password, uuid=f"{target}-watch") as watch:
        await wait_online(watch, target, timeout=90)
    async with await style_a(base, username, password) as client:
        yield client


async def style_a(base: str, username: str = "demo", password: str = "demo", **kw) -> Client:
    token = login(base, username, password)["access_token"]
    return Client(StreamableHttpTransport(url=f"{base}/mcp", headers={"Authorization": f"Bearer {token}"}), **kw)


async def call(client: Client, tool: str, args: dict | None = None) -> dict:
    raw = await client.call_tool(tool, args or {})
    return read_answer(raw)


async def completed(client: Client, tool: str, args: dict | None = None) -> Any:
    """The parsed JSON result of a call that must complete; when it does not, the assertion shows why."""
    answer = await call(client, tool, args)
    assert answer["status"] == "completed", f"{tool}: {answer['status']}: {answer.get('error') or answer}"
    return json.loads(answer["result"])


async def ready(server) -> None:
    async with bus_client(server.url, uuid="dispatch-watch") as watch:
        await wait_online(watch, TARGET, timeout=90)


async def test_spec_style_a_example_runs_unchanged(server, worker):
    await ready(server)
    proc = subprocess.run([sys.executable, str(ROOT / "tests/spec_clients/style_a.py"), server.url],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first, second = proc.stdout.split("\n", 1)
    scene = ast.literal_eval(first)
    assert scene["status"] == "completed" and scene["command"] == "get_scene_info"
    assert scene["target_uuid"] == TARGET and scene["job_id"].startswith("j-") and scene["error"] == ""
    assert json.loads(scene["result"])["object_count"] == 3
    assert second.startswith("3\n")
    async with await style_a(server.url) as client:  # the HDRI the example downloaded is now the world
        world = await call(client, "blender_execute_code", {"code": "import bpy\nw = bpy.context.scene.world\n"
                           "print(w.node_tree.nodes['Environment Texture'].image.name)"})
        assert HDRI_ID in world["result"]


async def test_scene_tools(server, worker, outputs, tmp_path):
    await ready(server)
    async with await style_a(server.url) as client:
        info = await call(client, "blender_get_scene_info", {"limit": 1, "offset": 1})
        page = json.loads(info["result"])
        assert page["object_count"] == 3 and [o["name"] for o in page["objects"]] == ["Cube"]
        assert page["render"]["resolution"] and page["frame_range"] == [1, 250]
        cube = await completed(client, "blender_get_object_info", {"name": "Cube"})
        assert cube["type"] == "MESH" and cube["mesh"]["vertices"] == 8 and cube["dimensions"] == [2.0, 2.0, 2.0]
        missing = await call(client, "blender_get_object_info", {"name": "Nope"})
        assert missing["status"] == "error" and "no object named" in missing["error"]
        code = await call(client, "blender_execute_code", {"code": "import sys\nprint('out')\nprint('err', file=sys.stderr)\n6*7"})
        assert code["result"] == "out\n" and code["details"] == {"stderr": "err\n", "value": "42"}
        boom = await call(client, "blender_execute_code", {"code": "raise ValueError('bad')"})
        assert boom["status"] == "error" and "ValueError: bad" in boom["error"]
        blend = outputs / "saved.blend"
        saved = await completed(client, "blender_save_blend", {"filepath": str(blend)})
        assert saved["filepath"] == str(blend) and blend.stat().st_size > 1000
        for fmt, name in [("glb", "scene.glb"), ("obj", "scene.obj"), ("fbx", "scene.fbx"), ("usd", "scene.usdc")]:
            out = await call(client, "blender_export_scene", {"filepath": str(outputs / name), "format": fmt})
            if fmt == "usd" and "built without USD export" in out["error"]:  # distribution builds (Debian's)
                assert out["status"] == "error" and not (outputs / name).exists()
                continue
            assert out["status"] == "completed", out["error"]
            assert (outputs / name).stat().st_size > 100
        relative = await completed(client, "blender_export_scene", {"filepath": "relative.glb"})
        assert relative["filepath"] == str(outputs / "relative.glb")  # a relative path lands in the output folder
        outside = await call(client, "blender_export_scene", {"filepath": str(tmp_path / "outside.glb")})
        assert outside["status"] == "error" and "outside the folder" in outside["error"]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


async def test_render_and_screenshot_return_png_images(server, worker):
    await ready(server)
    async with await style_a(server.url) as client:
        raw = await client.call_tool("blender_render_image", {"resolution_x": 96, "resolution_y": 64, "samples": 2})
        meta = read_answer(raw)
        assert meta["status"] == "completed", meta["error"]
        image = raw.content[1]
        assert image.type == "image" and image.mimeType == "image/png"
        assert png_size(base64.b64decode(image.data)) == (96, 64)
        assert "image_base64" not in meta["result"] and json.loads(meta["result"])["engine"] == "CYCLES"
        capped = await client.call_tool("blender_render_image", {"resolution_x": 400, "resolution_y": 200,
                                                                 "samples": 1, "max_size": 100})
        assert png_size(base64.b64decode(capped.content[1].data)) == (100, 50)
        shot = await client.call_tool("blender_get_viewport_screenshot", {"max_size": 64})
        assert json.loads(read_answer(shot)["result"])["source"] == "render"  # headless fallback
        assert png_size(base64.b64decode(shot.content[1].data)) == (64, 64)


async def test_polyhaven_downloads_land_in_the_scene(server, worker, polyhaven):
    await ready(server)
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value, total, message):
        progress.append((value, message))

    async with await style_a(server.url, progress_handler=on_progress) as client:
        cats = await completed(client, "blender_get_polyhaven_categories", {"asset_type": "hdris"})
        assert cats["categories"]["skies"] == 1
        found = await completed(client, "blender_search_polyhaven_assets",
                                       {"asset_type": "textures", "categories": "rock"})
        assert [a["id"] for a in found["assets"]] == [TEXTURE_ID]
        hdri = await call(client, "blender_download_polyhaven_asset",
                          {"asset_id": HDRI_ID, "asset_type": "hdris", "resolution": "1k"})
        assert hdri["status"] == "completed", hdri
        assert json.loads(hdri["result"])["world"]
        assert progress and progress[0][0] == 0.0 and "file list" in progress[0][1]
        tex = await completed(client, "blender_download_polyhaven_asset",
                                     {"asset_id": TEXTURE_ID, "asset_type": "textures", "file_format": "png"})
        assert tex["material"] == TEXTURE_ID
        assert set(tex["maps"].values()) == {"Base Color", "Roughness", "Normal"}
        applied = await completed(client, "blender_set_texture",
                                         {"object_name": "Cube", "texture_id": TEXTURE_ID})
        assert applied == {"object": "Cube", "material": TEXTURE_ID}
        model = await completed(client, "blender_download_polyhaven_asset",
                                       {"asset_id": MODEL_ID, "asset_type": "models"})
        assert model["imported_objects"] == ["FakeRock"]
        check = await call(client, "blender_execute_code", {"code": (
            "import bpy\nprint(len(bpy.data.objects['FakeRock'].data.vertices), "
            "bpy.data.objects['Cube'].active_material.name)")})
        assert check["result"] == f"3 {TEXTURE_ID}\n"
        evil = await call(client, "blender_download_polyhaven_asset", {"asset_id": EVIL_ID, "asset_type": "models"})
        assert evil["status"] == "error" and "unsafe file name" in evil["error"]
        assert not Path("/tmp/blender_mcp_pwned.txt").exists()
        nope = await call(client, "blender_download_polyhaven_asset",
                          {"asset_id": HDRI_ID, "asset_type": "hdris", "resolution": "16k"})
        assert nope["status"] == "error" and "no 16k resolution" in nope["error"]


async def test_target_selection_errors(server, worker):
    await ready(server)
    async with await style_a(server.url, "alice", "alice-pw") as alice:
        none = await call(alice, "blender_get_scene_info")
        assert none["status"] == "no_client" and "Login then Connect" in none["hint"]
        assert set(DISPATCH_KEYS) <= set(none) and none["error"]  # every dispatch answer has the spec's keys
        async with (bus_client(server.url, username="alice", password="alice-pw", uuid="fake-bl-1", client_type="blender"),
                    bus_client(server.url, username="alice", password="alice-pw", uuid="fake-bl-2", client_type="blender")):
            amb = await call(alice, "blender_get_scene_info")
            assert amb["status"] == "ambiguous_target" and amb["candidates"] == ["fake-bl-1", "fake-bl-2"]
            assert set(DISPATCH_KEYS) <= set(amb) and amb["target_uuid"] is None
            # a Blender that never answers: timeout, with its heartbeat so the caller can tell busy from gone
            slow = await call(alice, "blender_get_scene_info", {"target_uuid": "fake-bl-1", "_timeout": 1})
            assert slow["status"] == "timeout" and "seconds_since_heartbeat" in slow and slow["job_id"]
            assert slow["cancel"] == "unconfirmed" and "not confirmed" in slow["error"]  # it never answers
        unknown = await call(alice, "blender_get_scene_info", {"target_uuid": TARGET})  # demo's Blender: not alice's
        assert unknown["status"] == "unknown_target"
        bad = await call(alice, "blender_get_scene_info", {"limit": 0})
        assert bad["status"] == "invalid_arguments" and "limit" in bad["error"]
        extra = await call(alice, "blender_get_scene_info", {"bogus": 1})
        assert extra["status"] == "invalid_arguments"


async def test_target_lost_when_blender_dies_mid_job(server, worker):
    proc = await spawn_subscriber(server.url, "doomed-blender", user="bob", password="bob-pw")
    async with await style_a(server.url, "bob", "bob-pw") as bob:
        job = asyncio.create_task(call(bob, "blender_get_scene_info", {"_timeout": 60}))
        await asyncio.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        started = asyncio.get_running_loop().time()
        lost = await asyncio.wait_for(job, 30)
        assert lost["status"] == "target_lost" and lost["target_uuid"] == "doomed-blender"
        assert asyncio.get_running_loop().time() - started < 15


async def test_disabled_integration_says_so(server, tmp_path):
    w = Worker(server.url, tmp_path / "user", "blender-carol", "--integrations", "", username="bob",
               password="bob-pw")
    try:
        async with bus_client(server.url, username="bob", password="bob-pw", uuid="bob-watch") as watch:
            await wait_online(watch, "blender-carol", timeout=90)
        async with await style_a(server.url, "bob", "bob-pw") as bob:
            status = await call(bob, "blender_get_polyhaven_status", {"target_uuid": "blender-carol"})
            assert json.loads(status["result"])["enabled"] is False
            off = await call(bob, "blender_search_polyhaven_assets", {"target_uuid": "blender-carol"})
            assert off["status"] == "error" and "disabled in the add-on preferences" in off["error"]
    finally:
        w.stop()


async def test_a_timed_out_job_says_whether_it_was_stopped(server, worker):
    """A script on Blender's main thread cannot be stopped: the timeout says so instead of "cancelled";
    the job queued behind it was stopped, and says that."""
    await ready(server)
    async with await style_a(server.url) as client:
        slow = asyncio.create_task(call(client, "blender_execute_code",
                                        {"code": "import time\ntime.sleep(4)", "_timeout": 1}))
        await asyncio.sleep(0.3)
        queued = await call(client, "blender_get_scene_info", {"_timeout": 0.5})
        answer = await slow
        assert answer["status"] == "timeout" and answer["cancel"] == "not_possible", answer
        assert "cannot stop it" in answer["error"] and "main thread" in answer["error"]
        assert queued["status"] == "timeout" and queued["cancel"] == "done", queued
        await asyncio.sleep(3.5)  # the script runs to its end; the worker is free again after it
        assert (await call(client, "blender_get_scene_info"))["status"] == "completed"
