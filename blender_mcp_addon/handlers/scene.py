"""Reading the scene: `get_scene_info` (paged) and `get_object_info`."""

from __future__ import annotations

from typing import Any

from . import CommandError, command


def _vec(v: Any) -> list[float]:
    return [round(float(x), 5) for x in v]


def describe_object(obj: Any, detailed: bool = False) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": obj.name,
        "type": obj.type,
        "location": _vec(obj.location),
        "rotation_euler": _vec(obj.rotation_euler),
        "scale": _vec(obj.scale),
        "parent": obj.parent.name if obj.parent else None,
        "collections": [c.name for c in obj.users_collection],
        "materials": [s.material.name for s in getattr(obj, "material_slots", []) if s.material],
        "visible": bool(obj.visible_get()) if hasattr(obj, "visible_get") else True,
    }
    if detailed:
        info["dimensions"] = _vec(obj.dimensions)
        info["world_bounding_box"] = _world_bbox(obj)
        info["modifiers"] = [{"name": m.name, "type": m.type} for m in getattr(obj, "modifiers", [])]
        info["custom_properties"] = {k: _plain(obj[k]) for k in obj.keys() if not k.startswith("_")}
        data = obj.data
        if obj.type == "MESH" and data is not None:
            info["mesh"] = {"vertices": len(data.vertices), "edges": len(data.edges), "polygons": len(data.polygons)}
        elif obj.type == "LIGHT" and data is not None:
            info["light"] = {"type": data.type, "energy": float(data.energy), "color": _vec(data.color)}
        elif obj.type == "CAMERA" and data is not None:
            info["camera"] = {"lens": float(data.lens), "type": data.type}
    return info


def _world_bbox(obj: Any) -> list[list[float]] | None:
    try:
        from mathutils import Vector

        corners = [obj.matrix_world @ Vector(c) for c in obj.bound_box]
        return [_vec([min(c[i] for c in corners) for i in range(3)]), _vec([max(c[i] for c in corners) for i in range(3)])]
    except Exception:
        return None


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    try:
        return [_plain(v) for v in value]
    except TypeError:
        return str(value)


@command("get_scene_info")
def get_scene_info(offset: int = 0, limit: int = 100) -> dict[str, Any]:
    import bpy

    if not isinstance(offset, int) or offset < 0:
        raise CommandError("offset must be an integer >= 0")
    if not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise CommandError("limit must be an integer from 1 to 1000")
    scene = bpy.context.scene
    objects = sorted(scene.objects, key=lambda o: o.name)
    render = scene.render
    return {
        "name": scene.name,
        "file": bpy.data.filepath or None,
        "object_count": len(objects),
        "offset": offset,
        "limit": limit,
        "objects": [describe_object(o) for o in objects[offset:offset + limit]],
        "collections": [{"name": c.name, "objects": len(c.objects)} for c in bpy.data.collections],
        "materials_count": len(bpy.data.materials),
        "frame_range": [scene.frame_start, scene.frame_end],
        "frame_current": scene.frame_current,
        "fps": scene.render.fps,
        "render": {"engine": render.engine, "resolution": [render.resolution_x, render.resolution_y],
                   "resolution_percentage": render.resolution_percentage},
        "active_camera": scene.camera.name if scene.camera else None,
        "blender_version": bpy.app.version_string,
    }


@command("get_object_info")
def get_object_info(name: str) -> dict[str, Any]:
    import bpy

    obj = bpy.data.objects.get(name) if isinstance(name, str) else None
    if obj is None:
        raise CommandError(f"no object named {name!r}")
    return describe_object(obj, detailed=True)
