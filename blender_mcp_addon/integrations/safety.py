"""File names from remote APIs are untrusted: keep every write inside its download folder."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,150}$")


class UnsafePath(ValueError):
    pass


def safe_join(folder: Path, relative: str) -> Path:
    """`folder/relative`, refusing absolute paths, `..`, drive letters and odd characters."""
    if not isinstance(relative, str) or not relative or "\\" in relative or ":" in relative:
        raise UnsafePath(f"refused unsafe file name from the API: {relative!r}")
    parts = PurePosixPath(relative).parts
    if relative.startswith("/") or not parts or any(p in ("..", ".") or not _SAFE_PART.match(p) for p in parts):
        raise UnsafePath(f"refused unsafe file name from the API: {relative!r}")
    target = (folder / Path(*parts)).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise UnsafePath(f"refused unsafe file name from the API: {relative!r}")
    return target


def safe_name(name: str) -> str:
    """One path component from an id or title (asset ids become folder names)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")[:100]
    if not cleaned:
        raise UnsafePath(f"refused unsafe name from the API: {name!r}")
    return cleaned
