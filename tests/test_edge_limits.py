"""Edge bounds: open MCP sessions per user, slow request reads (slowloris), JSON nested too deep to parse.

Each runs against a real server process on 127.0.0.1 with real clients and raw sockets, no mocks.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import time
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from tests.helpers import bus_client, login, send, start_fresh, tool_json

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
    from blender_mcp_server.transport.sdk_shims import sdk_open_session_ids
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


# --- 2. slow request reads -------------------------------------------------------------------------------

def _closed(sock: socket.socket) -> bool:
    """Whether the server closed this connection (what it sent before closing, e.g. a 408, is read away)."""
    while select.select([sock], [], [], 0)[0]:
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def test_slow_request_reads_are_cut_and_everyone_else_is_served(tmp_path):
    srv = start_fresh(tmp_path / "srv", BLENDER_MCP_HEADER_TIMEOUT="1", BLENDER_MCP_BODY_TIMEOUT="1")
    try:
        head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
        dribblers = [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(40)]
        silent = socket.create_connection(("127.0.0.1", srv.port))  # connects and never sends a byte
        start = time.monotonic()
        closed_after: dict[int, float] = {}
        slowest_health = 0.0
        step = 0
        while len(closed_after) < len(dribblers) and time.monotonic() - start < 6:
            for i, sock in enumerate(dribblers):
                if i in closed_after:
                    continue
                if _closed(sock):
                    closed_after[i] = time.monotonic() - start
                    continue
                try:
                    sock.send(head[step:step + 1])  # a byte every 0.1 s: never a whole header
                except OSError:
                    closed_after[i] = time.monotonic() - start
            t = time.monotonic()
            assert httpx.get(f"{srv.url}/health", timeout=5).status_code == 200
            slowest_health = max(slowest_health, time.monotonic() - t)
            step += 1
            time.sleep(0.1)
        assert len(closed_after) == len(dribblers), f"{len(closed_after)} of {len(dribblers)} closed"
        assert max(closed_after.values()) < 3.5, closed_after
        assert _closed(silent)
        assert slowest_health < 1.0, slowest_health
        for sock in [*dribblers, silent]:
            sock.close()

        # A body that stalls between chunks is answered 408 and closed.
        stall = socket.create_connection(("127.0.0.1", srv.port))
        stall.sendall(b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{\"user")
        stall.settimeout(5)
        answer = stall.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        stall.close()

        # A slow but steady body is read to the end (each chunk within body_timeout of the last).
        body = b'{"username": "demo", "password": "demo"}'
        steady = socket.create_connection(("127.0.0.1", srv.port))
        steady.sendall(b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 8):
            steady.sendall(body[i:i + 8])
            time.sleep(0.5)  # 3 s in all, 3x body_timeout
        steady.settimeout(5)
        answer = steady.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        # Then the connection idles: uvicorn's keep-alive timeout (5 s) still closes it.
        steady.settimeout(10)
        t = time.monotonic()
        while steady.recv(65536):
            pass
        assert 3 < time.monotonic() - t < 8
        steady.close()
    finally:
        srv.stop()


async def test_standing_streams_outlive_the_read_timeouts(tmp_path):
    """The timeouts are for reading a request; the GET stream and a waiting call are responses."""
    srv = start_fresh(tmp_path / "srv", BLENDER_MCP_HEADER_TIMEOUT="1", BLENDER_MCP_BODY_TIMEOUT="1")
    try:
        async with bus_client(srv.url, uuid="edge-a") as a, bus_client(srv.url, uuid="edge-b") as b:
            await asyncio.sleep(3.5)
            assert (await send(a, target_uuid="edge-b", from_uuid="edge-a", payload={"n": 1}))["status"] == "sent"
            records = await b.collector.wait_for(1)
            assert records[-1]["payload"] == {"n": 1}
    finally:
        srv.stop()


# --- 3. JSON nested too deep to parse --------------------------------------------------------------------

def _nested(depth: int) -> str:
    """JSON text of `depth` objects, one inside the other."""
    return '{"a":' * depth + "1" + "}" * depth


def test_json_nested_too_deep_to_parse_gets_a_structured_error(server):
    base = server.url
    token = login(base)["access_token"]
    with httpx.Client(timeout=30) as http:
        session_id = _initialized_session(http, base, token)
        def call_with_payload(depth: int) -> httpx.Response:
            body = ('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"blender_send_message",'
                    '"arguments":{"payload":' + _nested(depth) + "}}}")
            return http.post(f"{base}/mcp", content=body, headers=_headers(token, session_id))

        for depth in (510, 1000, 10_000, 500_000):  # 3 levels of envelope around the payload
            r = call_with_payload(depth)
            assert r.status_code == 400, (depth, r.status_code, r.text[:300])
            error = r.json()["error"]
            assert error["code"] == -32600 and "512" in error["message"] and "nest" in error["message"], error
            assert "Traceback" not in r.text
        # Shallower input is parsed, and the bus's own bound answers it as before.
        r = call_with_payload(509)
        assert r.status_code == 200 and r.json()["id"] == 1, r.text[:300]  # JSON-RPC's answer, as JSON
        r = call_with_payload(100)
        assert r.status_code == 200 and "invalid_payload" in r.text, r.text[:300]
        # Brackets inside strings are text, not nesting.
        bracketed = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "blender_list_available_clients", "arguments": {}}, "_": "[" * 5000}
        r = http.post(f"{base}/mcp", json=bracketed, headers=_headers(token, session_id))
        assert r.status_code == 200 and '"persistent"' in r.text, r.text[:300]

        for path in ("/auth/login", "/auth/refresh", "/auth/logout", "/auth/tokens"):
            for body in ("[" * 10_000 + "]" * 10_000, '{"username":' + _nested(10_000) + "}"):
                r = http.post(f"{base}{path}", content=body, headers={"Authorization": f"Bearer {token}",
                                                                          "Content-Type": "application/json"})
                assert r.status_code == 400, (path, r.status_code, r.text[:300])
                assert r.json()["error"] == "invalid_request" and "512" in r.json()["message"], r.text

    async def still_healthy() -> None:
        async with bus_client(base, uuid="deep-after-a") as a, bus_client(base, uuid="deep-after-b") as b:
            answer = await send(a, target_uuid="deep-after-b", from_uuid="deep-after-a",
                                payload=json.loads(_nested(60)))
            assert answer["status"] == "sent", answer
            await b.collector.wait_for(1)

    asyncio.run(still_healthy())
    assert httpx.get(f"{base}/health").json()["status"] == "ok"


def test_json_depth_is_measured_on_brackets_outside_strings():
    from blender_mcp_server.transport.json_depth import json_depth_over

    assert not json_depth_over(_nested(200).encode(), 200)
    assert json_depth_over(_nested(201).encode(), 200)
    assert json_depth_over(b"[" * 201 + b"]" * 201, 200)
    assert not json_depth_over(json.dumps({"s": "[{" * 1000, "e": '\\"[[[' * 100}).encode(), 3)
    assert not json_depth_over(json.dumps([[i] for i in range(100_000)]).encode(), 2)  # wide, not deep
    assert json_depth_over(json.dumps([[[i]] for i in range(10)]).encode(), 2)
