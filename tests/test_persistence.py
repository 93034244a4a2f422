"""What the store keeps across restarts of the server, what it bounds, and what it lets go of."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time

import httpx
import pytest

from tests.helpers import ServerProcess, bus_client, login, send, start_fresh, tool_json, wait_online

pytestmark = pytest.mark.anyio


def _rows(server: ServerProcess, table: str) -> int:
    with sqlite3.connect(f"file:{server.data_dir / 'bus.sqlite3'}?mode=ro", uri=True) as db:
        return db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_records_reported_queued_survive_a_restart(tmp_path, sig):
    srv = start_fresh(tmp_path / "server")
    try:
        async with bus_client(srv.url, uuid="keep-me", client_type="blender", persistent=True):
            pass
        async with bus_client(srv.url, uuid="keep-sender") as sender:
            await wait_online(sender, "keep-me", online=False)
            sent = []
            for n, prio in enumerate(["info", "error", "debug"]):
                res = await send(sender, target_uuid="keep-me", from_uuid="keep-sender", priority=prio,
                                 payload={"n": n})
                assert res["status"] == "queued", res
                sent.append(res["message_id"])
        srv.stop(sig)
        srv.start()
        async with bus_client(srv.url) as watcher:
            listing = tool_json(await watcher.call_tool("blender_list_available_clients", {}))
            [kept] = [c for c in listing["persistent"] if c["uuid"] == "keep-me"]
            assert kept["online"] is False and kept["queued"] == 3 and kept["client_type"] == "blender"
        async with bus_client(srv.url, uuid="keep-me", client_type="blender", persistent=True) as back:
            records = await back.collector.wait_for(3)
            assert [r["payload"]["n"] for r in records] == [1, 0, 2]  # error, info, debug: priority order
            assert sorted(r["message_id"] for r in records) == sorted(sent)
            await asyncio.sleep(1.0)  # delivered copies leave the store in the next sweep
        assert _rows(srv, "offline_records") == 0
        srv.stop()
        srv.start()
        async with bus_client(srv.url, uuid="keep-me", client_type="blender", persistent=True) as again:
            await asyncio.sleep(0.5)
            assert again.collector.records == []  # delivered once, not again after the next restart
    finally:
        srv.stop()


async def test_an_offline_queue_is_bounded_by_bytes(tmp_path):
    srv = start_fresh(tmp_path / "server", BLENDER_MCP_OFFLINE_MAX_BYTES=str(3_000_000))
    try:
        async with bus_client(srv.url, uuid="full-offline", persistent=True):
            pass
        async with bus_client(srv.url, uuid="full-sender") as sender:
            await wait_online(sender, "full-offline", online=False)
            big = "x" * 900_000
            answers = [await send(sender, target_uuid="full-offline", payload={"blob": big}) for _ in range(4)]
            assert [a["status"] for a in answers] == ["queued", "queued", "queued", "error"]
            assert answers[3]["error"] == "outbox_full" and "3000000 bytes" in answers[3]["message"]
            small = await send(sender, target_uuid="full-offline", payload={"n": 1})
            assert small["status"] == "queued"  # the bound is bytes: a small record still fits
    finally:
        srv.stop()


async def test_the_store_lets_go_of_old_jobs_and_expired_tokens(tmp_path):
    # Retention well above the time three sends take on a loaded machine, so the first count sees them all.
    # The refresh token lives 3 s: counted first thing, before a loaded machine's sends could outlast it.
    srv = start_fresh(tmp_path / "server", BLENDER_MCP_JOB_RETENTION="4", BLENDER_MCP_PRUNE_INTERVAL="1",
                      BLENDER_MCP_REFRESH_TTL="3")
    try:
        async with bus_client(srv.url, uuid="prune-llm") as llm:
            assert _rows(srv, "refresh_tokens") >= 1
            for n in range(3):
                await send(llm, target_uuid="prune-llm", from_uuid="prune-llm",
                           payload={"message_type": "job_dispatch", "job_id": f"prune-{n}", "script": ""})
            assert _rows(srv, "jobs") == 3
            deadline = time.monotonic() + 20
            while (_rows(srv, "jobs") or _rows(srv, "refresh_tokens")) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert _rows(srv, "jobs") == 0 and _rows(srv, "refresh_tokens") == 0
    finally:
        srv.stop()


_RELEASE_0_1_0_SCHEMA = """
CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, username TEXT NOT NULL UNIQUE,
                    password_hash TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE refresh_tokens (jti TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                             expires REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE api_tokens (jti TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                         name TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL,
                         revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE jobs (job_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, originator_uuid TEXT, target_uuid TEXT,
                   command TEXT, status TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX jobs_by_status ON jobs(status);
"""


def test_a_store_made_by_release_0_1_0_is_carried_over(tmp_path):
    from pwdlib import PasswordHash

    folder = tmp_path / "server"
    folder.mkdir()
    with sqlite3.connect(folder / "bus.sqlite3") as db:
        db.executescript(_RELEASE_0_1_0_SCHEMA)
        db.execute("INSERT INTO users(username, password_hash, created) VALUES (?, ?, ?)",
                   ("erin", PasswordHash.recommended().hash("erin-pw"), time.time()))
        db.execute("INSERT INTO jobs VALUES ('old-job', '1', 'a', 'b', 'render', 'completed', ?, ?)",
                   (time.time(), time.time()))
    srv = start_fresh(folder)
    try:
        pair = login(srv.url, "erin", "erin-pw")
        assert httpx.post(f"{srv.url}/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 200
        with sqlite3.connect(f"file:{folder / 'bus.sqlite3'}?mode=ro", uri=True) as db:
            assert db.execute("SELECT job_id, user_id, status FROM jobs").fetchall() == [("old-job", "1", "completed")]
            assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    finally:
        srv.stop()
