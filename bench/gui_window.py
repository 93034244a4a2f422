"""Runs inside the benchmark's Blender window (bench_gui.py): install the zip, log in, connect, then idle.

    blender --factory-startup --python bench/gui_window.py -- ZIP SERVER UUID OUTDIR

Everything is done through the add-on's own operators from one `bpy.app.timers` step that unregisters
itself once connected, so nothing of the benchmark's own runs in the window while it is measured.
Writes OUTDIR/ready (this Blender's pid and version, and the bus client thread's id) once connected.
ZIP `-`: no add-on at all (Blender's own idle cost, for comparison); writes OUTDIR/ready-bare.
"""

import importlib
import json
import os
import sys
import threading
import time
from pathlib import Path

import addon_utils
import bpy

ZIP, SERVER, UUID, OUT = sys.argv[-4], sys.argv[-3], sys.argv[-2], Path(sys.argv[-1])
state = {"pkg": None, "since": 0.0}


def install() -> str:
    if bpy.app.version >= (4, 2, 0):
        bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
        return "bl_ext.user_default.blender_mcp"
    bpy.ops.preferences.addon_install(filepath=ZIP, overwrite=True)
    addon_utils.enable("blender_mcp", default_set=True)
    return "blender_mcp"


def step():
    if ZIP == "-":
        (OUT / "ready-bare").write_text(json.dumps({"pid": os.getpid(), "blender": bpy.app.version_string}))
        return None
    if state["pkg"] is None:
        state["pkg"] = install()
        prefs = bpy.context.preferences.addons[state["pkg"]].preferences
        prefs.server_url, prefs.client_uuid, prefs.execution_policy = SERVER, UUID, "allow"
        bpy.ops.blender_mcp.login(username="demo", password="demo")
        state["since"] = time.time()
        return 0.1
    runtime = importlib.import_module(state["pkg"] + ".session").get_runtime()
    if runtime is not None and runtime.state.status == "connected":
        bus = next((t.native_id for t in threading.enumerate() if t.name == "blender-mcp-bus"), None)
        (OUT / "ready").write_text(json.dumps({"pid": os.getpid(), "blender": bpy.app.version_string,
                                               "bus_thread": bus}))
        return None
    if time.time() - state["since"] > 60:
        (OUT / "failed").write_text(runtime.state.describe() if runtime else "no runtime")
        return None
    return 0.1


bpy.app.timers.register(step, first_interval=1.0)
