"""Start a real headless Blender bus worker: the bpy module by default, `$BLENDER -b` when BLENDER is set."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
from pathlib import Path

from blender_mcp_addon.platform_tag import blender_platform
from tests.helpers import ROOT

BLENDER = os.environ.get("BLENDER")


def extension_zip() -> str:
    suffix = blender_platform().replace("-", "_")
    hits = sorted(glob.glob(str(ROOT / "dist" / f"blender_mcp-*-{suffix}.zip")), key=os.path.getmtime)
    if not hits:
        raise RuntimeError("no extension zip in dist/: run `python build_addon.py` (./bmcp test does)")
    return hits[-1]


INSTALL_SCRIPT = """
import bpy, sys
r = bpy.ops.extensions.package_install_files(filepath=sys.argv[-1], repo="user_default", enable_on_install=True,
                                             overwrite=True)
assert "FINISHED" in r, r
bpy.ops.wm.save_userpref()
"""


class Worker:
    def __init__(self, server_url: str, user_dir: Path, uuid: str, *args: str, password: str = "demo",
                 username: str = "demo"):
        self.user_dir = user_dir
        self.uuid = uuid
        self.log_path = user_dir / f"worker-{uuid}.log"
        user_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "BLENDER_MCP_PASSWORD": password, "BLENDER_USER_RESOURCES": str(user_dir)}
        common = ["--server", server_url, "--username", username, "--uuid", uuid, *args]
        if BLENDER:
            subprocess.run([BLENDER, "-b", "--factory-startup", "--python-expr", INSTALL_SCRIPT, "--",
                            extension_zip()], env=env, check=True, capture_output=True, timeout=120)
            cmd = [BLENDER, "-b", "-c", "mcp_worker", *common]
        else:
            cmd = [sys.executable, "-m", "blender_mcp_addon.worker_cli", "--zip", extension_zip(),
                   "--user-dir", str(user_dir), *common]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept for the process's life
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
