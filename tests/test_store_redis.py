"""The Redis queue store and rate counters: the QueueStore contract on both engines, records that outlive
a Redis crash, fast failure while Redis is away, and rate counts shared by replicas."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from blender_mcp_server.auth.throttle import LoginThrottle
from blender_mcp_server.bus.directory import Registry
from blender_mcp_server.storage import counters
from blender_mcp_server.storage.counters import WindowCounter
from blender_mcp_server.storage.records import ClientInfo, PersistentClient, StoreUnavailable
from blender_mcp_server.storage.redis import RedisQueueStore, RedisWindowCounter
from blender_mcp_server.storage.redis_cluster import RedisCluster
from blender_mcp_server.storage.sqlite import SqliteStore

from tests.services import RedisServer

pytestmark = pytest.mark.anyio


def _client(uuid: str, user: str = "1", offline_since: float | None = None) -> PersistentClient:
    return PersistentClient(user, uuid, "blender", ["render", "scene"], "farm", f"label {uuid}", offline_since)


def _by_uuid(kept: list[PersistentClient]) -> dict[tuple[str, str], PersistentClient]:
    return {(c.user_id, c.uuid): c for c in kept}


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.services)])
async def queue_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "sqlite":
        store: Any = SqliteStore(tmp_path / "bus.db")
    else:
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        with redis_server.client() as r:
            r.flushall()
        store = RedisQueueStore.from_url(redis_server.url, prefix="test:")
    yield store
    await store.close()


# --- the QueueStore contract, on SQLite (the reference) and on Redis ------------------------------------


async def test_persistent_clients_are_put_replaced_and_forgotten(queue_store: Any) -> None:
    await queue_store.put_persistent(_client("a:b", offline_since=1722000000.123456))
    await queue_store.put_persistent(_client("c"))
    await queue_store.put_persistent(_client("c", user="2"))  # the same uuid, another user's
    kept = _by_uuid(await queue_store.persistent_clients())
    assert kept == {("1", "a:b"): _client("a:b", offline_since=1722000000.123456), ("1", "c"): _client("c"),
                    ("2", "c"): _client("c", user="2")}

    replaced = PersistentClient("1", "c", "llm", [], None, None, None)
    await queue_store.put_persistent(replaced)
    await queue_store.set_offline_since("1", "a:b", None)
    await queue_store.set_offline_since("2", "c", 1722000001.5)
    await queue_store.set_offline_since("1", "nobody", 5.0)  # not kept: stays not kept
    kept = _by_uuid(await queue_store.persistent_clients())
    assert kept[("1", "c")] == replaced
    assert kept[("1", "a:b")].offline_since is None
    assert kept[("2", "c")].offline_since == 1722000001.5
    assert ("1", "nobody") not in kept

    await queue_store.forget_persistent("1", "c")
    await queue_store.forget_persistent("1", "never-there")
    assert set(_by_uuid(await queue_store.persistent_clients())) == {("1", "a:b"), ("2", "c")}


async def test_offline_records_are_kept_in_order_with_priority_and_created(queue_store: Any) -> None:
    assert await queue_store.add_offline_records([]) == []
    now = time.time()
    ids = await queue_store.add_offline_records([
        ("1", "a", 3, now, '{"n":1}'), ("1", "b", 0, now + 0.5, '{"n":2}'), ("1", "a", 1, now + 1.25, '{"n":3}')])
    more = await queue_store.add_offline_records([("1", "a", 4, now + 2, '{"n":4,"nested":{"x":[1,2]}}')])
    assert len(ids) == 3 and len(more) == 1 and all(isinstance(i, int) for i in ids + more)
    assert ids[0] < ids[2] < more[0]  # grows within one client's queue
    assert await queue_store.offline_records("1", "a") == [
        (ids[0], 3, now, {"n": 1}), (ids[2], 1, now + 1.25, {"n": 3}),
        (more[0], 4, now + 2, {"n": 4, "nested": {"x": [1, 2]}})]
    assert await queue_store.offline_records("1", "b") == [(ids[1], 0, now + 0.5, {"n": 2})]
    assert await queue_store.offline_records("2", "a") == []  # another user's "a" has nothing


async def test_records_are_deleted_by_client_and_id(queue_store: Any) -> None:
    now = time.time()
    a1, b1, a2, a3 = await queue_store.add_offline_records(
        [("1", "a", 2, now, '{"n":1}'), ("1", "b", 2, now, '{"n":2}'), ("1", "a", 2, now, '{"n":3}'),
         ("1", "a", 2, now, '{"n":4}')])
    await queue_store.delete_offline_records([("1", "a", a1), ("1", "b", b1), ("1", "a", a3)])
    await queue_store.delete_offline_records([("1", "a", a1)])  # already gone: no error
    await queue_store.delete_offline_records([])
    assert [r[0] for r in await queue_store.offline_records("1", "a")] == [a2]
    assert await queue_store.offline_records("1", "b") == []


async def test_forgetting_a_client_deletes_its_records(queue_store: Any) -> None:
    await queue_store.put_persistent(_client("a"))
    await queue_store.put_persistent(_client("b"))
    await queue_store.add_offline_records([("1", "a", 2, time.time(), '{"n":1}'), ("1", "b", 2, time.time(), "{}")])
    await queue_store.forget_persistent("1", "a")
    assert await queue_store.offline_records("1", "a") == []
    assert len(await queue_store.offline_records("1", "b")) == 1
    await queue_store.put_persistent(_client("a"))  # back on the bus: a clean queue
    assert await queue_store.offline_records("1", "a") == []


async def test_over_age_records_are_pruned(queue_store: Any) -> None:
    await queue_store.add_offline_records([("1", "a", 2, time.time(), '{"n":1}'), ("1", "b", 2, time.time(), "{}")])
    await asyncio.sleep(0.4)
    await queue_store.add_offline_records([("1", "a", 2, time.time(), '{"n":2}')])
    pruned = await queue_store.prune(now=time.time(), job_retention=3600, offline_max_age=0.2)
    assert pruned["offline_records"] == 2
    assert [r[3] for r in await queue_store.offline_records("1", "a")] == [{"n": 2}]
    assert await queue_store.offline_records("1", "b") == []
    assert (await queue_store.prune(now=time.time(), job_retention=3600, offline_max_age=60))["offline_records"] == 0
    pruned = await queue_store.prune(now=time.time() + 120, job_retention=3600, offline_max_age=60)
    assert pruned["offline_records"] == 1
    assert await queue_store.offline_records("1", "a") == []
    await queue_store.add_offline_records([("1", "a", 2, time.time(), '{"n":3}')])  # a pruned queue takes more
    assert [r[3] for r in await queue_store.offline_records("1", "a")] == [{"n": 3}]


async def test_the_registry_restores_queues_and_deletes_what_was_over_its_bound(queue_store: Any) -> None:
    """The directory's own use of the store: restore, the bound on what comes back, and the deletes."""
    await queue_store.put_persistent(_client("a", offline_since=1722000000.0))
    rows = [("1", "a", 2, time.time(), f'{{"n":{i}}}') for i in range(5)]
    await queue_store.add_offline_records(rows)
    registry = Registry(max_clients_per_user=10, outbox_max=100, send_timeout=1, store=queue_store)
    assert await registry.restore(offline_max_records=3, offline_max_bytes=1 << 20) == 3
    entry = registry.get("1", "a")
    assert entry is not None and entry.is_persistent and len(entry.outbox) == 3
    assert [r[3]["n"] for r in await queue_store.offline_records("1", "a")] == [0, 1, 2]  # the 2 over went
    entry.outbox.drop_older_than(-1)  # as if delivered: the outbox hands back their stored ids
    assert await registry.flush() == 3
    assert await queue_store.offline_records("1", "a") == []


class _HeldChannel:
    """A client stream that takes records only when let: the first one stays mid-write until `go` is set."""

    def __init__(self) -> None:
        self.written: list[dict[str, Any]] = []
        self.go = asyncio.Event()

    def wants(self, level: Any) -> bool:
        return True

    async def write(self, record: Any, level: Any, target_uuid: str) -> None:
        await self.go.wait()
        self.written.append(record.base)


async def test_loads_at_once_never_put_a_kept_record_twice(queue_store: Any) -> None:
    """Two loads of a client's kept records at once (a resync beside a "grew"), while one record is being
    written to the client's stream: each kept record reaches the client once."""
    await queue_store.put_persistent(_client("a", offline_since=1722000000.0))
    await queue_store.add_offline_records([("1", "a", 2, time.time(), f'{{"n":{i}}}') for i in range(3)])
    registry = Registry(max_clients_per_user=10, outbox_max=100, send_timeout=5, store=queue_store)
    assert await registry.restore(offline_max_records=100, offline_max_bytes=1 << 20) == 3
    entry = registry.get("1", "a")
    assert entry is not None
    channel = _HeldChannel()
    entry.online = True
    entry.outbox.attach(channel)
    while len(entry.outbox) == 3:  # the first record is now mid-write, out of the outbox's heap
        await asyncio.sleep(0.01)
    await queue_store.add_offline_records([("1", "a", 2, time.time(), f'{{"n":{i}}}') for i in (3, 4)])
    loads = [registry.load_queued(entry, offline_max_records=100, offline_max_bytes=1 << 20) for _ in range(2)]
    assert sorted(await asyncio.gather(*loads)) == [0, 2]  # the two new ones, by one of the loads
    channel.go.set()
    while len(channel.written) < 5:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert sorted(r["n"] for r in channel.written) == [0, 1, 2, 3, 4]
    await entry.outbox.close()


async def test_redis_pages_long_queues(redis_server: RedisServer) -> None:
    with redis_server.client() as r:
        r.flushall()
    store = RedisQueueStore.from_url(redis_server.url, page=7)
    try:
        ids = await store.add_offline_records([("1", "a", 2, 1.0, f'{{"n":{i}}}') for i in range(30)])
        kept = await store.offline_records("1", "a")
        assert [r[0] for r in kept] == ids and [r[3]["n"] for r in kept] == list(range(30))
    finally:
        await store.close()


# --- durability and unavailability ----------------------------------------------------------------------


async def test_queued_records_survive_a_redis_crash(fresh_redis: RedisServer) -> None:
    """What is tested: with appendfsync always (fresh_redis) a write Redis acknowledged is in its append-only
    file, so SIGKILL of redis-server right after the reply loses nothing. With everysec, Redis may hold a
    write back while a slow background fsync runs and answer anyway: a crash then loses up to 2 s."""
    store = RedisQueueStore.from_url(fresh_redis.url)
    try:
        await store.put_persistent(_client("a", offline_since=1722000000.5))
        ids = await store.add_offline_records([("1", "a", 2, 1722000001.0, '{"n":1}'),
                                               ("1", "a", 5, 1722000002.0, '{"n":2}')])
        await store.delete_offline_records([("1", "a", ids[0])])
        fresh_redis.restart(hard=True)  # SIGKILL at once: no time for a periodic fsync
        assert await store.persistent_clients() == [_client("a", offline_since=1722000000.5)]  # same object
        assert await store.offline_records("1", "a") == [(ids[1], 5, 1722000002.0, {"n": 2})]
        later = await store.add_offline_records([("1", "a", 2, 1722000003.0, "{}")])
        assert later[0] > ids[1]  # the stream's last id came back too: ids keep growing
    finally:
        await store.close()


async def _fails_fast(call: Any) -> float:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await call
    return time.monotonic() - started


async def test_unreachable_redis_fails_fast_and_the_store_reconnects(fresh_redis: RedisServer) -> None:
    store = RedisQueueStore.from_url(fresh_redis.url, connect_timeout=1.0, timeout=1.0)
    counter = RedisWindowCounter(store.redis, "messages", 5, 3600.0)
    try:
        await store.put_persistent(_client("a"))
        assert await counter.hit("1")
        fresh_redis.kill()
        calls = [store.put_persistent(_client("b")), store.set_offline_since("1", "a", 1.0),
                 store.forget_persistent("1", "a"), store.persistent_clients(),
                 store.add_offline_records([("1", "a", 2, 1.0, "{}")]), store.offline_records("1", "a"),
                 store.delete_offline_records([("1", "a", 1)]),
                 store.prune(now=time.time(), job_retention=1, offline_max_age=1),
                 counter.hit("1"), counter.count("1"), counter.over("1"), counter.reset("1")]
        for call in calls:
            assert await _fails_fast(call) < 2.0
        fresh_redis.start()
        assert await store.persistent_clients() == [_client("a")]  # the same objects, working again
        assert await store.add_offline_records([("1", "a", 2, 1.0, "{}")])
        assert await counter.count("1") > 0.99  # the hit before the kill was kept (appendfsync always)
    finally:
        await store.close()


async def test_a_redis_that_accepts_no_connection_times_out() -> None:
    """A listening socket whose backlog is full: connects hang rather than being refused, so it is the
    connect timeout that ends the call."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue: further connects get no SYN-ACK
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        store = RedisQueueStore.from_url(f"redis://127.0.0.1:{port}/0", connect_timeout=0.5, timeout=0.5)
        try:
            assert await _fails_fast(store.persistent_clients()) < 2.0
        finally:
            await store.close()
    finally:
        for s in fillers:
            s.close()
        listener.close()


# --- rate counters shared by replicas -------------------------------------------------------------------


@pytest.fixture
async def two_replicas(redis_server: RedisServer) -> AsyncIterator[tuple[RedisQueueStore, RedisQueueStore]]:
    """Two stores with connections of their own, as two servers would have."""
    with redis_server.client() as r:
        r.flushall()
    a, b = RedisQueueStore.from_url(redis_server.url), RedisQueueStore.from_url(redis_server.url)
    yield a, b
    await a.close()
    await b.close()


async def test_replicas_count_one_limit_together(two_replicas: tuple[RedisQueueStore, RedisQueueStore]) -> None:
    a, b = (store.counters()("messages", 10, 60.0) for store in two_replicas)
    other_name = two_replicas[0].counters()("job_updates", 10, 60.0)
    results = [await (a if i % 2 else b).hit("user-1") for i in range(12)]
    assert results == [True] * 10 + [False] * 2
    assert await a.count("user-1") == await b.count("user-1") == 12.0
    assert await a.over("user-1") and await b.over("user-1")
    assert await a.hit("user-2")  # per key
    assert await other_name.count("user-1") == 0.0  # per name
    await b.reset("user-1")
    assert await a.count("user-1") == 0.0 and not await a.over("user-1")
    assert 1 <= a.retry_after() <= 60


async def test_the_sliding_estimate_matches_the_in_process_counter(
        two_replicas: tuple[RedisQueueStore, RedisQueueStore], monkeypatch: pytest.MonkeyPatch) -> None:
    """Both counters on the wall clock (the in-process one normally counts on the monotonic one), so their
    slots coincide. With no hit in between, the estimate only falls as time passes: Redis's must lie between
    the in-process one just before and just after it (give or take Redis's whole milliseconds)."""
    monkeypatch.setattr(counters, "time", SimpleNamespace(monotonic=time.time))
    window = 1.0
    a, b = (store.counters()("messages", 8, window) for store in two_replicas)
    local = WindowCounter(8, window)

    async def agree() -> float:
        before = await local.count("u")
        shared = await a.count("u")
        after = await local.count("u")
        assert after - 0.01 <= shared <= before + 0.01, (after, shared, before)
        return shared

    while time.time() % window > 0.2:  # start early in a slot, so that the hits below share it
        await asyncio.sleep(0.02)
    for i in range(6):
        assert await (a if i % 2 else b).hit("u") and await local.hit("u")
    assert await agree() == 6.0
    await asyncio.sleep(window - time.time() % window + 0.3)  # 0.3 s into the next slot
    assert 6 * 0.6 < await agree() < 6 * 0.75  # the previous slot, weighted by what of it still overlaps
    for _ in range(4):
        assert await b.hit("u") == await local.hit("u")
        await agree()
        await asyncio.sleep(0.1)
    await asyncio.sleep(2 * window)  # two slots on: everything forgotten
    assert await agree() == 0.0


async def test_a_guesser_is_throttled_across_replicas(two_replicas: tuple[RedisQueueStore, RedisQueueStore]) -> None:
    one, two = (LoginThrottle(per_address_and_user=3, per_address=100, per_user=100, max_delay=1.0,
                              counter=store.counters()) for store in two_replicas)
    for throttle in (one, two, one):
        assert await throttle.refused("10.0.0.9", "alice") is None
        await throttle.failed("10.0.0.9", "alice")
    assert await two.refused("10.0.0.9", "alice") is not None  # three failures, seen by two replicas
    assert await one.refused("10.0.0.8", "alice") is None
    await one.succeeded("10.0.0.9", "alice")
    assert await two.refused("10.0.0.9", "alice") is None


# --- the cluster's own prune: persistent clients no replica holds ---------------------------------------


@pytest.mark.services
async def test_persistent_clients_nobody_holds_age_out_of_the_directory(redis_server: RedisServer) -> None:
    with redis_server.client() as r:
        r.flushall()
    queue = RedisQueueStore.from_url(redis_server.url, prefix="prune:")
    cluster = RedisCluster(redis_server.url, "r-prune", queue, prefix="prune:", persistent_max_offline=60.0)
    now = time.time()

    def entry(uuid: str, *, persistent: bool = True, offline_since: float | None, replica: str | None = None) -> str:
        info = ClientInfo(uuid, "1", "render", persistent, [], None, None, online=False, offline_since=offline_since,
                          replica=replica)
        return json.dumps(info.snapshot())

    try:
        for uuid, since in (("old", now - 3600), ("recent", now - 5)):
            await queue.put_persistent(_client(uuid, offline_since=since))
            await queue.add_offline_records([("1", uuid, 6, since, json.dumps({"n": uuid}))])
        with redis_server.client() as r:
            r.sadd("prune:users", "1")
            r.hset("prune:dir:1", mapping={"old": entry("old", offline_since=now - 3600),
                                           "recent": entry("recent", offline_since=now - 5),
                                           "held": entry("held", offline_since=now - 3600, replica="r-prune")})
        assert await cluster.prune(now=time.time(), job_retention=1.0, offline_max_age=1e9) == {"persistent_clients": 1}
        with redis_server.client() as r:
            assert sorted(k.decode() for k in r.hkeys("prune:dir:1")) == ["held", "recent"]  # a holder ages out its own
        assert await queue.offline_records("1", "old") == []
        assert len(await queue.offline_records("1", "recent")) == 1
        assert {c.uuid for c in await queue.persistent_clients()} == {"recent"}
    finally:
        await cluster.stop()
        await queue.close()


@pytest.mark.services
async def test_a_hit_then_publish_sends_only_within_the_limit(redis_server: RedisServer) -> None:
    queue = RedisQueueStore.from_url(redis_server.url, prefix="then-publish:")
    counter = queue.counters()("job_updates", 2, 60.0)
    assert isinstance(counter, RedisWindowCounter)
    listener = redis_server.client()
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("then-publish:to:r1")
    try:
        outcomes = [await counter.hit_then_publish("7", "then-publish:to:r1", f"update {n}") for n in range(3)]
        assert outcomes == [(True, 1), (True, 1), (False, 0)]  # the refused one is counted, never sent
        heard = []
        deadline = time.monotonic() + 5
        while len(heard) < 2 and time.monotonic() < deadline:
            if (message := pubsub.get_message(timeout=0.2)) is not None:
                heard.append(message["data"])
        assert heard == [b"update 0", b"update 1"] and pubsub.get_message(timeout=0.3) is None
        assert await counter.count("7") == 3 and not await counter.hit("7")
    finally:
        pubsub.close()
        listener.close()
        await queue.close()
