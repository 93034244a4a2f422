"""Reading data blocks the scene summary only counts: materials, collections, the file, and names of a kind.

These back the server's `blender://` resources as well as their own tools, so
each answer is plain JSON a model can read without follow-up calls.
"""

from __future__ import annotations

import os
from typing import Any

from ..session import unsaved_changes
from . import CommandError, command

NAME_KINDS = ("objects", "materials", "collections", "meshes", "images", "node_groups", "cameras", "lights",
              "worlds", "scenes")
MAX_NODES = 200  # a generated node tree can have thousands; the summary stays readable


def _vec(v: Any) -> list[float]:
    return [round(float(x), 5) for x in v]


def _value(socket: Any) -> Any:
    """A socket's unlinked value as JSON, or None for sockets without one (shaders, geometry)."""
    value = getattr(socket, "default_value", None)
    if value is None:
        return None
    if isinstance(value, bool | int | float | str):
        return round(value, 5) if isinstance(value, float) else value
    try:
        return _vec(value)
    except (TypeError, ValueError):
        return str(value)


def _abspath(filepath: str, owner: Any = None) -> str:
    import bpy

    # A path inside a linked library is relative to that library's file, not to the open one.
    library = getattr(owner, "library", None)
    return os.path.normpath(bpy.path.abspath(filepath, library=library)) if filepath else ""


def _image(image: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"name": image.name, "source": image.source, "packed": image.packed_file is not None}
    if image.source in ("FILE", "SEQUENCE", "TILED", "MOVIE"):
        path = _abspath(image.filepath, image)
        info["filepath"] = image.filepath
        info["abspath"] = path
        info["exists"] = info["packed"] or _exists(image, path)
    return info


def _exists(image: Any, path: str) -> bool:
    if image.source == "TILED" and "<UDIM>" in path:  # one file per tile: any tile's file will do
        folder, name = os.path.split(path)
        head, _, tail = name.partition("<UDIM>")
        return os.path.isdir(folder) and any(f.startswith(head) and f.endswith(tail) for f in os.listdir(folder))
    return os.path.exists(path)


def _principled(tree: Any) -> Any | None:
    """The Principled BSDF feeding the active output, else the first one in the tree."""
    nodes = [n for n in tree.nodes if n.type == "BSDF_PRINCIPLED"]
    for out in (n for n in tree.nodes if n.type == "OUTPUT_MATERIAL" and getattr(n, "is_active_output", True)):
        for link in out.inputs["Surface"].links if "Surface" in out.inputs else ():
            if link.from_node.type == "BSDF_PRINCIPLED":
                return link.from_node
    return nodes[0] if nodes else None


def _node(node: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"name": node.name, "type": node.type}
    if node.label:
        info["label"] = node.label
    # Only unlinked inputs carry a value worth reading; a linked one shows up in `links`.
    values = {s.name: _value(s) for s in node.inputs if not s.is_linked and getattr(s, "enabled", True)}
    values = {k: v for k, v in values.items() if v is not None}
    if values:
        info["inputs"] = values
    image = getattr(node, "image", None)
    if image is not None:
        info["image"] = image.name
    tree = getattr(node, "node_tree", None)
    if tree is not None:
        info["node_group"] = tree.name
    return info


@command("get_material_info")
def get_material_info(name: str) -> dict[str, Any]:
    import bpy

    mat = bpy.data.materials.get(name) if isinstance(name, str) else None
    if mat is None:
        raise CommandError(f"no material named {name!r}")
    info: dict[str, Any] = {
        "name": mat.name,
        "users": mat.users,
        "library": mat.library.name if mat.library else None,
        "viewport_color": _vec(mat.diffuse_color),
        "blend_method": getattr(mat, "blend_method", None),
        "objects": sorted(o.name for o in bpy.data.objects
                          if any(s.material == mat for s in getattr(o, "material_slots", ()))),
    }
    tree = mat.node_tree
    if tree is None:  # a material without nodes: only the viewport values apply
        info["node_tree"] = None
        info["base_color"] = _vec(mat.diffuse_color)
        info.update(metallic=round(mat.metallic, 5), roughness=round(mat.roughness, 5))
        return info
    bsdf = _principled(tree)
    if bsdf is not None:
        for key, socket in (("base_color", "Base Color"), ("metallic", "Metallic"), ("roughness", "Roughness"),
                            ("alpha", "Alpha")):
            if socket in bsdf.inputs:
                info[key] = _value(bsdf.inputs[socket])
                if bsdf.inputs[socket].is_linked:
                    info[f"{key}_from"] = bsdf.inputs[socket].links[0].from_node.name
    nodes = list(tree.nodes)
    info["node_tree"] = {
        "node_count": len(nodes),
        "nodes": [_node(n) for n in nodes[:MAX_NODES]],
        "links": [{"from": f"{lk.from_node.name}.{lk.from_socket.name}", "to": f"{lk.to_node.name}.{lk.to_socket.name}"}
                  for lk in tree.links][:MAX_NODES * 2],
        "principled_bsdf": bsdf.name if bsdf is not None else None,
    }
    info["images"] = [_image(n.image) for n in nodes if getattr(n, "image", None) is not None]
    return info


def _layer_collection(layer: Any, name: str) -> Any | None:
    if layer.collection.name == name:
        return layer
    for child in layer.children:
        if (found := _layer_collection(child, name)) is not None:
            return found
    return None


@command("get_collection_info")
def get_collection_info(name: str) -> dict[str, Any]:
    import bpy

    scene = bpy.context.scene
    if not isinstance(name, str):
        raise CommandError("name must be a string")
    coll = scene.collection if name == scene.collection.name else bpy.data.collections.get(name)
    if coll is None:
        raise CommandError(f"no collection named {name!r}")
    parents = [c.name for c in bpy.data.collections if coll.name in c.children]
    if any(coll.name == c.name for c in scene.collection.children):
        parents.insert(0, scene.collection.name)
    info: dict[str, Any] = {
        "name": coll.name,
        "objects": sorted(o.name for o in coll.objects),
        "all_objects_count": len(coll.all_objects),
        "children": [c.name for c in coll.children],
        "parents": parents,
        "library": coll.library.name if getattr(coll, "library", None) else None,
        "hide_viewport": bool(getattr(coll, "hide_viewport", False)),
        "hide_render": bool(getattr(coll, "hide_render", False)),
        "hide_select": bool(getattr(coll, "hide_select", False)),
        "color_tag": getattr(coll, "color_tag", None),
    }
    layer = _layer_collection(bpy.context.view_layer.layer_collection, coll.name)
    # Visibility has two layers: the collection's own flags, and the view layer's (exclude / eye icon).
    info["view_layer"] = ({"name": bpy.context.view_layer.name, "exclude": bool(layer.exclude),
                           "hide_viewport": bool(layer.hide_viewport), "visible": bool(layer.visible_get())}
                          if layer is not None else None)
    info["in_scene"] = layer is not None
    return info


def _library(lib: Any) -> dict[str, Any]:
    path = _abspath(lib.filepath, lib)
    return {"name": lib.name, "filepath": lib.filepath, "abspath": path, "exists": os.path.exists(path),
            "users": lib.users, "parent": lib.parent.name if lib.parent else None}


@command("get_file_info")
def get_file_info() -> dict[str, Any]:
    import bpy

    data = bpy.data
    libraries = [_library(lib) for lib in data.libraries]
    # filepath as stored (often relative, `//...`) and abspath as Blender resolves it, which is what was checked
    missing: list[dict[str, Any]] = [{"kind": "library", "name": lib["name"], "filepath": lib["filepath"],
                                      "abspath": lib["abspath"]} for lib in libraries if not lib["exists"]]
    for image in data.images:
        info = _image(image)
        if info.get("exists") is False:
            missing.append({"kind": "image", "name": image.name, "filepath": image.filepath,
                            "abspath": info["abspath"]})
    # Other data blocks that point at files; packed ones live in the .blend and cannot go missing.
    for kind, blocks in (("sound", data.sounds), ("movie_clip", data.movieclips), ("font", data.fonts),
                         ("volume", getattr(data, "volumes", ())), ("cache_file", data.cache_files)):
        for block in blocks:
            path = getattr(block, "filepath", "")
            if not path or path == "<builtin>" or getattr(block, "packed_file", None) is not None:
                continue
            if not os.path.exists(resolved := _abspath(path, block)):
                missing.append({"kind": kind, "name": block.name, "filepath": path, "abspath": resolved})
    return {
        "filepath": data.filepath or None,
        "saved": bool(data.filepath),
        "is_dirty": unsaved_changes(bool(data.is_dirty)),
        "file_version": list(data.version) if data.filepath else None,
        "blender_version": bpy.app.version_string,
        "libraries": libraries,
        "missing_files": missing,
        "counts": {"objects": len(data.objects), "materials": len(data.materials), "images": len(data.images),
                   "collections": len(data.collections), "scenes": len(data.scenes)},
    }


@command("list_names")
def list_names(kind: str = "objects", prefix: str = "", limit: int = 100) -> dict[str, Any]:
    import bpy

    if kind not in NAME_KINDS:
        raise CommandError(f"kind must be one of {', '.join(NAME_KINDS)}")
    if not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise CommandError("limit must be an integer from 1 to 1000")
    wanted = (prefix or "").lower()
    names = sorted(b.name for b in getattr(bpy.data, kind) if b.name.lower().startswith(wanted))
    if kind == "collections" and bpy.context.scene.collection.name.lower().startswith(wanted):
        names.insert(0, bpy.context.scene.collection.name)  # the root is no data block, but is addressable
    return {"kind": kind, "prefix": prefix, "total": len(names), "names": names[:limit]}
