"""The PostgreSQL store: the same answers as the SQLite one (one contract, both engines), replicas sharing
users and tokens through it, and a database that goes away and comes back under a running server."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from blender_mcp_server.storage.passwords import has_password
from blender_mcp_server.storage.postgres import PostgresStore
from blender_mcp_server.storage.protocols import Store
from blender_mcp_server.storage.records import JobRow, PersistentClient, StoreError, StoreUnavailable
from blender_mcp_server.storage.sqlite import SqliteStore
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from tests.helpers import ROOT, ServerProcess, free_port, login, tool_json
from tests.services import PostgresServer

pytestmark = pytest.mark.anyio

DAY = 86400.0


def psycopg_connect(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(url, connect_timeout=5, autocommit=True)


def _fresh_database(pg: PostgresServer) -> str:
    """An empty database of the test's own on the module's cluster: its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with pg.superuser_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{pg.user}"')
    return pg.url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened: Store
    if request.param == "sqlite":
        opened = SqliteStore(tmp_path / "bus.sqlite3")
        await opened.open()
    else:
        opened = await PostgresStore.connect(_fresh_database(request.getfixturevalue("postgres_server")))
    yield opened
    await opened.close()


# --- (a) the contract, on both engines --------------------------------------------------------------------


async def test_users_and_the_password_epoch(store: Store) -> None:
    alice = await store.add_user("alice", "pw-1")
    bob = await store.add_user("bob", "pw-b")
    assert alice.id != bob.id and await store.user_count() == 2
    for bad_name, bad_password in (("", "x"), ("tab\there", "x"), ("x" * 65, "x"), ("carol", "")):
        with pytest.raises(StoreError):
            await store.add_user(bad_name, bad_password)
    with pytest.raises(StoreError, match="exists"):
        await store.add_user("alice", "other")
    assert await store.find_user("alice") == alice and await store.get_user(alice.id) == alice
    assert await store.find_user("nobody") is None and await store.get_user(10_000) is None
    record = await store.login_record("alice")
    assert record is not None and record[0] == alice and record[1].startswith("$argon2")
    # text PostgreSQL cannot hold (NUL) finds nobody, as in SQLite, rather than failing
    assert await store.find_user("ali\x00ce") is None and await store.login_record("\x00") is None
    assert await has_password(store, "alice", "pw-1") and not await has_password(store, "alice", "pw-2")

    assert await store.token_epoch(alice.id) == 0
    await store.add_refresh("r-alice", alice.id, time.time() + DAY)
    await store.add_api_token("a-alice", alice.id, "cli", time.time() + DAY)
    await store.add_refresh("r-bob", bob.id, time.time() + DAY)
    await store.set_password("alice", "pw-2")
    assert await store.token_epoch(alice.id) == 1 and await store.token_epoch(bob.id) == 0
    assert await has_password(store, "alice", "pw-2") and not await has_password(store, "alice", "pw-1")
    assert await store.use_refresh("r-alice") is None and not await store.api_token_live("a-alice")
    assert await store.use_refresh("r-bob") == bob.id  # another user's sessions go on
    with pytest.raises(StoreError, match="no user"):
        await store.set_password("nobody", "x")
    with pytest.raises(StoreError):
        await store.set_password("alice", "")
    assert await store.token_epoch(alice.id) == 1  # a refused change moves nothing

    assert await store.delete_user("alice") and not await store.delete_user("alice")
    assert await store.token_epoch(alice.id) is None and await store.user_count() == 1


async def test_a_refresh_token_works_once(store: Store) -> None:
    user = await store.add_user("u", "pw")
    await store.add_refresh("r1", user.id, time.time() + DAY)
    assert await store.use_refresh("r1") == user.id
    assert await store.use_refresh("r1") is None
    await store.add_refresh("old", user.id, time.time() - 1)
    assert await store.use_refresh("old") is None  # expired
    await store.add_refresh("r2", user.id, time.time() + DAY)
    assert await store.revoke_refresh("r2") and await store.use_refresh("r2") is None
    assert not await store.revoke_refresh("never-issued")
    # presented many times at once (replicas racing), exactly one use wins
    await store.add_refresh("r3", user.id, time.time() + DAY)
    assert sorted(await asyncio.gather(*(store.use_refresh("r3") for _ in range(8))), key=str) == (
        [user.id] + [None] * 7)


async def test_revoking_an_api_token_revokes_its_lineage(store: Store) -> None:
    alice, bob = await store.add_user("alice", "a"), await store.add_user("bob", "b")
    far = time.time() + DAY
    await store.add_api_token("root", alice.id, "root", far)
    await store.add_api_token("child", alice.id, "child", far, parent_jti="root")
    await store.add_api_token("grandchild", alice.id, "grandchild", far, parent_jti="child")
    await store.add_api_token("sibling", alice.id, "sibling", far)
    await store.add_api_token("bobs", bob.id, "bob's", far)

    assert not await store.revoke_api_token("child", bob.id)  # not bob's to revoke
    assert await store.api_token_live("child")
    assert await store.revoke_api_token("child", alice.id)
    live = {jti: await store.api_token_live(jti) for jti in ("root", "child", "grandchild", "sibling", "bobs")}
    assert live == {"root": True, "child": False, "grandchild": False, "sibling": True, "bobs": True}
    assert await store.revoke_api_token("child")  # already revoked: it exists, so True, as SQLite says
    assert not await store.revoke_api_token("no-such-token")
    assert await store.revoke_api_token("root")
    assert not await store.api_token_live("root") and await store.api_token_live("sibling")

    listed = await store.list_api_tokens(alice.id)
    assert [t["jti"] for t in listed] == ["root", "child", "grandchild", "sibling"]  # oldest first
    assert set(listed[0]) == {"jti", "name", "created", "expires", "revoked", "parent_jti"}
    assert [(t["revoked"], type(t["revoked"])) for t in listed] == [(1, int)] * 3 + [(0, int)]
    assert listed[1]["parent_jti"] == "root" and listed[0]["parent_jti"] is None
    assert isinstance(listed[0]["created"], float) and listed[0]["expires"] == pytest.approx(far)
    assert await store.list_api_tokens(10_000) == []


async def test_jobs_are_kept_per_user(store: Store) -> None:
    now = time.time()
    await store.put_job(JobRow("j1", "1", "llm-a", "blender-a", "get_scene_info", "queued", now, now))
    await store.put_job(JobRow("j1", "2", "llm-b", None, None, "queued", now, now))  # same id, other user
    changed = await store.set_job_status("1", "j1", "completed")
    first, second = await store.get_job("1", "j1"), await store.get_job("2", "j1")
    assert first is not None and first.status == "completed" and first.updated >= now
    assert first.command == "get_scene_info" and first.target_uuid == "blender-a"
    assert changed == first  # the row as it is after the update, read in the same statement
    assert second == JobRow("j1", "2", "llm-b", None, None, "queued", now, now)
    await store.put_job(JobRow("j1", "2", "llm-b", "blender-b", "render", "running", now, now + 1))  # replaced
    assert await store.get_job("2", "j1") == JobRow("j1", "2", "llm-b", "blender-b", "render", "running", now,
                                                    now + 1)
    assert await store.get_job("3", "j1") is None and await store.get_job("1", "nope") is None
    assert await store.set_job_status("3", "j1", "failed") is None  # nothing there: nothing happens
    assert await store.get_job("3", "j1") is None
    await store.delete_job("2", "j1")
    await store.delete_job("2", "j1")  # gone already: no error
    assert await store.get_job("2", "j1") is None and await store.get_job("1", "j1") is not None  # per user


async def test_persistent_clients_and_their_offline_records(store: Store) -> None:
    client = PersistentClient("1", "blender-1", "blender", ["scene", "render"], "studio", "Desk", None)
    await store.put_persistent(client)
    await store.put_persistent(PersistentClient("2", "blender-1", "blender", [], None, None, 5.0))
    await store.put_persistent(PersistentClient("1", "blender-1", "blender", ["scene"], "studio", "Desk", None))
    await store.set_offline_since("1", "blender-1", 123.5)
    kept = sorted(await store.persistent_clients(), key=lambda c: c.user_id)
    assert kept == [PersistentClient("1", "blender-1", "blender", ["scene"], "studio", "Desk", 123.5),
                    PersistentClient("2", "blender-1", "blender", [], None, None, 5.0)]

    assert await store.add_offline_records([]) == []
    rows = [("1", "blender-1", prio, 100.0 + n, f'{{"n": {n}, "b": 1, "a": 2}}') for n, prio in enumerate((3, 1, 2))]
    ids = await store.add_offline_records(rows)
    assert len(ids) == 3 and ids == sorted(ids) and len(set(ids)) == 3
    await store.add_offline_records([("2", "blender-1", 1, 1.0, '{"other": "user"}')])
    queued = await store.offline_records("1", "blender-1")
    assert queued == [(ids[0], 3, 100.0, {"n": 0, "b": 1, "a": 2}), (ids[1], 1, 101.0, {"n": 1, "b": 1, "a": 2}),
                      (ids[2], 2, 102.0, {"n": 2, "b": 1, "a": 2})]
    assert list(queued[0][3]) == ["n", "b", "a"]  # the record as encoded, keys in their order
    # all or none: a row the store refuses keeps none of its batch
    with pytest.raises(Exception):  # noqa: B017 - each engine's own integrity error
        await store.add_offline_records([("1", "blender-1", 1, 1.0, '{"kept": false}'),
                                         ("1", None, 1, 1.0, '{"bad": true}')])  # type: ignore[list-item]
    assert len(await store.offline_records("1", "blender-1")) == 3

    await store.delete_offline_records([("1", "blender-1", ids[1])])
    await store.delete_offline_records([])
    assert [r[0] for r in await store.offline_records("1", "blender-1")] == [ids[0], ids[2]]
    await store.forget_persistent("1", "blender-1")
    assert await store.offline_records("1", "blender-1") == []
    assert [c.user_id for c in await store.persistent_clients()] == ["2"]
    assert len(await store.offline_records("2", "blender-1")) == 1  # another user's client stays


async def test_prune_deletes_only_what_nobody_can_use(store: Store) -> None:
    user = await store.add_user("u", "pw")
    now = time.time()
    await store.put_job(JobRow("old", "1", None, None, None, "running", now - 10 * DAY, now - 10 * DAY))
    await store.put_job(JobRow("new", "1", None, None, None, "completed", now, now))
    await store.add_refresh("expired", user.id, now - 5)
    await store.add_refresh("live", user.id, now + DAY)
    await store.add_api_token("expired-api", user.id, "x", now - 5)
    await store.add_api_token("live-api", user.id, "x", now + DAY)
    await store.add_offline_records([("1", "c", 1, now - 7200, "{}"), ("1", "c", 1, now - 10, "{}")])
    counts = await store.prune(now=now, job_retention=7 * DAY, offline_max_age=3600)
    assert counts == {"jobs": 1, "refresh_tokens": 1, "api_tokens": 1, "offline_records": 1}
    assert await store.get_job("1", "old") is None and await store.get_job("1", "new") is not None
    assert await store.use_refresh("live") == user.id and await store.api_token_live("live-api")
    assert len(await store.offline_records("1", "c")) == 1
    assert await store.prune(now=now, job_retention=7 * DAY, offline_max_age=3600) == dict.fromkeys(counts, 0)


# --- PostgreSQL only: start-up, secrets, outages ----------------------------------------------------------


async def test_replicas_opening_an_empty_database_at_once_make_one_schema(postgres_server: PostgresServer) -> None:
    url = _fresh_database(postgres_server)
    stores = await asyncio.gather(*(PostgresStore.connect(url) for _ in range(3)))
    try:
        await stores[0].add_user("shared", "pw")
        assert [await s.find_user("shared") for s in stores] == [await stores[2].find_user("shared")] * 3
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    with psycopg_connect(url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]


async def test_a_newer_schema_is_refused(postgres_server: PostgresServer) -> None:
    url = _fresh_database(postgres_server)
    await (await PostgresStore.connect(url)).close()
    with psycopg_connect(url) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match="version 99"):
        await PostgresStore.connect(url)


async def test_the_password_stays_out_of_errors_and_logs(postgres_server: PostgresServer,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cret-" + secrets.token_hex(4)
    caplog.set_level(logging.DEBUG)
    wrong = postgres_server.url.replace(postgres_server.password, secret)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as refused:
        await PostgresStore.connect(wrong, open_timeout=1.0)
    assert time.monotonic() - started < 5
    assert "PostgreSQL" in str(refused.value) and secret not in str(refused.value)
    assert "password authentication failed" in str(refused.value)  # why, for whoever runs it
    assert refused.value.__cause__ is None and refused.value.__suppress_context__  # no psycopg text chained
    with pytest.raises(StoreError) as garbled:
        PostgresStore(f"postgresql://bmcp:{secret}@127.0.0.1:{postgres_server.port}/x?bogus_option=1")
    assert secret not in str(garbled.value)
    assert not [r for r in caplog.records if secret in r.getMessage()]


async def test_calls_fail_fast_while_the_database_is_down_and_recover(fresh_postgres: PostgresServer,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    store = await PostgresStore.connect(fresh_postgres.url, min_size=2, max_size=4)
    try:
        user = await store.add_user("u", "pw")
        fresh_postgres.kill()
        for call in (store.find_user("u"), store.token_epoch(user.id), store.user_count()):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="PostgreSQL"):
                await call
            assert time.monotonic() - started < 3.0
        fresh_postgres.start()
        deadline = time.monotonic() + 8
        while True:
            try:
                assert await store.find_user("u") == user
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the pool did not reconnect"
                await asyncio.sleep(0.2)
    finally:
        await store.close()
    # A restart while idle costs no failed call: the connections that died are found at checkout and
    # replaced. Replacing one may take longer than the 2 s above on a loaded machine, hence the wider wait.
    store = await PostgresStore.connect(fresh_postgres.url, min_size=2, max_size=4, timeout=10)
    try:
        assert await store.find_user("u") == user
        fresh_postgres.restart()
        assert await store.token_epoch(user.id) == 0
    finally:
        await store.close()
    assert not [r for r in caplog.records if fresh_postgres.password in r.getMessage()]


# --- (b), (c) the real server on PostgreSQL ---------------------------------------------------------------


def _replica(tmp_path: Path, name: str, database: str, jwt_secret: str) -> ServerProcess:
    folder = tmp_path / name
    folder.mkdir()
    return ServerProcess(folder, free_port(), env={"BLENDER_MCP_DATABASE": database,
                                                   "BLENDER_MCP_JWT_SECRET": jwt_secret}).start()


async def _list_clients(base: str, token: str) -> dict:
    transport = StreamableHttpTransport(url=f"{base}/mcp", headers={"Authorization": f"Bearer {token}"})
    async with Client(transport, timeout=10) as client:
        return tool_json(await client.call_tool("blender_list_available_clients", {}))


def _mcp_status(base: str, token: str) -> int:
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json",
               "authorization": f"Bearer {token}"}
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    return httpx.post(f"{base}/mcp", json=body, headers=headers, timeout=10).status_code


async def test_two_replicas_share_users_and_tokens(postgres_server: PostgresServer, tmp_path: Path) -> None:
    database, jwt_secret = _fresh_database(postgres_server), secrets.token_urlsafe(32)
    # started at once, as replicas of one deployment are: both find the database empty (schema, demo user)
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda name: _replica(tmp_path, name, database, jwt_secret), ("a", "b"))
    try:
        made = a.cli("user", "add", "carol", "--password", "carol-pw", "--database", database)
        assert made.returncode == 0, made.stderr
        assert postgres_server.password not in made.stdout + made.stderr
        assert not (b.data_dir / "bus.sqlite3").exists()  # nothing of the accounts lives in a replica
        auth = login(a.url, "carol", "carol-pw")
        assert login(b.url, "carol", "carol-pw")["user"] == auth["user"]
        assert (await _list_clients(b.url, auth["access_token"]))["ephemeral"] == []
        # a refresh token minted on A works once, on B
        r = httpx.post(f"{b.url}/auth/refresh", json={"refresh_token": auth["refresh_token"]}, timeout=10)
        assert r.status_code == 200
        assert httpx.post(f"{a.url}/auth/refresh", json={"refresh_token": auth["refresh_token"]},
                          timeout=10).status_code == 401
        # an API token minted on B is listed, and revoked, on A
        token = r.json()["access_token"]
        minted = httpx.post(f"{b.url}/auth/tokens", json={"name": "desk"}, timeout=10,
                            headers={"authorization": f"Bearer {token}"}).json()
        listed = httpx.get(f"{a.url}/auth/tokens", headers={"authorization": f"Bearer {token}"}, timeout=10).json()
        assert [t["jti"] for t in listed["tokens"]] == [minted["jti"]] and listed["tokens"][0]["revoked"] == 0
        assert _mcp_status(b.url, minted["token"]) == 200
        # the CLI signs with the replicas' secret only when given it, as they are
        from_cli = subprocess.run([sys.executable, "-m", "blender_mcp_server.cli", "token", "create", "carol",
                                   "--label", "cli", "--database", database, "--data-dir", str(a.data_dir)],
                                  capture_output=True, text=True, cwd=ROOT, timeout=60,
                                  env={**os.environ, "BLENDER_MCP_JWT_SECRET": jwt_secret})
        assert from_cli.returncode == 0, from_cli.stderr
        assert _mcp_status(b.url, from_cli.stdout.strip()) == 200

        # a password changed through A (the CLI here; any replica's users are the database's) ends the
        # sessions B is serving, within its token cache's two seconds
        changed = a.cli("user", "passwd", "carol", "--password", "new-pw", "--database", database)
        assert changed.returncode == 0, changed.stderr
        started = time.monotonic()
        while _mcp_status(b.url, auth["access_token"]) != 401:
            assert time.monotonic() - started < 3.0, "B still takes a token the password change ended"
            await asyncio.sleep(0.1)
        assert _mcp_status(b.url, minted["token"]) == 401 and _mcp_status(b.url, from_cli.stdout.strip()) == 401
        assert login(b.url, "carol", "new-pw")["user"]["username"] == "carol"
    finally:
        a.stop()
        b.stop()
    for replica in (a, b):
        log = (replica.data_dir / "server.log").read_text()
        assert postgres_server.password not in log, replica.data_dir


async def test_a_database_outage_answers_503_and_heals_without_a_restart(fresh_postgres: PostgresServer,
                                                                          tmp_path: Path) -> None:
    srv = _replica(tmp_path, "srv", fresh_postgres.url, secrets.token_urlsafe(32))
    try:
        token = login(srv.url)["access_token"]
        added = srv.cli("user", "add", "unseen", "--password", "unseen-pw", "--database", fresh_postgres.url)
        assert added.returncode == 0, added.stderr
        # a user this replica never checked a token of before the outage
        unchecked = login(srv.url, "unseen", "unseen-pw")["access_token"]
        assert _mcp_status(srv.url, token) == 200
        fresh_postgres.kill()
        time.sleep(2.1)  # past the verifier's cache of the token's epoch, so /mcp has to ask the database
        started = time.monotonic()
        r = httpx.post(f"{srv.url}/auth/login", json={"username": "demo", "password": "demo"}, timeout=10)
        took = time.monotonic() - started
        assert r.status_code == 503 and r.json()["error"] == "backend_unavailable", r.text
        assert took < 3.0 and r.headers["retry-after"]
        assert fresh_postgres.password not in r.text and "PostgreSQL" in r.json()["message"]
        started = time.monotonic()
        assert _mcp_status(srv.url, unchecked) == 503  # not 401: the token is not known to be bad
        assert time.monotonic() - started < 3.0
        # A user this replica checked a token of before stands through the outage (its calls answer for
        # themselves where they touch the store).
        assert _mcp_status(srv.url, token) == 200
        assert httpx.get(f"{srv.url}/health", timeout=5).status_code == 200  # the process itself is fine

        fresh_postgres.start()
        deadline = time.monotonic() + 8  # database_reconnect_timeout (5 s) bounds how long a pool slot sleeps
        while (r := httpx.post(f"{srv.url}/auth/login", json={"username": "demo", "password": "demo"},
                               timeout=10)).status_code == 503:
            assert time.monotonic() < deadline, "the server did not reconnect"
            time.sleep(0.2)
        assert r.status_code == 200
        assert _mcp_status(srv.url, token) == 200
    finally:
        srv.stop()
    assert fresh_postgres.password not in (srv.data_dir / "server.log").read_text()
