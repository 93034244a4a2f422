"""Bringing downloaded models into the scene, shared by Poly Haven, Rodin and Sketchfab."""

from __future__ import annotations

from pathlib import Path

from . import CommandError


def _restore_numpy_bool() -> None:
    """Blender 3.4's glTF importer uses `numpy.bool`, which numpy 1.24 removed, and Debian 12 ships the two
    together: its glTF import fails for everyone ("module 'numpy' has no attribute 'bool'"). The alias was
    the builtin `bool`, so putting it back changes nothing else; numpy 2 has the name again."""
    try:
        import numpy
    except ImportError:
        return
    if not hasattr(numpy, "bool"):
        numpy.bool = bool  # type: ignore[attr-defined]


def import_model_file(path: Path, fmt: str) -> list[str]:
    """Import a glTF/GLB, FBX, OBJ or .blend file; returns the names of the new objects."""
    import bpy

    before = set(bpy.data.objects)
    if fmt in ("gltf", "glb"):
        if bpy.app.version < (3, 6, 0):
            _restore_numpy_bool()
        bpy.ops.import_scene.gltf(filepath=str(path))
    elif fmt == "fbx":
        bpy.ops.import_scene.fbx(filepath=str(path))
    elif fmt == "obj":
        bpy.ops.wm.obj_import(filepath=str(path))
    elif fmt == "blend":
        with bpy.data.libraries.load(str(path), link=False) as (src, dst):
            dst.objects = list(src.objects)
        for obj in dst.objects:
            if obj is not None:
                bpy.context.scene.collection.objects.link(obj)
    else:
        raise CommandError(f"cannot import {fmt} files; use gltf, glb, fbx, obj or blend")
    return sorted(o.name for o in set(bpy.data.objects) - before)


def fit_to_size(names: list[str], target_size: float) -> float:
    """Scale the imported top-level objects so their largest dimension is `target_size`; returns the factor."""
    import bpy
    from mathutils import Vector

    objects = [bpy.data.objects[n] for n in names]
    corners = [o.matrix_world @ Vector(c) for o in objects if o.type == "MESH" for c in o.bound_box]
    if not corners:
        return 1.0
    extent = max(max(c[i] for c in corners) - min(c[i] for c in corners) for i in range(3))
    if extent <= 0:
        return 1.0
    factor = target_size / extent
    for obj in objects:
        if obj.parent is None:
            obj.scale = [s * factor for s in obj.scale]
    return factor
