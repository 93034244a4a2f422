"""Runs inside a real Blender window (Xvfb): installs the zip, then walks the panel through its states.

Started by tests/test_gui.py as `blender --factory-startup --python gui_driver.py -- ZIP SERVER OUTDIR`.
Every step runs from `bpy.app.timers` (the window manager's loop), like an artist's clicks would.
The test process and this script coordinate through files in OUTDIR: this script writes
`phase-<name>` when it reaches a phase, the test writes `go-<name>` when this script may go on.
"""

import importlib
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

import addon_utils
import bpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import x_screenshot  # noqa: E402

ZIP, SERVER, OUT = sys.argv[-3], sys.argv[-2], Path(sys.argv[-1])
PKG = "blender_mcp"
results = {"states": [], "screenshots": [], "errors": [], "blender": bpy.app.version_string, "gc_ms": []}

import gc  # noqa: E402
import threading  # noqa: E402

_gc_started = [0.0]


def _gc_watch(phase, info):
    """Record the longest garbage-collector pauses (and on which thread), to explain a slow tick."""
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        ms = (time.perf_counter() - _gc_started[0]) * 1000
        if ms > 5:
            phase = results["states"][-1]["phase"] if results["states"] else "start"
            results["gc_ms"].append([round(ms, 1), info["generation"], threading.current_thread().name, phase])


gc.callbacks.append(_gc_watch)


def mark(phase, **data):
    results["states"].append({"phase": phase, "time": time.time(), **data})
    (OUT / f"phase-{phase}").write_text(json.dumps(data))


def go(name):
    return (OUT / f"go-{name}").exists()


def install():
    global PKG
    if bpy.app.version >= (4, 2, 0):
        bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
        PKG = "bl_ext.user_default.blender_mcp"
    else:
        bpy.ops.preferences.addon_install(filepath=ZIP, overwrite=True)  # Preferences > Add-ons > Install
        addon_utils.enable(PKG, default_set=True)
    return importlib.import_module(PKG)


def view3d():
    window = bpy.context.window_manager.windows[0]
    area = max((a for a in window.screen.areas if a.type == "VIEW_3D"), key=lambda a: a.width * a.height)
    return window, area


DRAWN = [0]


def watch_panel_draws():
    """Count the panel's draws, so the driver knows when the MCP tab is the one on screen."""
    cls = bpy.types.VIEW3D_PT_blender_mcp
    original = cls.draw

    def draw(self, context):
        DRAWN[0] += 1
        original(self, context)

    cls.draw = draw


def open_sidebar():
    window, area = view3d()
    area.spaces.active.show_region_ui = True
    for a in window.screen.areas:
        a.tag_redraw()


def tab_clicks():
    """Screen points down the sidebar's tab column, for clicking the MCP tab as a person would."""
    window, area = view3d()
    region = next(r for r in area.regions if r.type == "UI")
    x = region.x + region.width - 9
    top = window.height - (region.y + region.height)
    return [(x, top + dy) for dy in range(12, min(region.height, 420), 14)]


def screenshot(name):
    """The whole window as the X server shows it (x_screenshot.py says why not Blender's own operator)."""
    window, _area = view3d()
    path = OUT / f"panel-{name}.png"
    x_screenshot.grab(str(path), window.x, 0, window.width, window.height)
    results["screenshots"].append(path.name)


def prefs():
    return bpy.context.preferences.addons[PKG].preferences


def mod(name):
    return importlib.import_module(f"{PKG}.{name}")


STEPS = []


def step(fn):
    STEPS.append(fn)
    return fn


@step
def s_install():
    install()
    p = prefs()
    p.server_url = SERVER
    p.client_uuid = "blender-gui-01"
    p.label = "GUI test Blender"
    p.execution_policy = "allow"
    watch_panel_draws()
    open_sidebar()
    return True


_clicks = []


def mcp_tab_active():
    """Whether the sidebar shows the MCP tab: Blender 4.x+ says so (read-only), 3.4 only by drawing it."""
    _window, area = view3d()
    region = next(r for r in area.regions if r.type == "UI")
    category = getattr(region, "active_panel_category", None)
    if category is None or category == "UNSUPPORTED":
        return DRAWN[0] > 0
    return category == "MCP"


@step
def s_click_mcp_tab():
    if mcp_tab_active():
        results["tab_clicks"] = len(results.get("tried", []))
        return True
    if not shutil.which("xdotool"):
        results["errors"].append("tab: xdotool missing, the MCP tab stays closed in the pictures")
        return True
    if not _clicks:
        _clicks.extend(tab_clicks())
        results["tried"] = []
    if len(results["tried"]) >= len(_clicks):
        results["errors"].append("tab: never found the MCP tab")
        return True
    x, y = _clicks[len(results["tried"])]
    results["tried"].append([x, y])
    subprocess.run(["xdotool", "mousemove", str(x), str(y), "click", "1"], env=os.environ, check=False)
    _settle[0] = time.time() + 0.4  # one click at a time: two quick ones on a tab are a double-click
    return False


@step
def s_shot_disconnected():
    screenshot("disconnected")
    mark("disconnected")
    return True


@step
def s_login():
    result = bpy.ops.blender_mcp.login(username="demo", password="demo")
    results["login"] = sorted(result)
    return True


@step
def s_wait_connected():
    runtime = mod("session").get_runtime()
    if runtime is None or runtime.state.status != "connected":
        return False
    mark("connected", uuid=prefs().client_uuid, timers_fire=True)
    return True


_listing_since = [0.0]


@step
def s_wait_listed():
    """The panel is on screen, so the next heartbeat also fetches the bus's client list for it (a Blender whose
    panel is not drawn never asks: session.panel_recently_drawn)."""
    runtime = mod("session").get_runtime()
    _listing_since[0] = _listing_since[0] or time.time()
    listed = any(c.get("uuid") == prefs().client_uuid for c in runtime.state.clients)
    if not listed and time.time() - _listing_since[0] < 15:
        return False
    results["listed"] = listed
    return True


@step
def s_wait_ctrl_z():
    """An artist's Ctrl-Z over the 3D view, typed into the window (X focus follows the pointer here)."""
    if not go("ctrl-z"):
        return False
    window, area = view3d()
    x, y = area.x + area.width // 2, window.height - (area.y + area.height // 2)
    typed = subprocess.run(["xdotool", "mousemove", str(x), str(y), "key", "ctrl+z"], env=os.environ,
                           capture_output=True, check=False)
    results["ctrl_z"] = typed.returncode
    mark("ctrl-z-typed")
    return True


@step
def s_wait_burst():
    if not go("burst"):
        return False
    mod("runtime.drivers").TICKS.reset()
    mark("burst-ready")
    return True


@step
def s_wait_burst_done():
    if not go("burst-done"):
        return False
    ticks = mod("runtime.drivers").TICKS
    recent = sorted(ticks.recent)
    results["ticks"] = {"count": ticks.ticks, "worst_ms": ticks.worst * 1000, "worst_cpu_ms": ticks.worst_cpu * 1000,
                        "p50_ms": recent[len(recent) // 2] * 1000 if recent else 0,
                        "p99_ms": recent[int(len(recent) * 0.99)] * 1000 if recent else 0}
    return True


@step
def s_shot_jobs():
    screenshot("connected-with-jobs")
    prefs().execution_policy = "ask"
    mark("ask-ready")
    return True


@step
def s_wait_approval():
    runtime = mod("session").get_runtime()
    if not runtime.approvals:
        return False
    return True


@step
def s_shot_pending():
    screenshot("pending-approval")
    runtime = mod("session").get_runtime()
    job_id = next(iter(runtime.approvals))
    results["approve"] = sorted(bpy.ops.blender_mcp.approve(job_id=job_id))
    results["approved_job"] = job_id
    mark("approved", job_id=job_id)
    return True


@step
def s_wait_error_go():
    if not go("error"):
        return False
    client = mod("client")
    session = mod("session")
    bpy.ops.blender_mcp.disconnect()
    # A remembered login the server no longer accepts: what an artist sees after a revoked session.
    session.set_keeper(client.TokenKeeper(SERVER, username="demo", refresh_token="revoked-or-expired"))
    results["connect_again"] = sorted(bpy.ops.blender_mcp.connect())
    return True


@step
def s_wait_error():
    runtime = mod("session").get_runtime()
    if runtime.state.status != "error":
        return False
    results["error_reason"] = runtime.state.reason
    return True


@step
def s_shot_error():
    screenshot("error")
    runtime = mod("session").get_runtime()
    results["recent"] = [[r.job_id, r.command, r.status] for r in runtime.recent]
    mark("done")
    return True


_index = [0]
_settle = [0.0]


def driver():
    try:
        if _index[0] >= len(STEPS):
            (OUT / "results.json").write_text(json.dumps(results, indent=1))
            bpy.ops.wm.quit_blender()
            return None
        if time.time() < _settle[0]:
            return 0.1
        if STEPS[_index[0]]():
            _index[0] += 1
            _settle[0] = time.time() + 0.6  # let the panel redraw before the next screenshot
        return 0.1
    except Exception:
        results["errors"].append(traceback.format_exc())
        (OUT / "results.json").write_text(json.dumps(results, indent=1))
        bpy.ops.wm.quit_blender()
        return None


bpy.app.timers.register(driver, first_interval=1.0, persistent=True)  # it outlives restore_checkpoint's file load
