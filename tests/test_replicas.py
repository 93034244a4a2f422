"""Several server replicas sharing one bus through real Redis, behind real HAProxy.

Clients are placed on chosen replicas (straight to a replica's port) so every record here crosses
replicas; the balancer tests go through HAProxy, which keeps each MCP session on its replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import ServerProcess, bus_client, free_port, login, send, tool_json, wait_online
from tests.services import PostgresServer, RedisServer

pytestmark = pytest.mark.anyio
SECRET = "replicas-share-this-jwt-secret-0123456789"


class Replicas:
    """N replicas of one bus, as the README's reference deployment runs them: one Redis, one PostgreSQL,
    one JWT secret."""

    def __init__(self, folder: Path, redis: RedisServer, database: PostgresServer, count: int = 3, **env: str):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.redis, self.database = folder, redis, database
        self.servers = [ServerProcess(folder / f"r{i}", free_port(), env={
            "BLENDER_MCP_REDIS": redis.url, "BLENDER_MCP_DATABASE": database.url,
            "BLENDER_MCP_REPLICA_ID": f"r{i}", "BLENDER_MCP_JWT_SECRET": SECRET,
            "BLENDER_MCP_REPLICA_TTL": "1.5", **env}) for i in range(count)]

    def start(self) -> Replicas:
        for server in self.servers:
            server.data_dir.mkdir(parents=True, exist_ok=True)
            server.start()
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def url(self, i: int) -> str:
        return self.servers[i].url


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
             postgres_server: PostgresServer) -> Iterator[Replicas]:
    """Three replicas for the module (each test names its own clients); a test that kills one starts it again."""
    redis_server.client().flushall()
    group = Replicas(tmp_path_factory.mktemp("bus"), redis_server, postgres_server).start()
    yield group
    group.stop()


async def answer_jobs(blender: Any, result: dict[str, Any] | None = None, hold: asyncio.Event | None = None,
                      stop: asyncio.Event | None = None) -> None:
    """A stand-in Blender: answer every command_dispatch it receives (after `hold` is set, when given),
    until `stop` is set; a call it has started is finished first."""
    stop = stop or asyncio.Event()
    seen = 0
    while not stop.is_set():
        records = blender.collector.records
        while seen < len(records) and not stop.is_set():
            payload = records[seen]["payload"]
            seen += 1
            if payload.get("message_type") != "command_dispatch":
                continue
            if hold is not None:
                waits = [asyncio.ensure_future(hold.wait()), asyncio.ensure_future(stop.wait())]
                _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for waiting in pending:
                    waiting.cancel()
                if stop.is_set():
                    return
            await blender.call_tool("blender_job_update", {
                "job_id": payload["job_id"], "status": "completed",
                "result": result or {"answered_by": "stand-in", "command": payload["command"]}})
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def stand_in_blender(url: str, uuid: str, result: dict[str, Any] | None = None,
                           hold: asyncio.Event | None = None) -> AsyncIterator[Any]:
    """A Blender client `uuid` on the replica at `url` that answers its jobs (`answer_jobs`) while open.

    On leaving, a job update still on the wire is let finish: the SDK's client raises on closing when a
    JSON answer lands between its session's end and its transport's (a test that ends as soon as the
    update's effect shows would hit that window)."""
    async with bus_client(url, uuid=uuid, client_type="blender") as blender:
        stop = asyncio.Event()
        responder = asyncio.create_task(answer_jobs(blender, result, hold, stop))
        try:
            yield blender
        finally:
            stop.set()
            with contextlib.suppress(Exception):  # its replica may be dead: the call fails, or times out
                await asyncio.wait_for(responder, 30)


async def test_every_routing_mode_reaches_clients_on_other_replicas(replicas):
    r0, r1, r2 = replicas.url(0), replicas.url(1), replicas.url(2)
    async with (bus_client(r0, uuid="sender") as sender,
                bus_client(r0, uuid="a", group_id="g") as a,
                bus_client(r1, uuid="b", group_id="g", client_type="render") as b,
                bus_client(r2, uuid="c", client_type="render") as c):
        await wait_online(sender, "c")
        listing = tool_json(await c.call_tool("blender_list_available_clients", {}))
        assert sorted(e["uuid"] for e in listing["ephemeral"]) == ["a", "b", "c", "sender"]
        assert all(e["online"] for e in listing["ephemeral"])

        direct = await send(sender, from_uuid="sender", target_uuid="c", payload={"n": 1})
        assert direct["status"] == "sent" and direct["delivery"] == {"c": "sent"}, direct
        group = await send(sender, from_uuid="sender", group_id="g", payload={"n": 2})
        assert sorted(group["recipients"]) == ["a", "b"]
        by_type = await send(sender, from_uuid="sender", client_type="render", payload={"n": 3})
        assert sorted(by_type["recipients"]) == ["b", "c"]
        everyone = await send(sender, from_uuid="sender", payload={"n": 4})
        assert sorted(everyone["recipients"]) == ["a", "b", "c"]

        got = {name: [r["payload"]["n"] for r in await client.collector.wait_for(count)]
               for name, client, count in (("a", a, 2), ("b", b, 3), ("c", c, 3))}
        await asyncio.sleep(0.3)  # nothing more comes: each record arrived once
        assert {k: sorted(v) for k, v in got.items()} == {"a": [2, 4], "b": [2, 3, 4], "c": [1, 3, 4]}
        assert len(a.collector.records) == 2 and len(b.collector.records) == 3 and len(c.collector.records) == 3
        assert sender.collector.records == []


async def test_a_style_a_call_on_one_replica_runs_on_a_blender_held_by_another(replicas):
    async with stand_in_blender(replicas.url(1), "blender-r1"):
        async with bus_client(replicas.url(0)) as caller:
            await wait_online(caller, "blender-r1")
            answer = tool_json(await caller.call_tool("blender_get_scene_info", {}))
            assert answer["status"] == "completed", answer
            assert answer["target_uuid"] == "blender-r1" and json.loads(answer["result"])["answered_by"] == "stand-in"
            started = time.perf_counter()
            for _ in range(20):
                assert tool_json(await caller.call_tool("blender_get_scene_info", {}))["status"] == "completed"
            assert time.perf_counter() - started < 10


def command_calls(redis: RedisServer, *names: str) -> dict[str, int]:
    """How many times Redis ran each command so far (INFO commandstats)."""
    with redis.client() as r:
        stats = r.info("commandstats")
    return {name: int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in names}


async def test_routing_reuses_its_copy_of_the_directory_and_hears_every_change_at_once(replicas):
    async with stand_in_blender(replicas.url(1), "cached-blender-1"):
        async with bus_client(replicas.url(0)) as caller:
            await wait_online(caller, "cached-blender-1")
            # Every test here is user demo's: the earlier tests' clients leaving change demo's directory, and
            # each change makes every replica drop its copy. Wait until they have left (a session that just ended
            # leaves the directory a moment later), then let the last change reach the replicas.
            deadline = time.monotonic() + 30
            while [e["uuid"] for e in tool_json(await caller.call_tool("blender_list_available_clients", {}))[
                    "ephemeral"]] != ["cached-blender-1"]:
                assert time.monotonic() < deadline, "the earlier tests' clients did not leave"
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.5)
            before = command_calls(replicas.redis, "hgetall", "get")
            started = time.monotonic()
            for _ in range(40):
                assert tool_json(await caller.call_tool("blender_get_scene_info", {}))["status"] == "completed"
            after = command_calls(replicas.redis, "hgetall", "get")
            # one read of the whole directory per second of calls, not one per call (40 here): one more for a
            # change that still lands meanwhile; and the Blender's replica knows where each call waits from
            # the job's record, without reading its wait: key
            assert after["hgetall"] - before["hgetall"] <= 2 + int(time.monotonic() - started), (before, after)
            assert after["get"] == before["get"], (before, after)

            async def answer_within(status: str, seconds: float) -> None:
                deadline = time.monotonic() + seconds
                while (got := tool_json(await caller.call_tool("blender_get_scene_info", {})))["status"] != status:
                    assert time.monotonic() < deadline, got
            # a second Blender registering on another replica is seen well inside the cache's second...
            async with bus_client(replicas.url(2), uuid="cached-blender-2", client_type="blender") as second:
                await answer_within("ambiguous_target", 0.3)
                await second.call_tool("blender_unregister_client", {"client_uuid": "cached-blender-2"})
                # ...and so is its leaving
                await answer_within("completed", 0.3)


async def test_an_update_after_its_call_ended_reaches_no_one_across_replicas(replicas):
    """The Blender's replica forgets where a call waited once the call ends (timeout): a late update is
    answered as one server answers it, not "delivered"."""
    async with (bus_client(replicas.url(1), uuid="late-blender", client_type="blender") as blender,
                bus_client(replicas.url(0)) as caller):
        await wait_online(caller, "late-blender")
        timed_out = tool_json(await caller.call_tool("blender_get_scene_info", {"_timeout": 1}))
        assert timed_out["status"] == "timeout", timed_out
        dispatched = [r["payload"] for r in blender.collector.records
                      if r["payload"].get("message_type") == "command_dispatch"]
        assert [d["job_id"] for d in dispatched] == [timed_out["job_id"]]
        await asyncio.sleep(0.3)  # the caller's replica tells the Blender's one off the call's path
        late = tool_json(await blender.call_tool("blender_job_update", {
            "job_id": timed_out["job_id"], "status": "completed", "result": {"late": True}}))
        assert late["status"] == "dropped", late


async def test_the_client_limit_counts_the_whole_bus_not_one_replica(tmp_path, redis_server, postgres_server):
    group = Replicas(tmp_path, redis_server, postgres_server, count=2, BLENDER_MCP_MAX_CLIENTS_PER_USER="2",
                     BLENDER_MCP_REDIS_PREFIX="limit-test:").start()  # its own keys beside the module's bus
    try:
        async with (bus_client(group.url(0), uuid="cap-1") as first, bus_client(group.url(1), uuid="cap-2"),
                    bus_client(group.url(0)) as third):
            refused = tool_json(await third.call_tool("blender_register_client", {
                "client_uuid": "cap-3", "client_type": "llm"}))
            assert refused["error"] == "too_many_clients" and "limit 2" in refused["message"], refused
            again = tool_json(await first.call_tool("blender_register_client", {  # one already counted
                "client_uuid": "cap-2", "client_type": "llm"}))
            assert again["status"] == "registered", again
    finally:
        group.stop()


async def test_a_style_a_call_over_the_rate_is_refused_across_replicas_and_leaves_no_job(
        tmp_path, redis_server, postgres_server):
    group = Replicas(tmp_path, redis_server, postgres_server, count=2, BLENDER_MCP_MESSAGES_PER_MINUTE="3",
                     BLENDER_MCP_REDIS_PREFIX="rate-test:").start()
    try:
        async with stand_in_blender(group.url(1), "rated-blender"):
            async with bus_client(group.url(0)) as caller:
                await wait_online(caller, "rated-blender")
                answers = [tool_json(await caller.call_tool("blender_get_scene_info", {})) for _ in range(5)]
        assert [a["status"] for a in answers] == ["completed"] * 3 + ["rate_limited"] * 2, answers
        with postgres_server.connect() as conn:
            rows = conn.execute("SELECT status FROM jobs WHERE target_uuid='rated-blender'").fetchall()
        assert sorted(r[0] for r in rows) == ["completed"] * 3  # the refused calls' jobs were taken back
    finally:
        group.stop()


async def test_two_users_stay_apart_across_replicas(replicas):
    added = replicas.servers[0].cli("user", "add", "other", "--password", "other-pw", "--database", replicas.database.url)
    assert added.returncode == 0 or "exists" in added.stderr, added.stderr
    async with (bus_client(replicas.url(0), uuid="demo-blender", client_type="blender") as mine,
                bus_client(replicas.url(2), username="other", password="other-pw", uuid="theirs") as theirs):
        listing = tool_json(await theirs.call_tool("blender_list_available_clients", {}))
        assert [e["uuid"] for e in listing["ephemeral"]] == ["theirs"]
        refused = await send(theirs, from_uuid="theirs", target_uuid="demo-blender", payload={"x": 1})
        assert refused["status"] == "error" and refused["error"] == "unknown_target", refused
        alone = tool_json(await theirs.call_tool("blender_get_scene_info", {}))
        assert alone["status"] == "no_client", alone
        await asyncio.sleep(0.2)
        assert mine.collector.records == []


async def test_a_persistent_clients_queue_waits_for_it_on_any_replica(replicas):
    async with bus_client(replicas.url(1), uuid="farm-node", client_type="render", persistent=True):
        pass  # registered, then its session ends: offline, its records are kept
    async with bus_client(replicas.url(0), uuid="sender") as sender:
        await wait_online(sender, "farm-node", online=False)
        queued = [await send(sender, from_uuid="sender", target_uuid="farm-node", payload={"n": n}) for n in range(3)]
        assert all(q["status"] == "queued" for q in queued), queued
    async with bus_client(replicas.url(2), uuid="farm-node", client_type="render", persistent=True) as back:
        records = await back.collector.wait_for(3)
        assert sorted(r["payload"]["n"] for r in records) == [0, 1, 2]
        await asyncio.sleep(0.5)
        assert len(back.collector.records) == 3


async def test_a_caller_learns_its_target_is_lost_when_the_blenders_replica_dies(replicas):
    hold = asyncio.Event()  # never set: the stand-in takes the job and never answers
    async with contextlib.AsyncExitStack() as stack:
        blender = await stack.enter_async_context(stand_in_blender(replicas.url(1), "doomed", hold=hold))
        caller = await stack.enter_async_context(bus_client(replicas.url(0)))
        await wait_online(caller, "doomed")
        call = asyncio.create_task(caller.call_tool("blender_get_scene_info", {"_timeout": 60}))
        await blender.collector.wait_for(1)
        started = time.monotonic()
        replicas.servers[1].stop(signal.SIGKILL)
        try:
            answer = tool_json(await asyncio.wait_for(call, 30))
        finally:
            replicas.servers[1].start()
        assert answer["status"] == "target_lost", answer
        assert time.monotonic() - started < 15


async def test_sessions_through_haproxy_stay_on_their_replica(replicas, haproxy_factory):
    proxy = haproxy_factory([s.port for s in replicas.servers])
    proxy.wait_states({s.port: "UP" for s in replicas.servers})
    async with stand_in_blender(replicas.url(2), "blender-r2"):
        async with contextlib.AsyncExitStack() as stack:
            callers = [await stack.enter_async_context(bus_client(proxy.url)) for _ in range(3)]
            await run_calls(callers)
        health = [httpx.get(f"{s.url}/health", timeout=5).json() for s in replicas.servers]
        # roundrobin spread the three sessions, and each stayed where it began
        assert all(h["status"] == "ok" for h in health)
    assert login(proxy.url)["access_token"]


async def run_calls(callers: list[Any]) -> None:
    for caller in callers:
        for _ in range(5):
            answer = tool_json(await caller.call_tool("blender_get_scene_info", {}))
            assert answer["status"] == "completed", answer


async def test_a_soak_across_replicas_loses_nothing_and_keeps_memory_flat(tmp_path: Path, redis_server: RedisServer,
                                                                         postgres_server: PostgresServer):
    """Mixed traffic (every routing mode, every priority) among clients spread over three replicas of their
    own, with the default 3 s liveness: at the module's 1.5 s (there for the fault tests) a loaded machine's
    stall made every replica look gone to the others for a moment, and their clients with them."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from bench_soak import soak

    group = Replicas(tmp_path / "soak", redis_server, postgres_server, BLENDER_MCP_REPLICA_TTL="3",
                     BLENDER_MCP_REDIS_PREFIX="soak:").start()
    try:
        pids = [s.proc.pid for s in group.servers if s.proc is not None]
        out = await soak([s.url for s in group.servers], pids, seconds=30, n=24)
    finally:
        group.stop()
    assert out["sent"] > 100 and out["lost"] == 0 and out["extra"] == 0, out
    first, last = out["samples"][1] if len(out["samples"]) > 2 else out["samples"][0], out["samples"][-1]
    assert all(b - a < 40 for a, b in zip(first, last, strict=True)), out["samples"]  # MB per replica


async def test_a_new_log_level_counts_on_every_replica_at_once(replicas):
    async with (bus_client(replicas.url(0), uuid="level-sender") as sender,
                bus_client(replicas.url(1), uuid="level-listener", level="error") as listener):
        await wait_online(sender, "level-listener")
        quiet = await send(sender, from_uuid="level-sender", target_uuid="level-listener", priority="info",
                           payload={"n": 1})
        assert quiet["delivery"] == {"level-listener": "filtered"}, quiet
        await listener.set_logging_level("debug")
        deadline = time.monotonic() + 1  # well before any heartbeat would have carried the level
        while (loud := await send(sender, from_uuid="level-sender", target_uuid="level-listener", priority="info",
                                  payload={"n": 2}))["delivery"] != {"level-listener": "sent"}:
            assert time.monotonic() < deadline, loud
            await asyncio.sleep(0.05)
        assert [r["payload"]["n"] for r in await listener.collector.wait_for(1)] == [2]
