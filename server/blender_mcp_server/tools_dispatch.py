"""Style A dispatch tools: one flat blender_<command> tool per addon command (filled in by the dispatch issue)."""

from __future__ import annotations

from fastmcp import FastMCP

from .bus import Bus


def add_dispatch_tools(mcp: FastMCP, bus: Bus) -> None:
    return None
