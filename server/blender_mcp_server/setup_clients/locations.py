"""Where each MCP client keeps its user-level config file, on Linux, macOS and Windows.

Paths, per client (`~` is the home folder, `%APPDATA%` Windows' roaming folder, `$XDG_CONFIG_HOME`
defaults to `~/.config`):

- claude-desktop  macOS `~/Library/Application Support/Claude/claude_desktop_config.json`,
                  Windows `%APPDATA%\\Claude\\claude_desktop_config.json`,
                  Linux `$XDG_CONFIG_HOME/Claude/claude_desktop_config.json` (the community builds' path)
- claude-code     `~/.claude.json` on every system (its user scope: the top-level `mcpServers`)
- codex           `$CODEX_HOME/config.toml`, `CODEX_HOME` defaulting to `~/.codex`
- cursor          `~/.cursor/mcp.json`
- vscode          the user profile's `mcp.json`: Linux `$XDG_CONFIG_HOME/Code/User/mcp.json`,
                  macOS `~/Library/Application Support/Code/User/mcp.json`, Windows `%APPDATA%\\Code\\User\\mcp.json`
- windsurf        `~/.codeium/windsurf/mcp_config.json`
- opencode        `$XDG_CONFIG_HOME/opencode/opencode.json` (also `~/.config` on macOS and Windows)
- antigravity     `~/.gemini/antigravity/mcp_config.json`

A client counts as present when its file exists, or the folder it lives in does (installed, never
configured): the file is then created. The home override (`--home`, or `BLENDER_MCP_SETUP_HOME`) moves
every one of these under one folder, so tests and dry runs never see the real ones.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    home: Path
    system: str  # linux | macos | windows
    appdata: Path
    xdg_config: Path
    codex_home: Path

    @classmethod
    def current(cls, home: Path | None = None, system: str | None = None) -> Machine:
        """This machine, or one rooted at `home` (then the environment's folders are ignored too)."""
        system = system or ("macos" if sys.platform == "darwin" else "windows" if sys.platform == "win32"
                            else "linux")
        if home is not None:
            return cls(home, system, home / "AppData" / "Roaming", home / ".config", home / ".codex")
        real = Path.home()
        appdata = Path(os.environ["APPDATA"]) if os.environ.get("APPDATA") else real / "AppData" / "Roaming"
        xdg = os.environ.get("XDG_CONFIG_HOME")
        codex = os.environ.get("CODEX_HOME")
        return cls(real, system, appdata, Path(xdg) if xdg and system == "linux" else real / ".config",
                   Path(codex) if codex else real / ".codex")


def config_path(client: str, m: Machine) -> Path:
    mac_support = m.home / "Library" / "Application Support"
    if client == "claude-desktop":
        folder = {"macos": mac_support, "windows": m.appdata}.get(m.system, m.xdg_config)
        return folder / "Claude" / "claude_desktop_config.json"
    if client == "claude-code":
        return m.home / ".claude.json"
    if client == "codex":
        return m.codex_home / "config.toml"
    if client == "cursor":
        return m.home / ".cursor" / "mcp.json"
    if client == "vscode":
        folder = {"macos": mac_support, "windows": m.appdata}.get(m.system, m.xdg_config)
        return folder / "Code" / "User" / "mcp.json"
    if client == "windsurf":
        return m.home / ".codeium" / "windsurf" / "mcp_config.json"
    if client == "opencode":
        return m.home / ".config" / "opencode" / "opencode.json" if m.system != "linux" else \
            m.xdg_config / "opencode" / "opencode.json"
    if client == "antigravity":
        return m.home / ".gemini" / "antigravity" / "mcp_config.json"
    raise ValueError(f"unknown client {client!r}")


def present(client: str, m: Machine) -> bool:
    path = config_path(client, m)
    if path.exists():
        return True
    # ~/.claude.json sits in the home folder itself, which always exists: Claude Code's own folder tells.
    marker = m.home / ".claude" if client == "claude-code" else path.parent
    return marker.is_dir()
