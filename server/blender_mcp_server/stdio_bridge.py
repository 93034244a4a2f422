"""`blender-mcp-server stdio`: an MCP server on stdin/stdout that forwards to the HTTP bus server.

For desktop clients that only start stdio servers (Claude Desktop). Built on
FastMCP's proxy; it logs in with a password or uses an API token, and the
shared token keeper refreshes (or logs in again) before a token expires.
Secrets come from environment variables, never the command line.
"""

from __future__ import annotations

import argparse
import os
import sys


def run_bridge(args: argparse.Namespace) -> int:
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport
    from fastmcp.server import create_proxy

    from blender_mcp_addon.client.auth import keeper_for_cli

    token = os.environ.get(args.token_env)
    password = os.environ.get(args.password_env)
    if not token and not (args.username and password):
        print(f"error: set {args.token_env} (an API token from `blender-mcp-server token create USER`), "
              f"or pass --username and set {args.password_env}", file=sys.stderr)
        return 2
    keeper, code, why = keeper_for_cli(args.server, username=args.username, password=password, token=token)
    if keeper is None:
        print(f"error: {why}", file=sys.stderr)
        return code
    backend = Client(StreamableHttpTransport(url=f"{keeper.base}/mcp", auth=keeper.auth()), timeout=600)
    proxy = create_proxy(backend, name="blender-mcp-bus")
    proxy.run(transport="stdio", show_banner=False)
    return 0
