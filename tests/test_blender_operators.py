"""The panel's operators in real Blender: login, connect, the approval inbox in "ask" mode, logout, Claude config.

The bpy module has no window, so `bpy.app.timers` never fire; the script calls the GUI's own timer
function by hand, which is exactly what the window manager would do.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time

import httpx
import pytest

from tests import blenders
from tests.blender_worker import extension_zip
from tests.helpers import bus_client, send, wait_online

pytestmark = [pytest.mark.blender, pytest.mark.anyio]

SCRIPT = r"""
import bpy, importlib, json, os, sys, time
server = sys.argv[-1]
zip_path = sys.argv[-2]
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
pkg = "bl_ext.user_default.blender_mcp"
prefs = bpy.context.preferences.addons[pkg].preferences
prefs.server_url = server
prefs.client_uuid = "blender-gui-ops"
prefs.execution_policy = "ask"
connection = importlib.import_module(pkg + ".ui.connection")
session = importlib.import_module(pkg + ".session")
out = {"login": sorted(bpy.ops.blender_mcp.login(username="demo", password="demo"))}
out["password_kept"] = bool(session.get_keeper()._password)
out["refresh_stored"] = prefs.refresh_token != ""
runtime = session.get_runtime()
deadline = time.time() + 30
while runtime.state.status != "connected" and time.time() < deadline:
    time.sleep(0.05)
out["state"] = runtime.state.status
print("READY", flush=True)
seen = {}
deadline = time.time() + 60
while len(seen) < 2 and time.time() < deadline:
    connection._timer()          # the GUI timer function itself
    for job_id in list(runtime.approvals):
        if "approve" in job_id:
            seen[job_id] = sorted(bpy.ops.blender_mcp.approve(job_id=job_id))
        else:
            seen[job_id] = sorted(bpy.ops.blender_mcp.reject(job_id=job_id))
    time.sleep(0.01)
out["decisions"] = seen
for _ in range(50):
    connection._timer()
    time.sleep(0.02)
out["recent"] = [(r.job_id, r.status) for r in runtime.recent]
out["copy_config"] = sorted(bpy.ops.blender_mcp.copy_claude_config())
out["clipboard"] = bpy.context.window_manager.clipboard
refresh = session.get_keeper().refresh_token
out["logout"] = sorted(bpy.ops.blender_mcp.logout())
time.sleep(1.0)
out["refresh_token"] = refresh
print("RESULT " + json.dumps(out), flush=True)
os._exit(0)  # bpy 4.5's module can hang at interpreter exit; worker_cli leaves the same way
"""


async def test_ask_policy_login_logout_through_the_operators(server, tmp_path):
    if not blenders.has_extensions():
        pytest.skip("the operators on Blender < 4.2 are driven in a real window by the GUI test")
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(*blenders.script_command(SCRIPT, extension_zip(), server.url),
                                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    lines: list[str] = []

    async def read_until(prefix: str) -> str:
        while True:
            raw = await asyncio.wait_for(proc.stdout.readline(), 90)
            if not raw:
                raise AssertionError("Blender exited:\n" + "".join(lines[-40:]))
            line = raw.decode(errors="replace")
            lines.append(line)
            if line.startswith(prefix):
                return line

    await read_until("READY")
    async with bus_client(server.url, uuid="ops-llm") as llm:
        await wait_online(llm, "blender-gui-ops")
        for job_id in ("job-approve-1", "job-reject-1"):
            await send(llm, target_uuid="blender-gui-ops", from_uuid="ops-llm",
                       payload={"message_type": "job_dispatch", "job_id": job_id, "script": f"print('{job_id}')"})
        result = json.loads((await read_until("RESULT "))[len("RESULT "):])
        await asyncio.wait_for(proc.wait(), 30)
        finals = {}
        queued = set()
        deadline = time.monotonic() + 10
        while len(finals) < 2 and time.monotonic() < deadline:
            for rec in llm.collector.records:
                p = rec["payload"]
                if p["status"] == "queued":
                    queued.add(p["job_id"])
                elif p["status"] in ("completed", "error"):
                    finals[p["job_id"]] = p
            await asyncio.sleep(0.05)
    assert result["login"] == ["FINISHED"] and result["state"] == "connected"
    assert not result["password_kept"] and not result["refresh_stored"]  # nothing remembered unless asked
    assert result["decisions"] == {"job-approve-1": ["FINISHED"], "job-reject-1": ["FINISHED"]}
    assert queued == {"job-approve-1", "job-reject-1"}  # callers were told the jobs wait for approval
    assert finals["job-approve-1"]["status"] == "completed" and finals["job-approve-1"]["result"] == "job-approve-1\n"
    assert finals["job-reject-1"]["status"] == "error" and "rejected by the user" in finals["job-reject-1"]["error"]
    assert ("job-approve-1", "completed") in [tuple(r) for r in result["recent"]]
    assert result["copy_config"] == ["FINISHED"]
    if result["clipboard"]:  # the windowless bpy module may have no clipboard
        token = result["clipboard"].split("Bearer ")[1].rstrip('"')
        assert result["clipboard"].startswith(f"claude mcp add --transport http blender {server.url}/mcp")
        probe = httpx.get(f"{server.url}/auth/tokens", headers={"authorization": f"Bearer {token}"})
        assert probe.status_code == 200
    # Log Out revoked the refresh token on the server
    r = httpx.post(f"{server.url}/auth/refresh", json={"refresh_token": result["refresh_token"]})
    assert r.status_code == 401
