"""`blender-mcp-worker`: the headless worker on the `bpy` module of the Python that runs it.

Installs the built extension zip into a Blender user folder of its own with
Blender's extension installer, enables it, and runs the extension's worker,
so what runs is exactly what an artist installs. The zip must carry wheels
for this Python (every zip build_addon.py makes does: 3.11, 3.13, 3.14).

    blender-mcp-worker --server http://127.0.0.1:8000 --username demo  (BLENDER_MCP_PASSWORD=demo)
"""

from __future__ import annotations

import argparse
import glob
import importlib
import importlib.util
import os
import sys
import zipfile
from pathlib import Path

from . import wheel_tags
from .platform_tag import blender_platform

PACKAGE = "blender_mcp"
REPO = "user_default"


def zip_problem(path: str) -> str | None:
    """Why the zip at `path` cannot serve this Python, or None when it can.

    It must hold a pydantic_core wheel that fits (the binary every part of the client needs)."""
    try:
        with zipfile.ZipFile(path) as zf:
            wheels = [Path(n).name for n in zf.namelist() if n.endswith(".whl") and "/wheels/" in f"/{n}"]
    except (OSError, zipfile.BadZipFile) as exc:
        return f"{path} is not a readable zip ({exc})"
    core = [w for w in wheels if wheel_tags.distribution(w) == "pydantic-core"]
    if not any(wheel_tags.fits(w) for w in core):
        tags = sorted({wheel_tags.parse(w)[2] for w in core}) or ["none"]
        return (f"{path} has no wheels for Python {sys.version_info.major}.{sys.version_info.minor} "
                f"(it has {', '.join(tags)}): rebuild it with `./bmcp build`")
    return None


def _default_zip() -> str | None:
    """The newest zip in the checkout's dist/ for this machine's platform that fits this Python."""
    here = Path(__file__).resolve().parent.parent
    suffix = blender_platform().replace("-", "_")
    hits = sorted(glob.glob(str(here / "dist" / f"{PACKAGE}-*-{suffix}.zip")), key=os.path.getmtime, reverse=True)
    return next((hit for hit in hits if zip_problem(hit) is None), hits[0] if hits else None)


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
    pre.add_argument("--zip", default=os.environ.get("BLENDER_MCP_ZIP"))
    pre.add_argument("--user-dir", default=os.environ.get("BLENDER_MCP_WORKER_HOME",
                                                          str(Path.home() / ".local/share/blender-mcp-worker")))
    ours, rest = pre.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        from .worker import build_parser

        parser = build_parser("blender-mcp-worker")
        group = parser.add_argument_group("installing the extension")
        group.add_argument("--zip", help="the extension zip (default: the newest in dist/ that fits this Python; "
                                         "or BLENDER_MCP_ZIP)")
        group.add_argument("--user-dir", help="the Blender user folder to install it into (default: "
                                              "~/.local/share/blender-mcp-worker; or BLENDER_MCP_WORKER_HOME)")
        parser.print_help()
        return 0
    zip_path = ours.zip or _default_zip()
    if not zip_path or not Path(zip_path).exists():
        print("error: no extension zip; build one with `./bmcp build` or pass --zip", file=sys.stderr)
        return 2
    if problem := zip_problem(zip_path):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    os.makedirs(ours.user_dir, exist_ok=True)
    os.environ["BLENDER_USER_RESOURCES"] = ours.user_dir  # read when bpy starts: set before the import
    import bpy  # noqa: F401

    worker = install_and_enable(zip_path)
    code = worker.run(rest, prog="blender-mcp-worker")  # type: ignore[attr-defined]
    sys.stdout.flush()
    sys.stderr.flush()
    # bpy's exit-time leak reporter can turn a clean exit non-zero (seen on 4.5): our own cleanup is done.
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
