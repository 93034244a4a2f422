"""This machine's platform in Blender's extension spelling (linux-x64, windows-x64, macos-arm64 ...)."""

from __future__ import annotations

import platform
import sys


def blender_platform() -> str:
    system = "macos" if sys.platform == "darwin" else "windows" if sys.platform == "win32" else "linux"
    arch = "arm64" if platform.machine().lower() in ("arm64", "aarch64") else "x64"
    return f"{system}-{arch}"
