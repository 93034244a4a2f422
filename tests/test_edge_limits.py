"""Edge bounds: open MCP sessions per user.

Each runs against a real server process on 127.0.0.1 with real clients and raw sockets, no mocks.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from tests.helpers import login, start_fresh, tool_json

pytestmark = pytest.mark.anyio

PROTOCOL = "2025-11-25"
INITIALIZE = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
              "params": {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "edge", "version": "1"}}}


def _headers(token: str, session_id: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}
    if session_id:
        headers |= {"Mcp-Session-Id": session_id, "Mcp-Protocol-Version": PROTOCOL}
    return headers


def _open_session(http: httpx.Client, base: str, token: str) -> httpx.Response:
    """The raw opening request of a session: an initialize POST without Mcp-Session-Id."""
    return http.post(f"{base}/mcp", json=INITIALIZE, headers=_headers(token))


def _initialized_session(http: httpx.Client, base: str, token: str) -> str:
    r = _open_session(http, base, token)
    assert r.status_code == 200, r.text
    session_id = r.headers["mcp-session-id"]
    r = http.post(f"{base}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                  headers=_headers(token, session_id))
    assert r.status_code == 202, r.text
    return session_id


# --- 1. open sessions per user ---------------------------------------------------------------------------

def test_one_user_cannot_hold_more_than_max_sessions_per_user(tmp_path):
    srv = start_fresh(tmp_path / "srv", BLENDER_MCP_MAX_SESSIONS_PER_USER="5", BLENDER_MCP_MAX_SESSIONS="50",
                      BLENDER_MCP_SESSION_IDLE_TIMEOUT="3")
    try:
        srv.cli("user", "add", "bob", "--password", "bob-pw")
        alice, bob = login(srv.url)["access_token"], login(srv.url, "bob", "bob-pw")["access_token"]
        with httpx.Client(timeout=10) as http:
            opened = [_open_session(http, srv.url, alice) for _ in range(5)]
            assert [r.status_code for r in opened] == [200] * 5
            refused = _open_session(http, srv.url, alice)
            assert refused.status_code == 429, refused.text
            body = refused.json()
            assert body["jsonrpc"] == "2.0" and body["error"]["code"] == -32600
            message = body["error"]["message"]
            assert "5" in message and "max_sessions_per_user" in message and "DELETE" in message, message
            assert body["error"]["data"] == {"error": "too_many_sessions", "limit": 5, "open": 5}
            # Another API token of the same account counts against the same bound.
            api = http.post(f"{srv.url}/auth/tokens", json={"name": "t"}, headers={"Authorization": f"Bearer {alice}"})
            assert _open_session(http, srv.url, api.json()["token"]).status_code == 429

            # Another user is not affected, neither raw nor with a real client.
            assert _open_session(http, srv.url, bob).status_code == 200

            async def bob_client() -> None:
                transport = StreamableHttpTransport(url=f"{srv.url}/mcp", headers={"Authorization": f"Bearer {bob}"})
                async with Client(transport, timeout=30) as client:
                    assert tool_json(await client.call_tool("blender_list_available_clients", {}))

            asyncio.run(bob_client())

            # Ending a session frees its place at once.
            gone = http.delete(f"{srv.url}/mcp", headers=_headers(alice, opened[0].headers["mcp-session-id"]))
            assert gone.status_code == 200, gone.text
            assert _open_session(http, srv.url, alice).status_code == 200
            assert _open_session(http, srv.url, alice).status_code == 429

            # Sessions the SDK reaps when idle stop counting too: the count does not leak.
            time.sleep(4.5)
            assert [_open_session(http, srv.url, alice).status_code for _ in range(6)] == [200] * 5 + [429]
        assert httpx.get(f"{srv.url}/health").json()["status"] == "ok"
    finally:
        srv.stop()


async def test_the_sdk_session_table_the_per_user_bound_reads():
    """The shim reads the SDK's private table of open sessions; this fails if the pinned SDK changes it."""
    from blender_mcp_server.session_limits import sdk_open_session_ids
    from mcp.server.lowlevel.server import Server
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    manager = StreamableHTTPSessionManager(app=Server("shim-check"), json_response=True)
    assert sdk_open_session_ids(manager) is not None and "nope" not in sdk_open_session_ids(manager)

    async def asgi(scope: Any, receive: Any, send_: Any) -> None:
        await manager.handle_request(scope, receive, send_)

    async with manager.run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t") as http:
            r = await http.post("/mcp", json=INITIALIZE, headers={"Accept": "application/json, text/event-stream"})
            assert r.status_code == 200, r.text
            session_id = r.headers["mcp-session-id"]
            assert session_id in sdk_open_session_ids(manager)
            r = await http.delete("/mcp", headers={"Mcp-Session-Id": session_id, "Mcp-Protocol-Version": PROTOCOL})
            assert r.status_code == 200
            assert session_id not in sdk_open_session_ids(manager)


def test_max_sessions_must_exceed_max_sessions_per_user():
    from blender_mcp_server.config import Settings
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="max_sessions"):
        Settings(max_sessions=300, max_sessions_per_user=300)
