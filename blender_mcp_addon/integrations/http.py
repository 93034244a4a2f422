"""Shared HTTP helpers: JSON GETs and streamed downloads with size and progress."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

USER_AGENT = "blender-mcp-bus/0.1"
MAX_DOWNLOAD = 2 * 1024**3


class ServiceError(Exception):
    """The service answered with an error or something unusable; the message is for the caller."""


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


def download(session: requests.Session, url: str, dest: Path, *, md5: str | None = None,
             headers: dict[str, str] | None = None, on_bytes: Callable[[int], None] | None = None) -> Path:
    """Stream `url` to `dest` (via a .part file, so a failed download leaves nothing half-written)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.md5(usedforsecurity=False)
    total = 0
    try:
        with session.get(url, stream=True, timeout=60, headers={"User-Agent": USER_AGENT, **(headers or {})}) as r:
            if r.status_code >= 400:
                raise ServiceError(f"download of {dest.name} failed: HTTP {r.status_code}")
            with open(part, "wb") as fh:
                for chunk in r.iter_content(256 * 1024):
                    total += len(chunk)
                    if total > MAX_DOWNLOAD:
                        raise ServiceError(f"{dest.name} is larger than {MAX_DOWNLOAD} bytes")
                    fh.write(chunk)
                    digest.update(chunk)
                    if on_bytes:
                        on_bytes(len(chunk))
    except requests.RequestException as exc:
        part.unlink(missing_ok=True)
        raise ServiceError(f"download of {dest.name} failed: {exc.__class__.__name__}") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if md5 and digest.hexdigest() != md5:
        part.unlink(missing_ok=True)
        raise ServiceError(f"{dest.name}: checksum mismatch")
    part.replace(dest)
    return dest
