"""The `blender` entry each MCP client's config file gets, bpy-free and stdlib-only.

One source for `blender-mcp-server setup`, the panel's "Copy Claude Config" button and the README's
snippets, so the three never disagree. The add-on zip cannot import the server package, hence here.

Entry shapes (the key that holds the servers, then the entry):

- claude-desktop  `mcpServers`  stdio only: `command`, `args`, `env`
- claude-code     `mcpServers`  `type: "http"`, `url`, `headers`
- codex           `mcp_servers` (TOML) `url`, `http_headers`; stdio: `command`, `args`, `env`
- cursor          `mcpServers`  `url`, `headers`
- vscode          `servers`     `type: "http"`, `url`, `headers`; stdio: `type: "stdio"`, ...
- windsurf        `mcpServers`  `serverUrl`, `headers`
- opencode        `mcp`         `type: "remote"`, `url`, `headers`, `enabled`; stdio: `type: "local"`,
                                `command` (one list), `environment`
- antigravity     `mcpServers`  `serverUrl`, `headers`
"""

from __future__ import annotations

import json
from typing import Any

SERVER_NAME = "blender"
TOKEN_ENV = "BLENDER_MCP_TOKEN"
CLIENTS = ("claude-desktop", "claude-code", "codex", "cursor", "vscode", "windsurf", "opencode", "antigravity")
CONTAINER = {"claude-desktop": "mcpServers", "claude-code": "mcpServers", "codex": "mcp_servers",
             "cursor": "mcpServers", "vscode": "servers", "windsurf": "mcpServers", "opencode": "mcp",
             "antigravity": "mcpServers"}
# Claude Desktop's config file only starts local processes; remote servers there are added in its UI.
STDIO_ONLY = frozenset({"claude-desktop"})


def mcp_url(base: str) -> str:
    return f"{base.rstrip('/')}/mcp"


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stdio_args(base: str) -> list[str]:
    """The bridge's arguments after the `blender-mcp-server` command itself."""
    return ["stdio", "--server", base.rstrip("/")]


def http_entry(client: str, base: str, token: str) -> dict[str, Any]:
    url, headers = mcp_url(base), auth_headers(token)
    if client in ("claude-code", "vscode"):
        return {"type": "http", "url": url, "headers": headers}
    if client == "codex":
        return {"url": url, "http_headers": headers}
    if client == "cursor":
        return {"url": url, "headers": headers}
    if client in ("windsurf", "antigravity"):
        return {"serverUrl": url, "headers": headers}
    if client == "opencode":
        return {"type": "remote", "url": url, "headers": headers, "enabled": True}
    raise ValueError(f"{client} has no remote HTTP entry")


def stdio_entry(client: str, command: list[str], base: str, token: str) -> dict[str, Any]:
    """`command`: the program that runs `blender-mcp-server` (a console script, or python -m ...)."""
    argv = [*command, *stdio_args(base)]
    env = {TOKEN_ENV: token}
    if client == "opencode":
        return {"type": "local", "command": argv, "environment": env, "enabled": True}
    entry: dict[str, Any] = {"command": argv[0], "args": argv[1:], "env": env}
    return {"type": "stdio", **entry} if client == "vscode" else entry


def entry(client: str, base: str, token: str, command: list[str], *, stdio: bool = False) -> dict[str, Any]:
    """The entry for `client`: remote HTTP with the token in a header where the client can, else the bridge."""
    if client not in CONTAINER:
        raise ValueError(f"unknown client {client!r}; known: {', '.join(CLIENTS)}")
    if stdio or client in STDIO_ONLY:
        return stdio_entry(client, command, base, token)
    return http_entry(client, base, token)


def is_stdio(value: dict[str, Any]) -> bool:
    return "command" in value


def json_snippet(client: str, base: str, token: str, command: list[str] | None = None) -> str:
    """The whole JSON document a client's file would hold with only this server in it."""
    value = entry(client, base, token, command or ["blender-mcp-server"])
    return json.dumps({CONTAINER[client]: {SERVER_NAME: value}}, indent=2)


def claude_code_command(base: str, token: str) -> str:
    """A `claude mcp add` line that works in every shell (no nested JSON quoting)."""
    value = http_entry("claude-code", base, token)
    (header, text), = value["headers"].items()
    return f'claude mcp add --transport http {SERVER_NAME} {value["url"]} --header "{header}: {text}"'
