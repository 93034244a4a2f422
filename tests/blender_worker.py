"""Start a real headless Blender bus worker in the Blender under test (tests/blenders: bpy module or binary)."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
from pathlib import Path

from blender_mcp_addon.platform_tag import blender_platform
from tests import blenders
from tests.blenders import BLENDER, BPY_PYTHON
from tests.helpers import ROOT

# Blender 3.4-4.1 have no `-c`: the legacy add-on's worker runs from a one-line script.
LEGACY_WORKER = "import blender_mcp.worker as w; w.main()"
LEGACY_INSTALL = """
import bpy, sys
bpy.ops.preferences.addon_install(filepath=sys.argv[-1], overwrite=True)
bpy.ops.preferences.addon_enable(module="blender_mcp")
bpy.ops.wm.save_userpref()
"""


def extension_zip() -> str:
    suffix = blender_platform().replace("-", "_")
    hits = sorted(glob.glob(str(ROOT / "dist" / f"blender_mcp-*-{suffix}.zip")), key=os.path.getmtime)
    if not hits:
        raise RuntimeError("no extension zip in dist/: run `python build_addon.py` (./bmcp test does)")
    return hits[-1]


def install_into_binary(env: dict[str, str], zip_path: str) -> None:
    """Install and enable the zip in the real binary's user folder, as an artist or a farm script would."""
    assert BLENDER
    if blenders.has_extensions():
        cmd = [*BLENDER, "--command", "extension", "install-file", "--repo", "user_default", "--enable", zip_path]
    else:
        cmd = [*BLENDER, "-b", "--factory-startup", "--python-expr", LEGACY_INSTALL, "--", zip_path]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0 or "Traceback" in proc.stdout + proc.stderr:
        raise RuntimeError(f"installing the zip failed: {(proc.stdout + proc.stderr)[-3000:]}")


class Worker:
    def __init__(self, server_url: str, user_dir: Path, uuid: str, *args: str, password: str = "demo",
                 username: str = "demo", blend: Path | None = None, zip_path: str | None = None,
                 env: dict[str, str] | None = None):
        """`blend`: a .blend file Blender opens first (`blender -b FILE -c mcp_worker`; `--blend` on bpy).
        `zip_path`: the extension to install (default: the newest built one). `env`: more environment for
        Blender (service URLs and keys, bounds)."""
        zip_path = zip_path or extension_zip()
        self.user_dir = user_dir
        self.uuid = uuid
        self.log_path = user_dir / f"worker-{uuid}.log"
        user_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **(env or {}), "BLENDER_MCP_PASSWORD": password, "BLENDER_USER_RESOURCES": str(user_dir)}
        common = ["--server", server_url, "--username", username, "--uuid", uuid, *args]
        if BLENDER:
            install_into_binary(env, zip_path)
            opened = [str(blend)] if blend else []
            if blenders.has_extensions():
                cmd = [*BLENDER, "-b", *opened, "-c", "mcp_worker", *common]
            else:
                cmd = [*BLENDER, "-b", *opened, "--addons", "blender_mcp", "--python-expr", LEGACY_WORKER, "--",
                       *common]
        else:
            cmd = [BPY_PYTHON, "-m", "blender_mcp_addon.worker_cli", "--zip", zip_path,
                   "--user-dir", str(user_dir), *common, *(["--blend", str(blend)] if blend else [])]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept for the process's life
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    async def online(self, server_url: str, username: str = "demo", password: str = "demo",
                     timeout: float = 90) -> None:
        """Wait until the bus lists this worker online (its registration and event stream race)."""
        from tests.helpers import bus_client, wait_online

        async with bus_client(server_url, username=username, password=password, uuid=f"{self.uuid}-watch") as watch:
            await wait_online(watch, self.uuid, timeout=timeout)

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
