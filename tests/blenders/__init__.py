"""Which Blender the Blender tests drive, and how to run a script or the worker in it.

- default: the `bpy` module of the Python running the tests;
- `BLENDER_PYTHON=/path/to/python`: the `bpy` module of another Python (bpy 5.3 needs Python 3.13);
- `BLENDER="/path/to/blender"`: a real binary, or any command that runs one (shell words), such as a
  chroot launcher: `BLENDER="/var/cache/blender-mcp/chroots/sid.run blender"` (tests/blenders/chroot.py).

A real binary installs the zip the way Blender's own CLI does (`--command extension install-file`) on
4.2+, or through the legacy add-on installer on 3.4-4.1, and runs the worker as `-c mcp_worker` (4.2+)
or `--addons blender_mcp --python-expr` (3.4-4.1).
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
BLENDER: list[str] | None = shlex.split(os.environ["BLENDER"]) if os.environ.get("BLENDER") else None
BPY_PYTHON: str = os.environ.get("BLENDER_PYTHON") or sys.executable
# What a chroot's Blender must see where the host has it: the checkout (zip, test scripts, output).
os.environ.setdefault("BMCP_CHROOT_BINDS", str(ROOT))


def version_of(command: list[str], env: dict[str, str] | None = None) -> tuple[int, int, int]:
    """`(major, minor, patch)` of the Blender a command starts: a binary's `--version`, or a script that
    prints `Blender X.Y.Z` (the bpy module has no `--version`)."""
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env).stdout
    found = re.search(r"Blender (\d+)\.(\d+)\.(\d+)", out)
    if not found:
        raise RuntimeError(f"cannot tell the Blender version from {out[-500:]!r}")
    return tuple(int(x) for x in found.groups())  # type: ignore[return-value]


@functools.cache
def version() -> tuple[int, int, int]:
    """The Blender under test."""
    if BLENDER:
        return version_of([*BLENDER, "--version"])
    return version_of([BPY_PYTHON, "-c", "import bpy, os; print('Blender', bpy.app.version_string, flush=True); "
                                         "os._exit(0)"])


def has_extensions() -> bool:
    return version() >= (4, 2, 0)


def script_command(script: str, *args: str) -> list[str]:
    """Run Python `script` in the Blender under test; `args` end its sys.argv."""
    if BLENDER:
        return [*BLENDER, "-b", "--factory-startup", "--python-expr", script, "--", *args]
    return [BPY_PYTHON, "-c", script, *args]


def describe() -> str:
    major, minor, patch = version()
    how = " ".join(BLENDER) if BLENDER else f"bpy module of {BPY_PYTHON}"
    return f"Blender {major}.{minor}.{patch} ({how})"
