"""The extension zip in real Blender: install, enable, what it registers, and a clean unregister."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests import blenders
from tests.blender_worker import extension_zip
from tests.helpers import ROOT

pytestmark = pytest.mark.blender

CHECK = r"""
import bpy, json, sys, importlib, addon_utils
zip_path = sys.argv[-1]
r = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True,
                                             overwrite=True)
out = {"install": sorted(r)}
pkg = "bl_ext.user_default.blender_mcp"
mod = importlib.import_module(pkg)
out["enabled"] = pkg in bpy.context.preferences.addons
out["panel"] = hasattr(bpy.types, "VIEW3D_PT_blender_mcp")
out["operators"] = sorted(n for n in dir(bpy.ops.blender_mcp))
prefs = bpy.context.preferences.addons[pkg].preferences
out["prefs"] = {k: getattr(prefs, k) for k in ("server_url", "username", "execution_policy", "auto_connect",
                                                 "remember_login", "refresh_token")}
import fastmcp, mcp
out["fastmcp"] = fastmcp.__version__
out["fastmcp_from_extension"] = "extensions" in fastmcp.__file__ or "site-packages" in fastmcp.__file__
from bl_ext.user_default.blender_mcp.handlers import COMMANDS
out["commands"] = sorted(COMMANDS)
addon_utils.disable(pkg, default_set=True)
out["panel_after_disable"] = hasattr(bpy.types, "VIEW3D_PT_blender_mcp")
out["enabled_after_disable"] = pkg in bpy.context.preferences.addons
print("RESULT " + json.dumps(out))
"""


def test_zip_installs_enables_and_unregisters_cleanly(tmp_path):
    if not blenders.has_extensions():
        pytest.skip("Blender < 4.2 installs the zip as a legacy add-on (the GUI test and the worker tests)")
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path)}
    proc = subprocess.run(blenders.script_command(CHECK, extension_zip()), capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(line[len("RESULT "):])
    assert out["install"] == ["FINISHED"] and out["enabled"]
    assert out["panel"]
    assert {"login", "logout", "connect", "disconnect", "approve", "reject"} <= set(out["operators"])
    assert out["prefs"]["server_url"] == "http://127.0.0.1:8000" and out["prefs"]["execution_policy"] == "ask"
    assert out["prefs"]["refresh_token"] == ""  # nothing secret stored by default
    assert out["fastmcp"].startswith("3.4")
    assert {"execute_code", "get_scene_info", "get_object_info"} <= set(out["commands"])
    assert not out["panel_after_disable"] and not out["enabled_after_disable"]


def test_zip_passes_blenders_own_validation():
    tool = next(iter(sorted((ROOT / ".venv").glob("lib/python3*/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))), None)
    if tool is None:
        pytest.skip("Blender's extension tool comes with the bpy module")
    proc = subprocess.run([sys.executable, str(tool), "validate", extension_zip()], capture_output=True, text=True)
    assert proc.returncode == 0 and "Success" in proc.stdout, proc.stdout + proc.stderr
