"""One search and one import across the asset libraries: Poly Haven, Sketchfab, Poly Pizza and ambientCG.

The per-library tools stay (their params are each library's own); these two take `source` and answer in
one shape, with the thumbnails as images for the caller to look at.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import requests

from ..integrations.http import ServiceError, download
from ..integrations.libraries import (
    AmbientCG,
    PolyPizza,
    ambientcg_downloads,
    ambientcg_preview,
    extract_zip,
    fetch_thumbnail,
)
from ..integrations.polyhaven import ASSET_TYPE_CODES
from ..integrations.safety import safe_join, safe_name
from ..integrations.settings import setting
from . import Background, CommandError, Progress, command
from .importing import fit_to_size, import_model_file
from .polyhaven import _api as polyhaven_api
from .polyhaven import _hdri_to_world, _texture_material, download_polyhaven_asset
from .services import download_folder, from_service, integration_on
from .sketchfab import _api as sketchfab_api
from .sketchfab import download_sketchfab_model

SOURCES = ("polyhaven", "sketchfab", "polypizza", "ambientcg")
LABELS = {"polyhaven": "Poly Haven", "sketchfab": "Sketchfab", "polypizza": "Poly Pizza", "ambientcg": "ambientCG"}
DEFAULT_URLS = {"polypizza": "https://api.poly.pizza/v1.1", "ambientcg": "https://ambientcg.com/api/v2"}
MODEL_ONLY = {"sketchfab", "polypizza"}
_AMBIENT_TYPES = {"Material": "textures", "HDRI": "hdris", "3DModel": "models"}


def _require(source: str) -> None:
    if source not in SOURCES:
        raise CommandError(f"unknown source {source!r}; use one of {', '.join(SOURCES)}")
    if not integration_on(source):
        raise CommandError(f"{LABELS[source]} is disabled in the add-on preferences; enable it there")


def _polypizza() -> PolyPizza:
    return PolyPizza(setting("polypizza_api_url", DEFAULT_URLS["polypizza"]), setting("polypizza_api_key"))


def _ambientcg() -> AmbientCG:
    return AmbientCG(setting("ambientcg_api_url", DEFAULT_URLS["ambientcg"]))


def _search(source: str, query: str, asset_type: str, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """(total, hits) with each hit {id, name, type, author, license, tags, thumbnail_url}."""
    words = query.lower().split()
    if source == "polyhaven":
        assets = polyhaven_api().assets(asset_type)
        hits = []
        for asset_id, a in sorted(assets.items(), key=lambda kv: -int(kv[1].get("download_count", 0) or 0)):
            text = " ".join([asset_id, str(a.get("name", "")), *map(str, a.get("tags", [])),
                             *map(str, a.get("categories", []))]).lower()
            if all(w in text for w in words):
                hits.append({"id": asset_id, "name": a.get("name", asset_id),
                             "type": ASSET_TYPE_CODES.get(a.get("type"), a.get("type")), "author": None,
                             "license": "CC0", "tags": list(a.get("tags", []))[:8],
                             "thumbnail_url": a.get("thumbnail_url")})
        return len(hits), hits[offset:offset + limit]
    if source == "sketchfab":
        found = sketchfab_api().search(query, None, min(100, offset + limit), True)
        hits = []
        for m in found.get("results", []):
            images = [i for i in (m.get("thumbnails") or {}).get("images") or [] if isinstance(i, dict)]
            small = sorted(images, key=lambda i: (int(i.get("width") or 0) < 200, int(i.get("width") or 0)))
            hits.append({"id": m.get("uid"), "name": m.get("name"), "type": "models",
                         "author": (m.get("user") or {}).get("username"),
                         "license": (m.get("license") or {}).get("label"), "tags": [],
                         "thumbnail_url": small[0].get("url") if small else None})
        return len(hits), hits[offset:offset + limit]
    if source == "polypizza":
        found = _polypizza().search(query, offset + limit)
        hits = [{"id": m.get("ID"), "name": m.get("Title"), "type": "models",
                 "author": (m.get("Creator") or {}).get("Username"), "license": m.get("Licence"),
                 "tags": list(m.get("Tags") or [])[:8], "triangles": m.get("Tri Count", m.get("TriangleCount")),
                 "thumbnail_url": m.get("Thumbnail")} for m in found]
        return len(hits), hits[offset:offset + limit]
    total, found = _ambientcg().search(query, asset_type, limit, offset)
    return total, [{"id": a.get("assetId"), "name": a.get("displayName"),
                    "type": _AMBIENT_TYPES.get(str(a.get("dataType")), a.get("dataType")), "author": None,
                    "license": "CC0", "tags": list(a.get("tags") or [])[:8],
                    "thumbnail_url": ambientcg_preview(a)} for a in found]


# The server refuses image results over 4 MiB in all: thumbnails stop short of that, the hits still listed.
MAX_THUMBNAILS_BYTES = 3 * 1024 * 1024


def _with_thumbnails(hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    session = requests.Session()
    images = []
    total = 0
    for hit in hits:
        url = hit.get("thumbnail_url")
        got = fetch_thumbnail(session, url) if isinstance(url, str) and url.startswith(("http://", "https://")) else None
        hit["thumbnail"] = None
        if got and total + len(got[0]) <= MAX_THUMBNAILS_BYTES:
            total += len(got[0])
            hit["thumbnail"] = len(images)
            images.append({"image_base64": base64.b64encode(got[0]).decode(), "mime_type": got[1]})
    return images


@command("search_assets")
def search_assets(source: str, query: str = "", type: str = "all", limit: int = 6, offset: int = 0,  # noqa: A002
                  thumbnails: bool = True):
    _require(source)
    if source in MODEL_ONLY and type not in ("all", "models"):
        raise CommandError(f"{LABELS[source]} has models only")
    total, hits = yield Background(from_service(lambda: _search(source, query, type, limit, offset)))
    images: list[dict[str, Any]] = []
    if thumbnails and hits:
        yield Progress(0.5, f"fetching {len(hits)} thumbnails")
        images = yield Background(lambda: _with_thumbnails(hits))
    for hit in hits:
        hit.pop("thumbnail_url", None)
        hit.setdefault("thumbnail", None)
    return {"source": source, "query": query, "type": type, "total": total, "offset": offset, "assets": hits,
            "images": images, "next": "import_asset(source, id); thumbnail is the index of the asset's image"}


def _polyhaven_type(asset_id: str) -> str:
    kind = ASSET_TYPE_CODES.get(polyhaven_api().info(asset_id).get("type"))
    if kind is None:
        raise ServiceError(f"Poly Haven did not say what type {asset_id!r} is: pass type")
    return kind


def _import_models(label: str, asset_id: str, path: Path, target_size: float | None) -> dict[str, Any]:
    names = import_model_file(path, path.suffix.lstrip(".").lower())
    if not names:
        raise CommandError(f"the {label} model had no objects")
    factor = fit_to_size(names, target_size) if target_size else 1.0
    return {"id": asset_id, "type": "models", "imported_objects": names, "scale_factor": round(factor, 6),
            "file": str(path)}


def _ambientcg_fetch(asset_id: str, resolution: str, file_format: str | None) -> tuple[str, Path, list[Path]]:
    asset = _ambientcg().asset(asset_id)
    kind = _AMBIENT_TYPES.get(str(asset.get("dataType")), "textures")
    fmt = (file_format or {"hdris": "hdr"}.get(kind, "jpg")).upper()
    wanted = f"{resolution.upper()}-{fmt}"
    downloads = ambientcg_downloads(asset)
    entry = next((d for d in downloads if d.get("attribute") == wanted and isinstance(d.get("downloadLink"), str)),
                 None)
    if entry is None:
        there = ", ".join(sorted({str(d.get("attribute")) for d in downloads})) or "none"
        raise ServiceError(f"ambientCG {asset_id} has no {wanted} download; there are: {there}")
    folder = download_folder("ambientcg", asset_id)
    name = str(entry.get("fileName") or f"{safe_name(asset_id)}_{wanted}.zip")
    path = download(requests.Session(), entry["downloadLink"], safe_join(folder, name))
    size = entry.get("size")
    if isinstance(size, int) and size > 0 and path.stat().st_size != size:
        path.unlink()
        raise ServiceError(f"{name}: size mismatch (expected {size} bytes)")
    if path.suffix.lower() != ".zip":
        return kind, path, [path]
    return kind, path, extract_zip(path, folder / path.stem)


def _ambientcg_into_scene(asset_id: str, kind: str, path: Path, members: list[Path],
                          target_size: float | None) -> dict[str, Any]:
    images = [p for p in members if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    worlds = [p for p in members if p.suffix.lower() in (".hdr", ".exr")]
    models = [p for p in members if p.suffix.lower() in (".glb", ".gltf", ".fbx", ".obj", ".blend")]
    if kind == "hdris" and worlds:
        return {**_hdri_to_world(asset_id, worlds[0]), "id": asset_id}
    if kind == "models" and models:
        return _import_models("ambientCG", asset_id, models[0], target_size)
    maps = {p.stem.rsplit("_", 1)[-1]: p for p in images if not p.stem.lower().endswith("normaldx")}
    if not maps:
        raise CommandError(f"the ambientCG download {path.name} holds nothing to import")
    return {**_texture_material(asset_id, maps), "id": asset_id}


@command("import_asset")
def import_asset(source: str, id: str, type: str | None = None, resolution: str = "1k",  # noqa: A002
                 file_format: str | None = None, target_size: float | None = None):
    _require(source)
    if source == "polyhaven":
        asset_type = type or (yield Background(from_service(lambda: _polyhaven_type(id))))
        result = yield from download_polyhaven_asset(id, asset_type, resolution, file_format)
        if asset_type == "models" and target_size:
            result["scale_factor"] = round(fit_to_size(result["imported_objects"], target_size), 6)
        return {"source": source, "id": id, **result}
    if source == "sketchfab":
        result = yield from download_sketchfab_model(id, target_size)
        return {"source": source, "id": id, **result}
    if source == "polypizza":
        yield Progress(0.1, f"downloading Poly Pizza model {id}")

        def fetch() -> Path:
            model = _polypizza().model(id)
            return download(requests.Session(), model["Download"],
                            download_folder("polypizza", id) / f"{safe_name(id)}.glb")

        path = yield Background(from_service(fetch))
        yield Progress(0.9, "importing")
        return {"source": source, **_import_models("Poly Pizza", id, path, target_size)}
    yield Progress(0.1, f"downloading ambientCG {id} ({resolution})")
    kind, path, members = yield Background(from_service(lambda: _ambientcg_fetch(id, resolution, file_format)))
    yield Progress(0.9, "importing")
    return {"source": source, **_ambientcg_into_scene(id, kind, path, members, target_size)}
