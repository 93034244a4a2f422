"""Sketchfab commands: status, search, preview (an image for the caller), download into the scene."""

from __future__ import annotations

import base64
from typing import Any

from ..integrations.settings import setting
from ..integrations.sketchfab import Sketchfab
from . import Background, Progress, command
from .importing import fit_to_size, import_model_file
from .services import download_folder, from_service, integration_on

DEFAULT_API = "https://api.sketchfab.com/v3"


def _api() -> Sketchfab:
    return Sketchfab(setting("sketchfab_api_url", DEFAULT_API), setting("sketchfab_api_key"))


@command("get_sketchfab_status")
def get_sketchfab_status():
    enabled = integration_on("sketchfab")
    if not enabled:
        return {"enabled": False, "message": "Sketchfab is disabled in the add-on preferences"}
    me = yield Background(from_service(lambda: _api().me()))
    return {"enabled": True, "username": me.get("username"), "message": f"logged in as {me.get('username')}"}


@command("search_sketchfab_models", integration="sketchfab")
def search_sketchfab_models(query: str, categories: str | None = None, count: int = 20, downloadable: bool = True):
    found = yield Background(from_service(lambda: _api().search(query, categories, count, downloadable)))
    models: list[dict[str, Any]] = []
    for m in found.get("results", [])[:count]:
        models.append({"uid": m.get("uid"), "name": m.get("name"),
                       "author": (m.get("user") or {}).get("username"),
                       "license": (m.get("license") or {}).get("label"),
                       "downloadable": m.get("isDownloadable"), "faces": m.get("faceCount"),
                       "url": m.get("viewerUrl")})
    return {"query": query, "models": models, "more": bool(found.get("next"))}


@command("get_sketchfab_model_preview", integration="sketchfab")
def get_sketchfab_model_preview(uid: str):
    data, size = yield Background(from_service(lambda: _api().thumbnail(uid)))
    mime = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"
    return {"uid": uid, "image_base64": base64.b64encode(data).decode(), "mime_type": mime, **size}


@command("download_sketchfab_model", integration="sketchfab")
def download_sketchfab_model(uid: str, target_size: float | None = None):
    folder = download_folder("sketchfab", uid)
    yield Progress(0.1, f"downloading Sketchfab model {uid}")
    path = yield Background(from_service(lambda: _api().download_gltf(uid, folder)))
    yield Progress(0.9, "importing")
    names = import_model_file(path, path.suffix.lstrip(".").lower())
    factor = fit_to_size(names, target_size) if target_size else 1.0
    return {"uid": uid, "imported_objects": names, "scale_factor": round(factor, 6), "file": str(path)}
