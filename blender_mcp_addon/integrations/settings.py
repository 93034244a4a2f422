"""Integration settings: an environment variable wins (headless workers, tests), then the add-on preferences."""

from __future__ import annotations

import os


def setting(name: str, default: str = "") -> str:
    """`setting("polyhaven_api_url")` reads BLENDER_MCP_POLYHAVEN_API_URL, else the preference of that name."""
    env = os.environ.get(f"BLENDER_MCP_{name.upper()}")
    if env:
        return env
    try:
        import bpy

        from ..session import addon_package

        addon = bpy.context.preferences.addons.get(addon_package())
        value = getattr(addon.preferences, name, None) if addon else None
        if value:
            return str(value)
    except Exception:  # outside Blender, or preferences not registered yet
        pass
    return default
