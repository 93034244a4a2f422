"""Blender 3.4-4.1: no extension system, so no one installs the bundled wheels; do it here, once.

The legacy add-on installer unpacks the zip into scripts/addons/blender_mcp/,
wheels/ included. Binary wheels (pydantic_core, cryptography ...) cannot be
imported from a zip, so they are unpacked into `_vendor/` beside this file
and that folder goes first on sys.path. A stamp file names the wheels that
were unpacked, so a new version of the add-on unpacks again.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENDOR = HERE / "_vendor"


def needs_wheels() -> bool:
    import bpy

    return bpy.app.version < (4, 2, 0)


def activate_wheels() -> Path | None:
    wheels = sorted((HERE / "wheels").glob("*.whl")) + sorted((HERE / "legacy_wheels").glob("*.whl"))
    if not wheels:
        return None
    stamp = VENDOR / ".unpacked"
    wanted = "\n".join(w.name for w in wheels)
    if not stamp.exists() or stamp.read_text() != wanted:
        VENDOR.mkdir(exist_ok=True)
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as zf:
                zf.extractall(VENDOR)
        stamp.write_text(wanted)
    if str(VENDOR) not in sys.path:
        sys.path.insert(0, str(VENDOR))
    return VENDOR
