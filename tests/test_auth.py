"""Authentication against the real server: login, refresh, 401s, token kinds, revocation, throttling."""

from __future__ import annotations

import base64
import json
import time

import httpx
import jwt
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from tests.helpers import ServerProcess, free_port, login, tool_json

pytestmark = pytest.mark.anyio


def mcp_status(base: str, token: str | None) -> int:
    """HTTP status of an MCP initialize request with this bearer token."""
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    return httpx.post(f"{base}/mcp", json=body, headers=headers, timeout=10).status_code


def forge(claims: dict, key: str = "not-the-secret", alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


def test_login_refresh_and_bearer_rules(server):
    base = server.url
    auth = login(base)
    assert auth["token_type"] == "bearer" and auth["user"]["username"] == "demo" and auth["expires_in"] > 0
    assert mcp_status(base, auth["access_token"]) == 200
    assert mcp_status(base, None) == 401
    assert mcp_status(base, "garbage") == 401
    # the refresh token must not work as a bearer token
    assert mcp_status(base, auth["refresh_token"]) == 401
    # refresh rotates: the old refresh token works once
    r = httpx.post(f"{base}/auth/refresh", json={"refresh_token": auth["refresh_token"]})
    assert r.status_code == 200 and mcp_status(base, r.json()["access_token"]) == 200
    again = httpx.post(f"{base}/auth/refresh", json={"refresh_token": auth["refresh_token"]})
    assert again.status_code == 401 and again.json()["error"] == "invalid_token"
    # an access token is not a refresh token either
    assert httpx.post(f"{base}/auth/refresh", json={"refresh_token": auth["access_token"]}).status_code == 401
    # logout revokes the refresh token
    new_refresh = r.json()["refresh_token"]
    assert httpx.post(f"{base}/auth/logout", json={"refresh_token": new_refresh}).json() == {"revoked": True}
    assert httpx.post(f"{base}/auth/refresh", json={"refresh_token": new_refresh}).status_code == 401


def test_wrong_password_and_bad_bodies(server):
    base = server.url
    r = httpx.post(f"{base}/auth/login", json={"username": "demo", "password": "nope"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_credentials"
    r = httpx.post(f"{base}/auth/login", content=b"{not json")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    r = httpx.post(f"{base}/auth/login", json={"username": 5})
    assert r.status_code == 400


def test_tampered_and_forged_tokens_are_refused(server):
    base = server.url
    token = login(base)["access_token"]
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    evil_body = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "2"}).encode()).rstrip(b"=").decode()
    assert mcp_status(base, f"{head}.{evil_body}.{sig}") == 401  # tampered payload
    assert mcp_status(base, forge(claims)) == 401  # signed with another key
    none_token = forge(claims, key="", alg="none") if "none" in jwt.algorithms.get_default_algorithms() else None
    unsigned = f"{base64.urlsafe_b64encode(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode()).rstrip(b'=').decode()}.{body}."
    assert mcp_status(base, unsigned) == 401  # alg: none
    if none_token:
        assert mcp_status(base, none_token) == 401
    expired = {**claims, "exp": int(time.time()) - 10}
    assert mcp_status(base, forge(expired)) == 401


def test_expired_token_is_refused(tmp_path):
    # exp is whole seconds, so a token minted late in a second lives (ttl - 1, ttl] s: 3 s leaves room
    srv = ServerProcess(tmp_path, free_port(), env={"BLENDER_MCP_ACCESS_TTL": "3"}).start()
    try:
        token = login(srv.url)["access_token"]
        assert mcp_status(srv.url, token) == 200
        time.sleep(4.2)
        assert mcp_status(srv.url, token) == 401
    finally:
        srv.stop()


def test_api_tokens_cli_and_http_and_revocation(server):
    base = server.url
    made = server.cli("token", "create", "demo", "--label", "claude desktop")
    assert made.returncode == 0, made.stderr
    api_token = made.stdout.strip()
    assert mcp_status(base, api_token) == 200
    jti = made.stderr.split("id ")[1].split(";")[0]
    listed = server.cli("token", "list", "demo").stdout
    assert jti in listed and "claude desktop" in listed
    assert server.cli("token", "revoke", jti).returncode == 0
    time.sleep(2.1)  # the verifier trusts a lookup for 2 s
    assert mcp_status(base, api_token) == 401
    # minted over HTTP by a logged-in user (the panel's "copy config" button)
    access = login(base)["access_token"]
    r = httpx.post(f"{base}/auth/tokens", json={"name": "panel"}, headers={"authorization": f"Bearer {access}"})
    assert r.status_code == 200 and mcp_status(base, r.json()["token"]) == 200
    assert httpx.post(f"{base}/auth/tokens", json={"name": "x"}).status_code == 401
    d = httpx.delete(f"{base}/auth/tokens/{r.json()['jti']}", headers={"authorization": f"Bearer {access}"})
    assert d.json() == {"revoked": True}


def test_deleted_users_token_is_refused(server):
    base = server.url
    assert server.cli("user", "add", "carol", "--password", "c").returncode == 0
    token = login(base, "carol", "c")["access_token"]
    assert mcp_status(base, token) == 200
    assert server.cli("user", "delete", "carol").returncode == 0
    time.sleep(2.1)
    assert mcp_status(base, token) == 401


def test_user_add_prompts_for_a_password(server):
    made = server.cli("user", "add", "dave", input="pw1\npw1\n")
    assert made.returncode == 0, made.stderr
    assert login(server.url, "dave", "pw1")["user"]["username"] == "dave"
    dup = server.cli("user", "add", "dave", "--password", "x")
    assert dup.returncode == 1 and "exists" in dup.stderr


def test_login_throttling(tmp_path):
    srv = ServerProcess(tmp_path, free_port(), env={"BLENDER_MCP_LOGIN_FAILURES_PER_USER": "3"}).start()
    try:
        codes = [httpx.post(f"{srv.url}/auth/login", json={"username": "demo", "password": "x"}).status_code
                 for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        r = httpx.post(f"{srv.url}/auth/login", json={"username": "demo", "password": "demo"})
        assert r.status_code == 429 and r.json()["retry_after"] >= 1  # even the right password waits
    finally:
        srv.stop()


def test_refuses_demo_user_on_public_bind(tmp_path):
    srv = ServerProcess(tmp_path, free_port())
    out = srv.cli("serve", "--host", "0.0.0.0", "--port", str(srv.port))
    assert out.returncode == 2 and "demo/demo" in out.stderr


async def test_tools_need_a_user_per_call(server):
    token = login(server.url)["access_token"]
    transport = StreamableHttpTransport(url=f"{server.url}/mcp", headers={"Authorization": f"Bearer {token}"})
    async with Client(transport) as client:
        listing = tool_json(await client.call_tool("blender_list_available_clients", {}))
        assert set(listing) == {"persistent", "ephemeral"}
