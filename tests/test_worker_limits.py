"""What a real headless worker refuses or admits: render bounds, honest cancel answers, its output folder."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
import uuid as uuid_mod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests import blenders
from tests.blender_worker import Worker, extension_zip
from tests.helpers import ROOT, bus_client, send, tool_json, wait_online

pytestmark = [pytest.mark.blender, pytest.mark.anyio]

BOUNDED = "blender-limits-01"  # its own bounds and output folder
DEFAULTS = "blender-limits-02"  # no flags: the default bounds and output folder
ANYWHERE = "blender-limits-03"  # --allow-write-anywhere
SLOW_SECONDS = 8.0


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("limits")
    outside = base / "outside"
    outside.mkdir()
    return {"base": base, "out": base / "out", "outside": outside}


class _Slow(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(SLOW_SECONDS)
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture(scope="module")
def slow_service():
    """A Poly Haven that takes SLOW_SECONDS per answer: a generator job waits on it in the background."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def workers(server, folders, slow_service, tmp_path_factory):
    os.environ["BLENDER_MCP_POLYHAVEN_API_URL"] = slow_service
    try:
        started = [Worker(server.url, tmp_path_factory.mktemp("user-bounded"), BOUNDED, "--max-render-size", "256",
                          "--max-render-samples", "8", "--output-dir", str(folders["out"])),
                   Worker(server.url, tmp_path_factory.mktemp("user-defaults"), DEFAULTS)]
    finally:
        del os.environ["BLENDER_MCP_POLYHAVEN_API_URL"]
    yield {w.uuid: w for w in started}
    for w in started:
        w.stop()


async def command(llm, target: str, name: str, params: dict, timeout: float = 60) -> dict:
    """Dispatch one command over the bus (Style B) and return its final job_update."""
    job_id = f"{name}-{uuid_mod.uuid4().hex[:8]}"
    await dispatch(llm, target, job_id, name, params)
    return await final(llm, job_id, timeout)


async def dispatch(llm, target: str, job_id: str, name: str, params: dict) -> None:
    answer = await send(llm, target_uuid=target, from_uuid=llm.registration["client_uuid"], payload={
        "message_type": "command_dispatch", "job_id": job_id, "command": name, "params": params})
    assert answer["status"] in ("sent", "queued"), answer


def updates(llm, job_id: str) -> list[dict]:
    return [r["payload"] for r in llm.collector.records if r["payload"].get("job_id") == job_id]


async def final(llm, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in updates(llm, job_id):
            if p.get("status") in ("completed", "error", "cancelled"):
                return p
        await asyncio.sleep(0.02)
    raise AssertionError(f"no final update for {job_id}: {updates(llm, job_id)}")


def rss_mb(pid: int) -> int:
    return int(Path(f"/proc/{pid}/status").read_text().split("VmRSS:")[1].split()[0]) // 1024


async def online(server, *uuids: str) -> None:
    async with bus_client(server.url, uuid=f"watch-{uuid_mod.uuid4().hex[:6]}") as watch:
        for uuid in uuids:
            await wait_online(watch, uuid, timeout=120)


# -- render bounds ----------------------------------------------------------------------------------------
async def test_a_render_over_the_bounds_is_refused_before_anything_renders(server, workers):
    await online(server, BOUNDED, DEFAULTS)
    async with bus_client(server.url, uuid="lim-render") as llm:
        pid = workers[DEFAULTS].proc.pid
        before = rss_mb(pid)
        started = time.monotonic()
        big = await command(llm, DEFAULTS, "render_image",
                            {"resolution_x": 8192, "resolution_y": 8192, "max_size": 4096, "samples": 1})
        took = time.monotonic() - started
        grew = rss_mb(pid) - before
        assert big["status"] == "error", big
        assert "8192x8192" in big["error"] and "4096" in big["error"] and "--max-render-size" in big["error"]
        assert took < 5 and grew < 50, (took, grew)  # the 4096x4096 this asked for peaked at 5.3 GB

        samples = await command(llm, BOUNDED, "render_image", {"resolution_x": 128, "resolution_y": 128,
                                                               "samples": 64})
        assert samples["status"] == "error" and "64 samples" in samples["error"]
        assert "limit of 8 samples" in samples["error"] and "--max-render-samples" in samples["error"]
        wide = await command(llm, BOUNDED, "render_image", {"resolution_x": 512, "resolution_y": 128})
        assert wide["status"] == "error" and "512x128" in wide["error"] and "256 pixels" in wide["error"]
        shot = await command(llm, BOUNDED, "get_viewport_screenshot", {"max_size": 512})  # its headless render
        assert shot["status"] == "error" and "get_viewport_screenshot" in shot["error"], shot
        small = await command(llm, BOUNDED, "render_image", {"engine": "workbench", "resolution_x": 64,
                                                             "resolution_y": 32, "samples": 8, "max_size": 64})
        assert small["status"] == "completed", small
        assert (small["result"]["width"], small["result"]["height"]) == (64, 32)


# -- cancel -----------------------------------------------------------------------------------------------
async def test_a_cancel_is_answered_at_once_with_what_it_achieved(server, workers):
    await online(server, BOUNDED)
    async with bus_client(server.url, uuid="lim-cancel") as llm:
        await dispatch(llm, BOUNDED, "cx-long", "execute_code", {"code": "import time\ntime.sleep(5)\nprint('end')"})
        await asyncio.sleep(1.0)  # running on the main thread now
        await dispatch(llm, BOUNDED, "cx-queued", "execute_code", {"code": "print('never')"})
        await asyncio.sleep(0.3)

        asked = time.monotonic()
        assert tool_json(await llm.call_tool("blender_cancel_job", {"job_id": "cx-queued"}))["status"] == \
            "cancel_requested"
        queued = await final(llm, "cx-queued", 2)
        assert time.monotonic() - asked < 1.0
        assert queued["status"] == "cancelled" and queued["details"] == {"cancel": "done"}, queued

        asked = time.monotonic()
        assert tool_json(await llm.call_tool("blender_cancel_job", {"job_id": "cx-long"}))["status"] == \
            "cancel_requested"
        while not any((u.get("details") or {}).get("cancel") for u in updates(llm, "cx-long")):
            assert time.monotonic() - asked < 1.0, updates(llm, "cx-long")
            await asyncio.sleep(0.01)
        ack = next(u for u in updates(llm, "cx-long") if (u.get("details") or {}).get("cancel"))
        assert ack["status"] == "running" and ack["details"]["cancel"] == "not_possible", ack
        assert "execute_code is running on Blender's main thread and cannot be stopped" in ack["details"]["reason"]
        assert "its result will be discarded" in ack["details"]["reason"]

        last = await final(llm, "cx-long", 15)
        assert time.monotonic() - asked > 2.5  # it really did run on to its end
        assert last["status"] == "cancelled" and last["details"]["cancel"] == "not_possible", last
        assert "while running" in last["error"] and "ran to its end (completed)" in last["error"]
        assert last.get("result") is None and "value" not in last["details"]  # discarded, as the answer said
        statuses = [u["status"] for u in updates(llm, "cx-long")]
        assert statuses == ["running", "cancelled"], statuses  # the answer came first, never after the end
        assert (await command(llm, BOUNDED, "execute_code", {"code": "print('still fine')"}))["result"] == \
            "still fine\n"


async def test_a_generator_job_cancelled_while_it_waits_stops_at_once(server, workers):
    """A generator handler waiting on background work (a download) is stopped between its steps: told
    "requested" at once, then cancelled "done" without waiting for the download to end."""
    await online(server, BOUNDED)
    async with bus_client(server.url, uuid="lim-cancel-gen") as llm:
        await dispatch(llm, BOUNDED, "cx-gen", "get_polyhaven_categories", {"asset_type": "hdris"})
        await asyncio.sleep(1.0)  # waiting on the slow service now
        asked = time.monotonic()
        await llm.call_tool("blender_cancel_job", {"job_id": "cx-gen"})
        last = await final(llm, "cx-gen", SLOW_SECONDS)
        took = time.monotonic() - asked
        seen = updates(llm, "cx-gen")
        assert [u["details"]["cancel"] for u in seen if u.get("details")] == ["requested", "done"], seen
        assert last["status"] == "cancelled" and "stopped between steps" in last["error"], last
        assert took < 1.0, took


# -- the output folder ------------------------------------------------------------------------------------
async def test_files_are_written_only_in_the_output_folder(server, workers, folders, tmp_path):
    out, outside = folders["out"], folders["outside"]
    assert not out.exists()  # made when first needed, not at start
    await online(server, BOUNDED)
    async with bus_client(server.url, uuid="lim-files") as llm:
        refused = await command(llm, BOUNDED, "save_blend", {"filepath": str(outside / "escape.blend")})
        assert refused["status"] == "error", refused
        assert str(out) in refused["error"] and "--allow-write-anywhere" in refused["error"]
        dotdot = await command(llm, BOUNDED, "export_scene", {"filepath": "../outside/escape.glb"})
        assert dotdot["status"] == "error" and "outside the folder" in dotdot["error"], dotdot

        relative = await command(llm, BOUNDED, "save_blend", {"filepath": "scene.blend"})
        assert relative["status"] == "completed", relative
        assert relative["result"]["filepath"] == str(out / "scene.blend") and (out / "scene.blend").is_file()
        os.symlink(outside, out / "link")  # a folder inside that leads outside
        linked = await command(llm, BOUNDED, "export_scene", {"filepath": str(out / "link" / "escape.glb")})
        assert linked["status"] == "error" and "outside the folder" in linked["error"], linked
        inside = await command(llm, BOUNDED, "export_scene", {"filepath": str(out / "models" / "cube.obj"),
                                                              "format": "obj"})
        assert inside["status"] == "completed" and (out / "models" / "cube.obj").is_file(), inside
        in_place = await command(llm, BOUNDED, "save_blend", {})  # the open file, saved where it is
        assert in_place["status"] == "completed" and in_place["result"]["filepath"] == str(out / "scene.blend")
        # No flags: the output folder is ./blender-mcp-output of the folder the worker started in (ROOT here).
        default = await command(llm, DEFAULTS, "save_blend", {"filepath": str(outside / "default.blend")})
        assert default["status"] == "error" and str(ROOT / "blender-mcp-output") in default["error"], default
        assert not list(outside.iterdir())

        w = Worker(server.url, tmp_path / "user", ANYWHERE, "--allow-write-anywhere")
        try:
            await wait_online(llm, ANYWHERE, timeout=120)
            anywhere = await command(llm, ANYWHERE, "save_blend", {"filepath": str(outside / "allowed.blend")})
            assert anywhere["status"] == "completed" and (outside / "allowed.blend").is_file(), anywhere
            exported = await command(llm, ANYWHERE, "export_scene", {"filepath": str(outside / "allowed.glb")})
            assert exported["status"] == "completed" and (outside / "allowed.glb").is_file(), exported
        finally:
            w.stop()
    assert "export_scene write anywhere" in w.log()
    assert f"export_scene write only in {out}" in workers[BOUNDED].log()
    assert f"export_scene write only in {ROOT / 'blender-mcp-output'}" in workers[DEFAULTS].log()


PREFS_SCRIPT = r"""
import bpy, importlib, json, os, sys
tmp, zip_path = sys.argv[-1], sys.argv[-2]
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
pkg = "bl_ext.user_default.blender_mcp"
prefs = bpy.context.preferences.addons[pkg].preferences
connection = importlib.import_module(pkg + ".ui.connection")
commands = importlib.import_module(pkg + ".handlers").COMMANDS
LimitError = importlib.import_module(pkg + ".limits").LimitError
connection.ensure_runtime()
out = {}

def attempt(name, **params):
    try:
        return {"ok": commands[name].fn(**params)}
    except LimitError as exc:
        return {"refused": str(exc)}

out["default_outside"] = attempt("save_blend", filepath=os.path.join(tmp, "anywhere.blend"))
out["default_relative"] = attempt("save_blend", filepath="relative.blend")
prefs.max_render_size = 128
out["render"] = attempt("render_image", resolution_x=256, resolution_y=64)
prefs.write_only_in_output = True
out["no_folder"] = attempt("save_blend", filepath=os.path.join(tmp, "refused.blend"))
prefs.output_folder = os.path.join(tmp, "out")
out["outside"] = attempt("export_scene", filepath=os.path.join(tmp, "refused.glb"))
out["inside"] = attempt("save_blend", filepath="inside.blend")
print("RESULT " + json.dumps(out, default=str), flush=True)
os._exit(0)
"""


def test_a_window_writes_anywhere_unless_its_preferences_limit_it(tmp_path):
    """The add-on preferences feed the same limits to a Blender window (here the bpy module, no window)."""
    if not blenders.has_extensions():
        pytest.skip("the preferences of Blender < 4.2's legacy add-on are driven by the GUI test")
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "user"), "HOME": str(tmp_path)}
    proc = subprocess.run(blenders.script_command(PREFS_SCRIPT, extension_zip(), str(tmp_path)), env=env,
                          capture_output=True, text=True, timeout=180)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, (proc.stdout + proc.stderr)[-3000:]
    out = json.loads(line[len("RESULT "):])
    assert out["default_outside"]["ok"]["filepath"] == str(tmp_path / "anywhere.blend")
    assert "must be absolute" in out["default_relative"]["refused"]  # no output folder: nothing it could mean
    assert "256x64" in out["render"]["refused"] and "'Max render size'" in out["render"]["refused"]
    assert str(tmp_path / "blender-mcp-output") in out["no_folder"]["refused"]  # the fallback, in the home folder
    assert str(tmp_path / "out") in out["outside"]["refused"]
    assert "'Write only in the output folder'" in out["outside"]["refused"]
    assert out["inside"]["ok"]["filepath"] == str(tmp_path / "out" / "inside.blend")
