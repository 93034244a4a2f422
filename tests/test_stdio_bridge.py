"""The stdio bridge for stdio-only desktop clients, run as a real subprocess with password or API token."""

from __future__ import annotations

import os
import sys

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from blender_mcp_addon.protocol.answers import read_answer

pytestmark = pytest.mark.anyio


def bridge(server_url: str, env: dict[str, str], *extra: str) -> StdioTransport:
    return StdioTransport(command=sys.executable,
                          args=["-m", "blender_mcp_server.cli", "stdio", "--server", server_url, *extra],
                          env={**os.environ, **env})


async def test_bridge_with_password(server):
    async with Client(bridge(server.url, {"BLENDER_MCP_PASSWORD": "demo"}, "--username", "demo")) as client:
        names = {t.name for t in await client.list_tools()}
        assert {"blender_get_scene_info", "blender_execute_code", "blender_send_message",
                "blender_download_polyhaven_asset"} <= names
        listing = read_answer(await client.call_tool("blender_list_available_clients", {}))
        assert set(listing) == {"persistent", "ephemeral"}


async def test_bridge_with_api_token(server):
    made = server.cli("token", "create", "alice", "--label", "claude desktop")
    token = made.stdout.strip()
    async with Client(bridge(server.url, {"BLENDER_MCP_TOKEN": token})) as client:
        answer = read_answer(await client.call_tool("blender_get_scene_info", {}))
        assert answer["status"] == "no_client"  # alice has no Blender connected: a clear answer, not an error


def test_bridge_without_credentials_says_what_to_do(server):
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("BLENDER_MCP_TOKEN", "BLENDER_MCP_PASSWORD")}
    proc = subprocess.run([sys.executable, "-m", "blender_mcp_server.cli", "stdio", "--server", server.url],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "BLENDER_MCP_TOKEN" in proc.stderr
