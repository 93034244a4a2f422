"""`blender-mcp-worker`: the headless worker on the `bpy` module of the project's environment.

Installs the built extension zip into a Blender user folder of its own with
Blender's extension installer, enables it, and runs the extension's worker,
so what runs is exactly what an artist installs.

    blender-mcp-worker --server http://127.0.0.1:8000 --username demo  (BLENDER_MCP_PASSWORD=demo)
"""

from __future__ import annotations

import argparse
import glob
import importlib
import importlib.util
import os
import sys
from pathlib import Path

from .platform_tag import blender_platform

PACKAGE = "blender_mcp"
REPO = "user_default"


def _default_zip() -> str | None:
    """The newest zip for this machine's platform in the checkout's dist/."""
    here = Path(__file__).resolve().parent.parent
    suffix = blender_platform().replace("-", "_")
    hits = sorted(glob.glob(str(here / "dist" / f"{PACKAGE}-*-{suffix}.zip")), key=os.path.getmtime)
    return hits[-1] if hits else None


def install_and_enable(zip_path: str) -> object:
    import bpy

    result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo=REPO, enable_on_install=True,
                                                      overwrite=True)
    if "FINISHED" not in result or importlib.util.find_spec(f"bl_ext.{REPO}.{PACKAGE}") is None:
        raise SystemExit(f"could not install {zip_path} (is it the zip for {blender_platform()}?)")
    return importlib.import_module(f"bl_ext.{REPO}.{PACKAGE}.worker")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--zip", default=os.environ.get("BLENDER_MCP_ZIP") or _default_zip())
    pre.add_argument("--user-dir", default=os.environ.get("BLENDER_MCP_WORKER_HOME",
                                                          str(Path.home() / ".local/share/blender-mcp-worker")))
    ours, rest = pre.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        print(__doc__)
        print("  --zip PATH        the extension zip (default: the newest in dist/)")
        print("  --user-dir PATH   the Blender user folder to install it into")
    if not ours.zip or not Path(ours.zip).exists():
        print("error: no extension zip; build one with `python build_addon.py` or pass --zip", file=sys.stderr)
        return 2
    os.makedirs(ours.user_dir, exist_ok=True)
    os.environ["BLENDER_USER_RESOURCES"] = ours.user_dir  # read when bpy starts: set before the import
    import bpy  # noqa: F401

    worker = install_and_enable(ours.zip)
    code = worker.run(rest, prog="blender-mcp-worker")  # type: ignore[attr-defined]
    sys.stdout.flush()
    sys.stderr.flush()
    # bpy's exit-time leak reporter can turn a clean exit non-zero (seen on 4.5): our own cleanup is done.
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
