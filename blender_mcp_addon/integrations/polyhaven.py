"""The Poly Haven public API (api.polyhaven.com): types, categories, assets, files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests

from .http import ServiceError, download, get_json
from .safety import safe_join, safe_name

ASSET_TYPE_CODES = {0: "hdris", 1: "textures", 2: "models"}
# Keys of a texture's file list that are not texture maps.
NON_MAP_KEYS = {"blend", "gltf", "mtlx", "fbx", "usd"}


class PolyHaven:
    def __init__(self, base_url: str, session: requests.Session | None = None):
        self.base = base_url.rstrip("/")
        self.http = session or requests.Session()

    def categories(self, asset_type: str) -> dict[str, int]:
        return get_json(self.http, f"{self.base}/categories/{asset_type}")

    def assets(self, asset_type: str = "all", categories: str | None = None) -> dict[str, Any]:
        params: dict[str, str] = {}
        if asset_type != "all":
            params["type"] = asset_type
        if categories:
            params["categories"] = categories
        return get_json(self.http, f"{self.base}/assets", params=params)

    def info(self, asset_id: str) -> dict[str, Any]:
        answer = get_json(self.http, f"{self.base}/info/{safe_name(asset_id)}")
        if not isinstance(answer, dict):
            raise ServiceError(f"Poly Haven has no asset {asset_id!r}")
        return answer

    def files(self, asset_id: str) -> dict[str, Any]:
        return get_json(self.http, f"{self.base}/files/{safe_name(asset_id)}")

    def fetch(self, entry: dict[str, Any], folder: Path, filename: str) -> Path:
        """Download one file entry ({url, md5, include?}) and its includes into `folder`."""
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise ServiceError("the file list has no URL for that choice")
        main = download(self.http, entry["url"], safe_join(folder, filename), md5=entry.get("md5"))
        for relative, inc in (entry.get("include") or {}).items():
            download(self.http, inc["url"], safe_join(folder, relative), md5=inc.get("md5"))
        return main


def pick(files: dict[str, Any], key: str, resolution: str, file_format: str) -> dict[str, Any]:
    """files[key][resolution][file_format], or a ServiceError naming what there is."""
    by_res = files.get(key)
    if not isinstance(by_res, dict):
        raise ServiceError(f"no {key!r} files; there are: {', '.join(sorted(files))}")
    by_fmt = by_res.get(resolution)
    if not isinstance(by_fmt, dict):
        raise ServiceError(f"no {resolution} resolution; there are: {', '.join(sorted(by_res))}")
    entry = by_fmt.get(file_format)
    if not isinstance(entry, dict):
        raise ServiceError(f"no {file_format} file at {resolution}; there are: {', '.join(sorted(by_fmt))}")
    return entry


def url_filename(url: str) -> str:
    return url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
