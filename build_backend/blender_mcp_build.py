"""The build backend: setuptools, after it copies the built add-on zips (dist/) into the package.

A wheel then carries them as `blender_mcp_server/addon/*.zip`, so `blender-mcp-server setup
--install-addon` works outside a checkout. The sdist carries them the same way, so a wheel built from
it (as `python -m build` does) has them too. `BMCP_WHEEL_ADDON_PLATFORMS` (e.g. `linux_x64`,
comma-separated) keeps only some platforms' zips: each is 30-55 MB.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403 - every hook this does not wrap is setuptools' own

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
TARGET = ROOT / "server" / "blender_mcp_server" / "addon"


def stage_addon_zips() -> list[Path]:
    """Copy dist/'s zips into the package. Without dist/ (building from an sdist) the staged ones stay."""
    zips = sorted(DIST.glob("blender_mcp-*.zip"))
    wanted = [p.strip() for p in os.environ.get("BMCP_WHEEL_ADDON_PLATFORMS", "").split(",") if p.strip()]
    if wanted:
        zips = [z for z in zips if any(z.stem.endswith(f"-{w}") for w in wanted)]
    if not zips:
        return sorted(TARGET.glob("*.zip"))
    TARGET.mkdir(exist_ok=True)
    for stale in TARGET.glob("*.zip"):
        stale.unlink()
    for z in zips:
        shutil.copy2(z, TARGET / z.name)
    return sorted(TARGET.glob("*.zip"))


def build_wheel(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                metadata_directory: str | None = None) -> str:
    stage_addon_zips()
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    stage_addon_zips()
    return _setuptools.build_sdist(sdist_directory, config_settings)
