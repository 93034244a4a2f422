"""Poly Haven commands: status, categories, search, download into the scene, set_texture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..integrations.http import ServiceError
from ..integrations.polyhaven import ASSET_TYPE_CODES, NON_MAP_KEYS, PolyHaven, pick, url_filename
from ..integrations.safety import safe_name
from ..integrations.settings import setting
from . import Background, CommandError, Progress, command
from .importing import import_model_file
from .services import download_folder, from_service, integration_on

DEFAULT_API = "https://api.polyhaven.com"


def _api() -> PolyHaven:
    return PolyHaven(setting("polyhaven_api_url", DEFAULT_API))


@command("get_polyhaven_status")
def get_polyhaven_status() -> dict[str, Any]:
    enabled = integration_on("polyhaven")
    return {"enabled": enabled, "api_url": setting("polyhaven_api_url", DEFAULT_API),
            "message": "Poly Haven is enabled" if enabled else
            "Poly Haven is disabled in the add-on preferences"}


@command("get_polyhaven_categories", integration="polyhaven")
def get_polyhaven_categories(asset_type: str = "hdris"):
    categories = yield Background(from_service(lambda: _api().categories(asset_type)))
    return {"asset_type": asset_type, "categories": categories}


@command("search_polyhaven_assets", integration="polyhaven")
def search_polyhaven_assets(asset_type: str = "all", categories: str | None = None, limit: int = 20, offset: int = 0):
    assets = yield Background(from_service(lambda: _api().assets(asset_type, categories)))
    ranked = sorted(assets.items(), key=lambda kv: -int(kv[1].get("download_count", 0) or 0))
    page = [{"id": asset_id, "name": a.get("name", asset_id), "type": ASSET_TYPE_CODES.get(a.get("type"), a.get("type")),
             "categories": a.get("categories", []), "tags": a.get("tags", [])[:8],
             "downloads": a.get("download_count", 0)} for asset_id, a in ranked[offset:offset + limit]]
    return {"total": len(assets), "offset": offset, "assets": page}


@command("download_polyhaven_asset", integration="polyhaven")
def download_polyhaven_asset(asset_id: str, asset_type: str, resolution: str = "1k", file_format: str | None = None):
    api = _api()
    folder = download_folder("polyhaven", asset_id)
    yield Progress(0.0, f"fetching the file list of {asset_id}")
    files = yield Background(from_service(lambda: api.files(asset_id)))
    if asset_type == "hdris":
        fmt = file_format or "hdr"
        entry = _picked(files, "hdri", resolution, fmt)
        yield Progress(0.1, f"downloading {asset_id} ({resolution} {fmt})")
        path = yield Background(from_service(lambda: api.fetch(entry, folder, f"{safe_name(asset_id)}_{resolution}.{fmt}")))
        return _hdri_to_world(asset_id, path)
    if asset_type == "textures":
        fmt = file_format or "jpg"
        maps = {key: _picked(files, key, resolution, fmt) for key in files
                if key not in NON_MAP_KEYS and isinstance(files[key], dict) and resolution in files[key]
                and fmt in files[key][resolution]}
        if not maps:
            raise CommandError(f"no {fmt} texture maps at {resolution} for {asset_id}")
        paths = {}
        for i, (key, entry) in enumerate(sorted(maps.items())):
            yield Progress(0.1 + 0.8 * i / len(maps), f"downloading {key} map")
            paths[key] = yield Background(from_service(lambda e=entry: api.fetch(e, folder, url_filename(e["url"]))))
        return _texture_material(asset_id, paths)
    fmt = file_format or "gltf"
    entry = _picked(files, fmt, resolution, fmt)
    yield Progress(0.1, f"downloading {asset_id} ({fmt}) and {len(entry.get('include') or {})} linked files")
    path = yield Background(from_service(lambda: api.fetch(entry, folder, url_filename(entry["url"]))))
    return _import_model(asset_id, path, fmt)


def _picked(files: dict[str, Any], key: str, resolution: str, fmt: str) -> dict[str, Any]:
    try:
        return pick(files, key, resolution, fmt)
    except ServiceError as exc:
        raise CommandError(str(exc)) from None


def _hdri_to_world(asset_id: str, path: Path) -> dict[str, Any]:
    import bpy

    scene = bpy.context.scene
    world = scene.world or bpy.data.worlds.new("World")
    scene.world = world
    world.use_nodes = True
    nodes, links = world.node_tree.nodes, world.node_tree.links
    nodes.clear()
    env = nodes.new("ShaderNodeTexEnvironment")
    env.image = bpy.data.images.load(str(path), check_existing=True)
    background = nodes.new("ShaderNodeBackground")
    output = nodes.new("ShaderNodeOutputWorld")
    links.new(env.outputs["Color"], background.inputs["Color"])
    links.new(background.outputs["Background"], output.inputs["Surface"])
    return {"asset_id": asset_id, "type": "hdris", "world": world.name, "image": env.image.name, "file": str(path)}


_MAP_INPUTS = {"diff": "Base Color", "diffuse": "Base Color", "col": "Base Color", "rough": "Roughness",
               "metal": "Metallic", "nor_gl": "Normal", "normal": "Normal"}


def _texture_material(asset_id: str, paths: dict[str, Path]) -> dict[str, Any]:
    import bpy

    mat = bpy.data.materials.get(asset_id) or bpy.data.materials.new(asset_id)
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next((n for n in nodes if n.type == "BSDF_PRINCIPLED"), None) or nodes.new("ShaderNodeBsdfPrincipled")
    used = {}
    for key, path in sorted(paths.items()):
        target = next((inp for k, inp in _MAP_INPUTS.items() if k in key.lower()), None)
        if target is None:
            continue
        tex = nodes.new("ShaderNodeTexImage")
        tex.image = bpy.data.images.load(str(path), check_existing=True)
        if target != "Base Color":
            tex.image.colorspace_settings.name = "Non-Color"
        if target == "Normal":
            normal_map = nodes.new("ShaderNodeNormalMap")
            links.new(tex.outputs["Color"], normal_map.inputs["Color"])
            links.new(normal_map.outputs["Normal"], bsdf.inputs["Normal"])
        else:
            links.new(tex.outputs["Color"], bsdf.inputs[target])
        used[key] = target
    return {"asset_id": asset_id, "type": "textures", "material": mat.name, "maps": used,
            "files": {k: str(p) for k, p in paths.items()}}


def _import_model(asset_id: str, path: Path, fmt: str) -> dict[str, Any]:
    return {"asset_id": asset_id, "type": "models", "imported_objects": import_model_file(path, fmt), "file": str(path)}


@command("set_texture", integration="polyhaven")
def set_texture(object_name: str, texture_id: str) -> dict[str, Any]:
    import bpy

    obj = bpy.data.objects.get(object_name)
    if obj is None:
        raise CommandError(f"no object named {object_name!r}")
    mat = bpy.data.materials.get(texture_id)
    if mat is None:
        raise CommandError(f"no material {texture_id!r}: download it first with "
                           "download_polyhaven_asset(asset_type='textures')")
    if not hasattr(obj.data, "materials"):
        raise CommandError(f"{object_name} ({obj.type}) cannot take a material")
    obj.data.materials.clear()
    obj.data.materials.append(mat)
    return {"object": obj.name, "material": mat.name}
