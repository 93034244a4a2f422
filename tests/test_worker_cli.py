"""`blender-mcp-worker`'s own part: its help, and the zip it will (not) install for its Python."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from blender_mcp_addon import worker_cli
from tests.blender_worker import extension_zip
from tests.helpers import ROOT


def test_help_prints_every_option_and_installs_nothing(tmp_path):
    user_dir = tmp_path / "never-made"
    proc = subprocess.run([sys.executable, "-m", "blender_mcp_addon.worker_cli", "--help", "--user-dir",
                           str(user_dir)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    for option in ("--server", "--username", "--token", "--policy", "--zip", "--user-dir", "--blend",
                   "--max-render-size", "--max-render-samples", "--output-dir", "--allow-write-anywhere"):
        assert option in proc.stdout, option
    assert not user_dir.exists() and "import bpy" not in proc.stderr


def test_the_built_zip_fits_this_python_and_another_pythons_zip_is_refused(tmp_path):
    assert worker_cli.zip_problem(extension_zip()) is None
    old = tmp_path / "blender_mcp-0.0.1-linux_x64.zip"
    with zipfile.ZipFile(old, "w") as zf:
        zf.writestr("blender_mcp/wheels/pydantic_core-2.0.0-cp39-cp39-manylinux_2_17_x86_64.whl", b"")
    problem = worker_cli.zip_problem(str(old))
    assert problem and f"no wheels for Python {sys.version_info.major}.{sys.version_info.minor}" in problem
    assert "cp39" in problem
    proc = subprocess.run([sys.executable, "-m", "blender_mcp_addon.worker_cli", "--zip", str(old), "--user-dir",
                           str(tmp_path / "user"), "--username", "demo"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 2 and "rebuild it with `./bmcp build`" in proc.stderr
    assert "is not a readable zip" in worker_cli.zip_problem(str(tmp_path / "missing.zip"))
