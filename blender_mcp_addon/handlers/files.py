"""Files: `save_blend` and `export_scene`, the commands that write a path the caller chooses.

The path goes through this Blender's write limits (limits.py: the output folder, symlinks and `..`
resolved) before anything is written. Imports only read, and downloads go to the add-on's own folder.
"""

from __future__ import annotations

import os
from typing import Any

from ..session import current_limits, note_file_saved
from . import CommandError, command


def _writable(filepath: str, suffixes: tuple[str, ...]) -> str:
    if not filepath.lower().endswith(suffixes):  # checked first: a wrong name must not make folders
        raise CommandError(f"filepath must end with {' or '.join(suffixes)}")
    path = current_limits().write_path(filepath)
    if not path.lower().endswith(suffixes):  # a symlink named x.blend may point at any file
        raise CommandError(f"filepath {filepath!r} leads to {path!r}, which does not end with "
                           f"{' or '.join(suffixes)}")
    if not os.path.isdir(os.path.dirname(path)):
        raise CommandError(f"folder {os.path.dirname(path)!r} does not exist")
    return path


def _has_operator(module: str, name: str) -> bool:
    """Whether this Blender build has `bpy.ops.<module>.<name>` (distribution builds may lack USD, say)."""
    import bpy

    try:
        getattr(getattr(bpy.ops, module), name).get_rna_type()
    except (KeyError, AttributeError):
        return False
    return True


@command("save_blend")
def save_blend(filepath: str | None = None) -> dict[str, Any]:
    import bpy

    if filepath is None:
        if not bpy.data.filepath:
            raise CommandError("this file was never saved: pass filepath")
        bpy.ops.wm.save_mainfile()
        path = bpy.data.filepath
    else:
        path = _writable(filepath, (".blend",))
        bpy.ops.wm.save_as_mainfile(filepath=path)
    note_file_saved()
    return {"filepath": path, "bytes": os.path.getsize(path)}


@command("export_scene")
def export_scene(filepath: str, format: str = "glb", selected_only: bool = False) -> dict[str, Any]:
    import bpy

    suffix = {"glb": (".glb",), "gltf": (".gltf",), "obj": (".obj",), "fbx": (".fbx",),
              "usd": (".usd", ".usda", ".usdc", ".usdz")}[format]
    path = _writable(filepath, suffix)
    if format in ("glb", "gltf"):
        bpy.ops.export_scene.gltf(filepath=path, export_format="GLB" if format == "glb" else "GLTF_SEPARATE",
                                  use_selection=selected_only)
    elif format == "obj":
        bpy.ops.wm.obj_export(filepath=path, export_selected_objects=selected_only)
    elif format == "fbx":
        if not _has_operator("export_scene", "fbx"):
            raise CommandError("the FBX add-on is not enabled in this Blender")
        bpy.ops.export_scene.fbx(filepath=path, use_selection=selected_only)
    else:
        if not _has_operator("wm", "usd_export"):  # Debian's Blender 4.3 and 5.2, for one
            raise CommandError(f"this Blender {bpy.app.version_string} was built without USD export")
        bpy.ops.wm.usd_export(filepath=path, selected_objects_only=selected_only)
    if not os.path.exists(path):
        raise CommandError(f"the exporter wrote no file at {path}")
    return {"filepath": path, "format": format, "bytes": os.path.getsize(path)}
