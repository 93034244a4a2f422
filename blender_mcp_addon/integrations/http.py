"""Shared HTTP helpers: JSON GETs and streamed downloads that resume, verify, cache and stay bounded."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from .settings import setting

USER_AGENT = "blender-mcp-bus/0.1"
DEFAULT_MAX_DOWNLOAD_MB = 2048


class ServiceError(Exception):
    """The service answered with an error or something unusable; the message is for the caller."""


def max_download_bytes() -> int:
    """The per-file cap: preference or BLENDER_MCP_MAX_DOWNLOAD_MB, so a farm can keep disks from filling."""
    raw = setting("max_download_mb", "")
    try:
        mb = float(raw) if raw else DEFAULT_MAX_DOWNLOAD_MB
    except ValueError:
        mb = DEFAULT_MAX_DOWNLOAD_MB
    return int(mb * 1024 * 1024) if mb > 0 else DEFAULT_MAX_DOWNLOAD_MB * 1024 * 1024


def get_json(session: requests.Session, url: str, *, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None, timeout: float = 20) -> Any:
    try:
        r = session.get(url, params=params, headers={"User-Agent": USER_AGENT, **(headers or {})}, timeout=timeout)
    except requests.RequestException as exc:
        raise ServiceError(f"cannot reach {url.split('?')[0]}: {exc.__class__.__name__}") from None
    if r.status_code >= 400:
        raise ServiceError(f"{url.split('?')[0]} answered HTTP {r.status_code}")
    try:
        return r.json()
    except ValueError:
        raise ServiceError(f"{url.split('?')[0]} did not answer JSON") from None


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _too_big(name: str, limit: int) -> ServiceError:
    return ServiceError(f"{name} is larger than the download limit of {limit // (1024 * 1024)} MB "
                        "(raise max_download_mb in the add-on preferences or BLENDER_MCP_MAX_DOWNLOAD_MB)")


def download(session: requests.Session, url: str, dest: Path, *, md5: str | None = None,
             headers: dict[str, str] | None = None, on_bytes: Callable[[int], None] | None = None,
             max_bytes: int | None = None) -> Path:
    """Stream `url` to `dest` and return it.

    A file already at `dest` is the cache: it was only ever renamed there complete (and is re-checked
    against `md5` when the API gives one), so a second import of the same asset and resolution does not
    download again. A `.part` left by a broken connection is resumed with an HTTP Range request; a
    server that ignores the Range simply sends the whole file again."""
    limit = max_bytes or max_download_bytes()
    if dest.is_file() and (not md5 or _md5_of(dest) == md5):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    if have > limit:
        part.unlink()
        have = 0
    request_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    if have:
        request_headers["Range"] = f"bytes={have}-"
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with session.get(url, stream=True, timeout=60, headers=request_headers) as r:
            if r.status_code == 416 and have:  # the part is no prefix of what is there now: start again
                part.unlink(missing_ok=True)
                return download(session, url, dest, md5=md5, headers=headers, on_bytes=on_bytes, max_bytes=limit)
            if r.status_code >= 400:
                raise ServiceError(f"download of {dest.name} failed: HTTP {r.status_code}")
            resumed = have > 0 and r.status_code == 206
            total = have if resumed else 0
            announced = int(r.headers.get("Content-Length") or 0)
            if total + announced > limit:
                part.unlink(missing_ok=True)
                raise _too_big(dest.name, limit)
            if resumed:
                with open(part, "rb") as fh:
                    for block in iter(lambda: fh.read(1024 * 1024), b""):
                        digest.update(block)
            with open(part, "ab" if resumed else "wb") as fh:
                for chunk in r.iter_content(256 * 1024):
                    total += len(chunk)
                    if total > limit:
                        fh.close()
                        part.unlink(missing_ok=True)
                        raise _too_big(dest.name, limit)
                    fh.write(chunk)
                    digest.update(chunk)
                    if on_bytes:
                        on_bytes(len(chunk))
    except requests.RequestException as exc:
        # Kept: the next attempt resumes from what arrived.
        raise ServiceError(f"download of {dest.name} failed: {exc.__class__.__name__} "
                           "(try again to resume)") from None
    if md5 and digest.hexdigest() != md5:
        part.unlink(missing_ok=True)
        raise ServiceError(f"{dest.name}: checksum mismatch")
    part.replace(dest)
    return dest
