"""Poly Pizza (api.poly.pizza, low-poly glTF models) and ambientCG (ambientcg.com API v2, CC0 texture sets,
HDRIs and models), plus what every asset library search shares: small thumbnails, fetched with a bound."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from .http import USER_AGENT, ServiceError, get_json, max_download_bytes
from .safety import safe_join, safe_name

MAX_THUMBNAIL_BYTES = 512 * 1024


def fetch_thumbnail(session: requests.Session, url: str) -> tuple[bytes, str] | None:
    """A preview image and its MIME type, or None (a missing thumbnail must not fail the whole search)."""
    try:
        with session.get(url, stream=True, timeout=15, headers={"User-Agent": USER_AGENT}) as r:
            if r.status_code >= 400:
                return None
            data = b""
            for chunk in r.iter_content(64 * 1024):
                data += chunk
                if len(data) > MAX_THUMBNAIL_BYTES:
                    return None
    except requests.RequestException:
        return None
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return data, "image/png"
    if data[:3] == b"\xff\xd8\xff":
        return data, "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return data, "image/webp"
    return None


def extract_zip(archive: Path, folder: Path) -> list[Path]:
    """Unpack every member inside `folder` (names checked, total size bounded like a download)."""
    limit = max_download_bytes()
    out = []
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > limit:
            raise ServiceError(f"{archive.name} unpacks to more than the download limit")
        for member in members:
            target = safe_join(folder, member.filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(target, "wb") as dst:
                dst.write(src.read())
            out.append(target)
    return out


class PolyPizza:
    """Poly Pizza API v1.1: GET /search/{keyword}, GET /model/{id}; the key rides in X-Auth-Token."""

    def __init__(self, base_url: str, api_key: str, session: requests.Session | None = None):
        if not api_key:
            raise ServiceError("no Poly Pizza API key: set it in the add-on preferences or "
                               "BLENDER_MCP_POLYPIZZA_API_KEY")
        self.base = base_url.rstrip("/")
        self.http = session or requests.Session()
        self.auth = {"X-Auth-Token": api_key}

    def search(self, query: str, limit: int) -> list[dict[str, Any]]:
        path = f"/search/{quote(query, safe='')}" if query else "/popular"
        answer = get_json(self.http, f"{self.base}{path}", params={"Limit": limit}, headers=self.auth)
        results = answer.get("results") if isinstance(answer, dict) else None
        return [r for r in results or [] if isinstance(r, dict)]

    def model(self, model_id: str) -> dict[str, Any]:
        answer = get_json(self.http, f"{self.base}/model/{safe_name(model_id)}", headers=self.auth)
        if not isinstance(answer, dict) or not isinstance(answer.get("Download"), str):
            raise ServiceError(f"Poly Pizza has no downloadable model {model_id}")
        return answer


AMBIENTCG_TYPES = {"textures": "Material", "hdris": "HDRI", "models": "3DModel"}


class AmbientCG:
    """ambientCG API v2: GET /full_json with q, type, limit, offset, id and include=... ."""

    def __init__(self, base_url: str, session: requests.Session | None = None):
        self.base = base_url.rstrip("/")
        self.http = session or requests.Session()

    def search(self, query: str, asset_type: str, limit: int, offset: int) -> tuple[int, list[dict[str, Any]]]:
        params: dict[str, Any] = {"limit": limit, "offset": offset, "include": "tagData,previewData",
                                  "sort": "Popular"}
        if query:
            params["q"] = query
        if asset_type in AMBIENTCG_TYPES:
            params["type"] = AMBIENTCG_TYPES[asset_type]
        answer = get_json(self.http, f"{self.base}/full_json", params=params)
        found = answer.get("foundAssets") if isinstance(answer, dict) else None
        return int(answer.get("numberOfResults") or 0), [a for a in found or [] if isinstance(a, dict)]

    def asset(self, asset_id: str) -> dict[str, Any]:
        answer = get_json(self.http, f"{self.base}/full_json",
                          params={"id": safe_name(asset_id), "include": "downloadData,previewData"})
        found = answer.get("foundAssets") if isinstance(answer, dict) else None
        if not found or not isinstance(found[0], dict):
            raise ServiceError(f"ambientCG has no asset {asset_id}")
        return found[0]


def ambientcg_downloads(asset: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for folder in (asset.get("downloadFolders") or {}).values():
        for category in ((folder or {}).get("downloadFiletypeCategories") or {}).values():
            out += [d for d in (category or {}).get("downloads") or [] if isinstance(d, dict)]
    return out


def ambientcg_preview(asset: dict[str, Any]) -> str | None:
    """The smallest preview of at least 128 px (keys look like '128-PNG', '256-JPG-FFFFFF')."""
    previews = asset.get("previewImage") or {}
    sized = []
    for key, url in previews.items():
        head = str(key).split("-", 1)[0]
        if head.isdigit() and isinstance(url, str):
            sized.append((int(head), url))
    fitting = sorted(s for s in sized if s[0] >= 128) or sorted(sized)
    return fitting[0][1] if fitting else None
