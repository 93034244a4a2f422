"""Sketchfab Data API v3: search, preview, download (a zipped glTF) with the user's API token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from .http import ServiceError, download, get_json
from .libraries import extract_zip
from .safety import safe_name


class Sketchfab:
    def __init__(self, base_url: str, api_key: str = "", session: requests.Session | None = None):
        self.base = base_url.rstrip("/")
        self.http = session or requests.Session()
        self.auth = {"Authorization": f"Token {api_key}"} if api_key else {}

    def me(self) -> dict[str, Any]:
        if not self.auth:
            raise ServiceError("no Sketchfab API key: set it in the add-on preferences")
        return get_json(self.http, f"{self.base}/me", headers=self.auth)

    def search(self, query: str, categories: str | None, count: int, downloadable: bool) -> dict[str, Any]:
        params: dict[str, Any] = {"type": "models", "q": query, "count": count}
        if downloadable:
            params["downloadable"] = "true"
        if categories:
            params["categories"] = categories
        return get_json(self.http, f"{self.base}/search", params=params, headers=self.auth)

    def model(self, uid: str) -> dict[str, Any]:
        return get_json(self.http, f"{self.base}/models/{safe_name(uid)}", headers=self.auth)

    def thumbnail(self, uid: str, max_width: int = 1024) -> tuple[bytes, dict[str, Any]]:
        images = (self.model(uid).get("thumbnails") or {}).get("images") or []
        fitting = [i for i in images if int(i.get("width") or 0) <= max_width] or images
        if not fitting:
            raise ServiceError(f"model {uid} has no preview image")
        best = max(fitting, key=lambda i: int(i.get("width") or 0))
        try:
            r = self.http.get(best["url"], timeout=30)
        except requests.RequestException as exc:
            raise ServiceError(f"cannot fetch the preview: {exc.__class__.__name__}") from None
        if r.status_code >= 400:
            raise ServiceError(f"preview answered HTTP {r.status_code}")
        return r.content, {"width": best.get("width"), "height": best.get("height")}

    def download_gltf(self, uid: str, folder: Path) -> Path:
        """Download the model's glTF archive and unpack it safely; returns the .gltf/.glb inside."""
        if not self.auth:
            raise ServiceError("downloads need a Sketchfab API key: set it in the add-on preferences")
        links = get_json(self.http, f"{self.base}/models/{safe_name(uid)}/download", headers=self.auth)
        gltf = links.get("gltf") or {}
        if not isinstance(gltf.get("url"), str):
            raise ServiceError("this model offers no glTF download (is it downloadable?)")
        archive = download(self.http, gltf["url"], folder / f"{safe_name(uid)}.zip")
        extract_zip(archive, folder / "model")
        found = sorted((folder / "model").rglob("*.gltf")) + sorted((folder / "model").rglob("*.glb"))
        if not found:
            raise ServiceError("the archive holds no .gltf or .glb file")
        return found[0]
