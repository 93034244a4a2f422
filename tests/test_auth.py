"""Authentication against the real server: login, refresh, 401s, token kinds, revocation, throttling."""

from __future__ import annotations

import base64
import json
import threading
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


def from_address(address: str) -> httpx.Client:
    """An HTTP client whose connections come from `address` (any of 127.0.0.0/8 is this machine)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def test_a_guesser_is_throttled_and_the_owner_still_gets_in(tmp_path):
    srv = ServerProcess(tmp_path, free_port(), env={"BLENDER_MCP_LOGIN_FAILURES_PER_ADDRESS_AND_USER": "3",
                                                    "BLENDER_MCP_LOGIN_FAILURES_PER_USER": "3",
                                                    "BLENDER_MCP_LOGIN_FAILURES_PER_ADDRESS": "6",
                                                    "BLENDER_MCP_LOGIN_DELAY_MAX": "0.5"}).start()
    try:
        with from_address("127.0.0.2") as guesser, from_address("127.0.0.3") as owner:
            codes = [guesser.post(f"{srv.url}/auth/login", json={"username": "demo", "password": "x"}).status_code
                     for _ in range(6)]
            assert codes == [401, 401, 401, 429, 429, 429]
            r = guesser.post(f"{srv.url}/auth/login", json={"username": "demo", "password": "demo"})
            assert r.status_code == 429 and r.json()["retry_after"] >= 1  # the guesser's address, for this user
            # The owner, from another address, gets in at once despite the failures against the account,
            # only slowed (at most login_delay_max) while the account is under attack.
            started = time.monotonic()
            r = owner.post(f"{srv.url}/auth/login", json={"username": "demo", "password": "demo"})
            assert r.status_code == 200 and r.json()["access_token"]
            assert time.monotonic() - started < 2.0
            assert owner.post(f"{srv.url}/auth/login", json={"username": "demo", "password": "no"}).status_code == 401
            # Past the address's own limit, that address may try no one.
            for name in ("u1", "u2", "u3"):
                assert guesser.post(f"{srv.url}/auth/login", json={"username": name, "password": "x"}).status_code == 401
            assert guesser.post(f"{srv.url}/auth/login", json={"username": "u4", "password": "x"}).status_code == 429
    finally:
        srv.stop()


def test_a_login_flood_does_not_stall_the_server(tmp_path):
    """Password hashing runs off the event loop, a bounded number at once: four connections of failed logins
    (unknown users, so every one costs a full hash) leave /health answering promptly."""
    srv = ServerProcess(tmp_path, free_port(), env={"BLENDER_MCP_LOGIN_FAILURES_PER_ADDRESS": "100000"}).start()
    stop = threading.Event()

    def flood(address: str) -> None:
        with from_address(address) as client:
            n = 0
            while not stop.is_set():
                n += 1
                client.post(f"{srv.url}/auth/login", json={"username": f"nobody-{address}-{n}", "password": "x"})

    floods = [threading.Thread(target=flood, args=(f"127.0.0.{10 + i}",), daemon=True) for i in range(4)]
    try:
        for thread in floods:
            thread.start()
        time.sleep(1.0)
        waits = []
        with httpx.Client(timeout=30) as probe:
            for _ in range(15):
                started = time.monotonic()
                assert probe.get(f"{srv.url}/health").status_code == 200
                waits.append(time.monotonic() - started)
                time.sleep(0.05)
    finally:
        stop.set()
        for thread in floods:
            thread.join(30)
        srv.stop()
    waits.sort()
    # On the loop, each hash held it ~100 ms and four floods kept it busy: /health waited 0.3-0.6 s.
    assert waits[len(waits) // 2] < 0.1, waits


def test_unknown_users_cost_a_hash_too_and_bad_text_is_a_clear_error(server):
    def median_failure(username: str) -> float:
        times = []
        for _ in range(5):
            started = time.monotonic()
            assert httpx.post(f"{server.url}/auth/login", json={"username": username, "password": "wrong"},
                              timeout=30).status_code == 401
            times.append(time.monotonic() - started)
        return sorted(times)[2]

    known, unknown = median_failure("bob"), median_failure("no-such-user-anywhere")
    assert 0.4 < unknown / known < 2.5, (known, unknown)  # no timing hole that tells which users exist
    r = httpx.post(f"{server.url}/auth/login", content=b'{"username": "\\ud800", "password": "x"}',
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"


def test_forwarded_addresses_are_believed_only_from_configured_proxies(tmp_path):
    """Rotating X-Forwarded-For must not give a guesser fresh addresses (uvicorn believes it from 127.0.0.1
    by default); behind a proxy named in trusted_proxies, each forwarded address counts on its own."""
    limits = {"BLENDER_MCP_LOGIN_FAILURES_PER_ADDRESS": "3", "BLENDER_MCP_LOGIN_FAILURES_PER_ADDRESS_AND_USER": "100"}
    for trusted, expected in (("", [401, 401, 401, 429, 429]), ("127.0.0.1", [401] * 5)):
        srv = ServerProcess(tmp_path / f"srv-{trusted or 'none'}", free_port(),
                            env={**limits, "BLENDER_MCP_TRUSTED_PROXIES": trusted})
        srv.data_dir.mkdir()
        srv.start()
        try:
            codes = [httpx.post(f"{srv.url}/auth/login", json={"username": f"u{i}", "password": "x"},
                                headers={"x-forwarded-for": f"192.0.2.{i}"}).status_code for i in range(5)]
        finally:
            srv.stop()
        assert codes == expected, (trusted, codes)


def test_the_data_folder_is_private(tmp_path):
    # A folder as a default umask leaves it is closed; a sticky, world-writable one like /tmp is not the
    # server's to close, and only the store file is.
    for name, made, expected in (("data", 0o755, 0o700), ("shared", 0o1777, 0o1777)):
        folder = tmp_path / name
        folder.mkdir()
        folder.chmod(made)
        srv = ServerProcess(folder, free_port()).start()
        try:
            assert folder.stat().st_mode & 0o7777 == expected, name
            assert (folder / "bus.sqlite3").stat().st_mode & 0o077 == 0, name
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


def test_a_password_change_ends_every_token_of_the_old_password(server):
    base = server.url
    assert server.cli("user", "add", "passwd-changer", "--password", "old-pw").returncode == 0
    pair = login(base, "passwd-changer", "old-pw")
    api = httpx.post(f"{base}/auth/tokens", json={"name": "desk"},
                     headers={"authorization": f"Bearer {pair['access_token']}"}).json()["token"]
    assert mcp_status(base, pair["access_token"]) == 200 and mcp_status(base, api) == 200
    assert server.cli("user", "passwd", "passwd-changer", "--password", "new-pw").returncode == 0
    time.sleep(2.1)  # the verifier trusts a lookup for 2 s
    assert mcp_status(base, pair["access_token"]) == 401
    assert mcp_status(base, api) == 401
    refreshed = httpx.post(f"{base}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 401 and refreshed.json()["error"] == "invalid_token"
    assert httpx.post(f"{base}/auth/login", json={"username": "passwd-changer", "password": "old-pw"}).status_code == 401
    fresh = login(base, "passwd-changer", "new-pw")
    assert mcp_status(base, fresh["access_token"]) == 200
    again = httpx.post(f"{base}/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert again.status_code == 200


def test_an_api_token_cannot_mint_a_longer_lived_one_that_outlives_it(server):
    base = server.url
    access = login(base)["access_token"]
    parent = httpx.post(f"{base}/auth/tokens", json={"name": "one day", "ttl_days": 1},
                        headers={"authorization": f"Bearer {access}"}).json()
    child = httpx.post(f"{base}/auth/tokens", json={"name": "ten years", "ttl_days": 3650},
                       headers={"authorization": f"Bearer {parent['token']}"}).json()
    assert child["expires"] <= parent["expires"]
    assert jwt.decode(child["token"], options={"verify_signature": False})["exp"] <= parent["expires"]
    grandchild = httpx.post(f"{base}/auth/tokens", json={"name": "and on"},
                            headers={"authorization": f"Bearer {child['token']}"}).json()
    assert mcp_status(base, child["token"]) == 200 and mcp_status(base, grandchild["token"]) == 200
    listed = httpx.get(f"{base}/auth/tokens", headers={"authorization": f"Bearer {access}"}).json()["tokens"]
    assert {t["jti"]: t["parent_jti"] for t in listed}[grandchild["jti"]] == child["jti"]
    revoked = httpx.delete(f"{base}/auth/tokens/{parent['jti']}", headers={"authorization": f"Bearer {access}"})
    assert revoked.json() == {"revoked": True}
    time.sleep(2.1)
    assert mcp_status(base, parent["token"]) == 401
    assert mcp_status(base, child["token"]) == 401
    assert mcp_status(base, grandchild["token"]) == 401
    assert mcp_status(base, access) == 200  # the login that minted the parent is not a token of its line
