"""Blenders that do not install the bundled wheels right: unpack the ones that fit here, once.

Blender 3.4-4.1 have no extension system, so no one installs them. Blender
4.2.0-4.2.3 install one wheel per project whatever its Python tag (they
de-duplicate by name and only 4.2.4 began to filter by Python), so for
pydantic_core, cffi ... they may pick another Python's build: measured on
bpy 4.2.0 with the multi-Python zip, "cannot import name 'ArgsKwargs' from
'pydantic_core._pydantic_core'".

The legacy add-on installer unpacks the zip into scripts/addons/blender_mcp/,
wheels/ included. Binary wheels (pydantic_core, cryptography ...) cannot be
imported from a zip, so the ones that fit this Python (`wheel_tags.pick`:
`legacy_wheels/py3XY/` first, then `wheels/`) are unpacked into `_vendor/`
beside this file and that folder goes first on sys.path. A stamp file names
the wheels that were unpacked, so a new version of the add-on, or a Blender
on another Python sharing the folder, unpacks again.
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

from . import wheel_tags

HERE = Path(__file__).resolve().parent
VENDOR = HERE / "_vendor"


def needs_wheels() -> bool:
    import bpy

    return bpy.app.version < (4, 2, 4)


def wheels_for_this_python(root: Path = HERE) -> list[Path]:
    own = root / "legacy_wheels" / wheel_tags.folder_for(sys.version_info[:2])
    shared = {w.name: w for w in (root / "wheels").glob("*.whl")}
    mine = {w.name: w for w in own.glob("*.whl")}
    return [mine.get(name) or shared[name] for name in wheel_tags.pick(sorted(shared), sorted(mine))]


def activate_wheels() -> Path | None:
    wheels = wheels_for_this_python()
    if not wheels:
        return None
    stamp = VENDOR / ".unpacked"
    wanted = "\n".join([sys.version.split()[0], *(w.name for w in wheels)])
    if not stamp.exists() or stamp.read_text() != wanted:
        shutil.rmtree(VENDOR, ignore_errors=True)  # another Python's or version's modules must not linger
        VENDOR.mkdir()
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as zf:
                zf.extractall(VENDOR)
        stamp.write_text(wanted)
    if str(VENDOR) not in sys.path:
        sys.path.insert(0, str(VENDOR))
    return VENDOR
