"""`setup --install-addon`: find a Blender, ask its version, install and enable the add-on zip in it.

Blender 4.2+ installs it with its own extension CLI (`--command extension install-file --repo
user_default --enable`); 3.4-4.1 have no extension system, so the legacy add-on installer runs in
`blender -b` and saves the preferences. Blender's user folders follow its own environment
(`BLENDER_USER_RESOURCES`, `BLENDER_USER_CONFIG`, `BLENDER_USER_SCRIPTS`), which this passes through.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from blender_mcp_addon.platform_tag import blender_platform

LEGACY_INSTALL = """
import bpy, sys
bpy.ops.preferences.addon_install(filepath=sys.argv[-1], overwrite=True)
bpy.ops.preferences.addon_enable(module="blender_mcp")
bpy.ops.wm.save_userpref()
"""
PROBE = "import bpy; print('BMCP_ADDONS=' + ','.join(sorted(bpy.context.preferences.addons.keys())), flush=True)"
EXTENSION_MODULE = "bl_ext.user_default.blender_mcp"
LEGACY_MODULE = "blender_mcp"
# Where a wheel carries the zips (see build_backend/); a checkout has them in dist/ instead.
PACKAGED = Path(__file__).resolve().parent.parent / "addon"
CHECKOUT_DIST = Path(__file__).resolve().parents[3] / "dist"


class InstallError(Exception):
    pass


def _candidates() -> list[str]:
    if sys.platform == "darwin":
        return ["/Applications/Blender.app/Contents/MacOS/Blender",
                str(Path.home() / "Applications/Blender.app/Contents/MacOS/Blender")]
    if sys.platform == "win32":
        roots = [os.environ.get("ProgramFiles", r"C:\Program Files"), os.environ.get("LOCALAPPDATA", "")]
        found = [p for r in roots if r for p in glob.glob(os.path.join(r, "Blender Foundation", "Blender*",
                                                                        "blender.exe"))]
        return sorted(found, reverse=True)  # "Blender 4.5" sorts after "Blender 4.2": newest first
    return ["/usr/bin/blender", "/usr/local/bin/blender", "/snap/bin/blender",
            *sorted(glob.glob("/opt/blender*/blender"), reverse=True),
            *sorted(glob.glob(str(Path.home() / "blender*/blender")), reverse=True)]


def find_blender(explicit: str | None) -> list[str]:
    """The command that runs Blender: `--blender` (a path or shell words, such as a wrapper and its
    arguments), else `blender` on PATH, else the usual install folders."""
    if explicit:
        return shlex.split(explicit, posix=sys.platform != "win32")
    on_path = shutil.which("blender")
    if on_path:
        return [on_path]
    for path in _candidates():
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return [path]
    raise InstallError("no Blender found on PATH or in the usual folders; pass --blender PATH")


def blender_version(command: list[str], env: dict[str, str] | None = None) -> tuple[int, int, int]:
    try:
        out = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=120, env=env)
    except OSError as exc:
        raise InstallError(f"cannot run {command[0]}: {exc}") from None
    found = re.search(r"Blender (\d+)\.(\d+)\.(\d+)", out.stdout)
    if not found:
        raise InstallError(f"{shlex.join(command)} --version did not name a version: {out.stdout[-300:]!r}")
    major, minor, patch = (int(x) for x in found.groups())
    return major, minor, patch


def find_zip(explicit: Path | None) -> Path:
    if explicit:
        if not explicit.is_file():
            raise InstallError(f"no such zip: {explicit}")
        return explicit
    suffix = blender_platform().replace("-", "_")
    # The newest of both: in a checkout, a copy staged by an earlier wheel build may lag behind dist/.
    hits = sorted((p for folder in (PACKAGED, CHECKOUT_DIST) for p in folder.glob(f"blender_mcp-*-{suffix}.zip")),
                  key=lambda p: p.stat().st_mtime)
    if hits:
        return hits[-1]
    raise InstallError(f"no add-on zip for {blender_platform()} in this package or in dist/: build it with "
                       "`python build_addon.py` in a checkout, or pass --zip")


def install(command: list[str], zip_path: Path, version: tuple[int, int, int],
            env: dict[str, str] | None = None) -> str:
    """Install and enable; the module name Blender then lists as enabled."""
    if version >= (4, 2, 0):
        cmd = [*command, "--command", "extension", "install-file", "--repo", "user_default", "--enable",
               str(zip_path)]
        module = EXTENSION_MODULE
    else:
        # No --factory-startup: save_userpref would then write factory settings over the user's own.
        cmd = [*command, "-b", "--python-expr", LEGACY_INSTALL, "--", str(zip_path)]
        module = LEGACY_MODULE
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0 or "Traceback" in out:
        raise InstallError(f"installing failed (exit {proc.returncode}): {out[-2000:]}")
    return module


def enabled_addons(command: list[str], env: dict[str, str] | None = None) -> list[str]:
    proc = subprocess.run([*command, "-b", "--python-expr", PROBE], capture_output=True, text=True,
                          timeout=180, env=env)
    found = re.search(r"^BMCP_ADDONS=(.*)$", proc.stdout, re.M)
    if not found:
        raise InstallError(f"could not list Blender's add-ons: {(proc.stdout + proc.stderr)[-1000:]}")
    return [name for name in found.group(1).split(",") if name]


def install_addon(args: argparse.Namespace) -> int:
    try:
        command = find_blender(args.blender)
        version = blender_version(command)
        zip_path = find_zip(args.zip)
        shown = ".".join(map(str, version))
        how = "extension" if version >= (4, 2, 0) else "legacy add-on"
        print(f"Blender {shown} ({shlex.join(command)}): installing {zip_path.name} as an {how}")
        if args.dry_run:
            print("dry run: nothing installed")
            return 0
        module = install(command, zip_path, version)
        if module not in enabled_addons(command):
            raise InstallError(f"installed, but Blender does not list {module} as enabled")
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(f"installed and enabled {module} in Blender {shown}")
    return 0
