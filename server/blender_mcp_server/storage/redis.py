"""The live bus state of replicas, in Redis: persistent clients, their queued records, and rate counts.

Several servers share one bus; what one of them reported `queued` must survive the restart of any of
them, and a rate limit must count across all of them as it would on one server. Redis holds both: one
round trip for each frequent call (a record queued, a rate hit), nothing kept in a replica between calls.

Keys, all under `prefix` (default `bmcp:`), with `member` = user id NUL uuid (printable ids hold no NUL):

- `clients` (hash): member -> the client's description (JSON); `offline_since` (hash): member -> a float;
- `q:<member>` (stream): the client's queued records, oldest first, each one field `r`: priority, created
  and the record's JSON joined by spaces (one field, not three: a long queue read back 2-3x faster in
  bench/bench_store.py, parsing the reply being most of the cost); `queues` (set): the members with a stream, for `prune`;
- `rate:<name>:<key>` (hash): slot number -> events counted in that slot (`RedisWindowCounter`).

Record ids are the stream entry ids packed into one int, `ms * 1_000_000 + seq` ("1722000000123-5" is
1722000000123000005): reversible, growing within a queue like SQLite's rowids, and int64-sized until the
year 2262. The seq part is below a million in practice: it counts entries added to one stream within one
millisecond. Ids are unique per queue only, so deleting names the queue: (user_id, uuid, id).

Redis that cannot be reached makes every call raise `StoreUnavailable` within `connect_timeout` (a
connect that hangs) or `timeout` (a reply that does not come); a refused connection fails at once. The
client reconnects by itself once Redis is back. A *timeout* on a write is the one case where the write
may still have been applied: a repeated record is dropped by its receiver (message_id), a repeated rate
hit counts one event twice.

One Redis (or a primary behind Sentinel) is assumed, not a Cluster: a transaction spans several keys.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .records import PersistentClient, StoreError, StoreUnavailable

_SEQ = 1_000_000  # stream id ms-seq <-> ms * _SEQ + seq


def connect(url: str, *, connect_timeout: float = 1.0, timeout: float = 1.0, retries: int = 1,
            max_connections: int = 64) -> aioredis.Redis:
    """A Redis client that fails fast: `connect_timeout` / `timeout` seconds per attempt, `retries` more
    attempts on a broken connection only (after a Redis restart the pooled connections are dead: one retry
    on a fresh one hides that), at most `max_connections` at once (a call waits up to `timeout` for one)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout, socket_connect_timeout=connect_timeout,
        socket_timeout=timeout, retry=retry_on_broken_connection(retries), decode_responses=True,
        health_check_interval=30)
    return aioredis.Redis(connection_pool=pool)


def retry_on_broken_connection(retries: int = 1) -> Retry:
    """The command clients' retry policy (the store's and the cluster's; the cluster's pub/sub listener
    takes none, see RedisCluster): `retries` more attempts on a broken connection, none on a timeout.

    After a Redis restart every pooled connection is dead, and without a retry each one fails the first
    call made on it. Timeouts are not retried: the command may have run, and a retried XADD would keep a
    record twice."""
    return Retry(NoBackoff(), retries, supported_errors=(RedisConnectionError,))


@asynccontextmanager
async def _reaching(what: str) -> AsyncIterator[None]:
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable(f"Redis is unreachable ({what}): {exc}") from exc
    except RedisError as exc:
        raise StoreError(f"Redis refused {what}: {exc}") from exc


def _to_int(stream_id: str) -> int:
    ms, seq = stream_id.split("-")
    if int(seq) >= _SEQ:
        raise StoreError(f"stream id {stream_id} does not pack into an int id")
    return int(ms) * _SEQ + int(seq)


def _to_stream_id(record_id: int) -> str:
    return f"{record_id // _SEQ}-{record_id % _SEQ}"


# Only while the client is still kept: a late write from a replica must not bring back a forgotten one.
_SET_OFFLINE_SINCE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] == '' then redis.call('HDEL', KEYS[2], ARGV[1]) else redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
return 1
"""

# A queue emptied by age goes with its key and its set member, in one step: an XADD cannot slip in between.
_PRUNE_QUEUE = """
local n = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
if redis.call('XLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[2])
end
return n
"""


class RedisQueueStore:
    """`QueueStore` and `Prunable` on Redis: see the module's docstring for the keys and the ids.

    `page`: how many entries one XRANGE / SSCAN fetches, so a long queue is read in several short
    commands rather than one that holds Redis up."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "bmcp:", page: int = 1000):
        self.redis = redis
        self.prefix = prefix
        self.page = page
        self._clients = f"{prefix}clients"
        self._offline = f"{prefix}offline_since"
        self._queues = f"{prefix}queues"
        self._set_offline_since = redis.register_script(_SET_OFFLINE_SINCE)
        self._prune_queue = redis.register_script(_PRUNE_QUEUE)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "bmcp:", page: int = 1000, connect_timeout: float = 1.0,
                 timeout: float = 1.0, retries: int = 1, max_connections: int = 64) -> RedisQueueStore:
        return cls(connect(url, connect_timeout=connect_timeout, timeout=timeout, retries=retries,
                           max_connections=max_connections), prefix=prefix, page=page)

    def counters(self) -> RedisCounters:
        """A `CounterFactory` on this store's connection and prefix."""
        return RedisCounters(self.redis, prefix=self.prefix)

    async def close(self) -> None:
        await self.redis.aclose()

    def _queue(self, member: str) -> str:
        return f"{self.prefix}q:{member}"

    # -- persistent clients ---------------------------------------------------------------------------
    async def put_persistent(self, client: PersistentClient) -> None:
        member = f"{client.user_id}\0{client.uuid}"
        description = json.dumps({"type": client.client_type, "capabilities": client.capabilities,
                                  "group_id": client.group_id, "label": client.label}, separators=(",", ":"))
        async with _reaching("put_persistent"), self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._clients, member, description)
            if client.offline_since is None:
                pipe.hdel(self._offline, member)
            else:
                pipe.hset(self._offline, member, repr(client.offline_since))
            await pipe.execute()

    async def set_offline_since(self, user_id: str, uuid: str, offline_since: float | None) -> None:
        async with _reaching("set_offline_since"):
            await self._set_offline_since(keys=[self._clients, self._offline],
                                          args=[f"{user_id}\0{uuid}",
                                                "" if offline_since is None else repr(offline_since)])

    async def forget_persistent(self, user_id: str, uuid: str) -> None:
        member = f"{user_id}\0{uuid}"
        async with _reaching("forget_persistent"), self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._clients, member)
            pipe.hdel(self._offline, member)
            pipe.delete(self._queue(member))
            pipe.srem(self._queues, member)
            await pipe.execute()

    async def persistent_clients(self) -> list[PersistentClient]:
        async with _reaching("persistent_clients"), self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._clients)
            pipe.hgetall(self._offline)
            described, offline = await pipe.execute()
        kept = []
        for member, text in described.items():
            user_id, uuid = member.split("\0", 1)
            d = json.loads(text)
            since = offline.get(member)
            kept.append(PersistentClient(user_id, uuid, d["type"], d["capabilities"], d["group_id"], d["label"],
                                         None if since is None else float(since)))
        return kept

    # -- queued records -------------------------------------------------------------------------------
    async def add_offline_records(self, rows: list[tuple[str, str, int, float, str]]) -> list[int]:
        if not rows:
            return []
        async with _reaching("add_offline_records"), self.redis.pipeline(transaction=True) as pipe:
            members = []
            for user_id, uuid, priority, created, data in rows:
                member = f"{user_id}\0{uuid}"
                members.append(member)
                pipe.xadd(self._queue(member), {"r": f"{int(priority)} {created!r} {data}"})
            pipe.sadd(self._queues, *set(members))
            replies = await pipe.execute()
        return [_to_int(stream_id) for stream_id in replies[:len(rows)]]

    async def offline_records(self, user_id: str, uuid: str) -> list[tuple[int, int, float, dict[str, Any]]]:
        key = self._queue(f"{user_id}\0{uuid}")
        records: list[tuple[int, int, float, dict[str, Any]]] = []
        start = "-"
        async with _reaching("offline_records"):
            while True:
                entries = await self.redis.xrange(key, min=start, max="+", count=self.page)
                for sid, fields in entries:
                    priority, created, data = fields["r"].split(" ", 2)
                    records.append((_to_int(sid), int(priority), float(created), json.loads(data)))
                if len(entries) < self.page:
                    return records
                start = "(" + entries[-1][0]  # exclusive: after the last one read

    async def delete_offline_records(self, ids: list[tuple[str, str, int]]) -> None:
        by_queue: dict[str, list[str]] = {}
        for user_id, uuid, record_id in ids:
            by_queue.setdefault(self._queue(f"{user_id}\0{uuid}"), []).append(_to_stream_id(record_id))
        if not by_queue:
            return
        async with _reaching("delete_offline_records"), self.redis.pipeline(transaction=True) as pipe:
            for key, stream_ids in by_queue.items():
                pipe.xdel(key, *stream_ids)
            await pipe.execute()

    # -- housekeeping ---------------------------------------------------------------------------------
    async def prune(self, *, now: float, job_retention: float, offline_max_age: float) -> dict[str, int]:
        """Drop records queued longer than `offline_max_age`. A record's age is its stream id's, the time
        on Redis's clock when it was added: its `created` within the clock difference between the replica
        that added it and Redis. Jobs and tokens are not kept here."""
        min_id = f"{max(0, int((now - offline_max_age) * 1000))}-0"
        pruned = 0
        async with _reaching("prune"):
            async for member in self.redis.sscan_iter(self._queues, count=self.page):
                pruned += int(await self._prune_queue(keys=[self._queue(member), self._queues],
                                                      args=[min_id, member]))
        return {"offline_records": pruned}


# One event (ARGV[2] = 1) or none (0) for KEYS[1] in the window of ARGV[1] ms, on Redis's clock, so that
# every replica counts in the same slots. Returns this slot's count, the previous slot's, and how far (ms)
# into this slot Redis is: the caller weighs the previous one with that, as WindowCounter does.
_COUNT = """
local window = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local slot = math.floor(now / window)
local this = string.format('%.0f', slot)
local current = tonumber(redis.call('HGET', KEYS[1], this) or '0')
local previous = tonumber(redis.call('HGET', KEYS[1], string.format('%.0f', slot - 1)) or '0')
if tonumber(ARGV[2]) > 0 then
  current = redis.call('HINCRBY', KEYS[1], this, ARGV[2])
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if tonumber(field) < slot - 1 then redis.call('HDEL', KEYS[1], field) end
  end
  redis.call('PEXPIRE', KEYS[1], 2 * window)
end
"""
_RATE = _COUNT + "return {current, previous, now - slot * window}\n"
# A hit that, when the estimate stays within the limit (ARGV[3]), also publishes ARGV[5] on ARGV[4]: a job
# update for a call waiting on another replica costs one round trip, and a refused one is never sent.
_RATE_THEN_PUBLISH = _COUNT + """
if current + previous * (1.0 - (now - slot * window) / window) <= tonumber(ARGV[3]) then
  return {1, redis.call('PUBLISH', ARGV[4], ARGV[5])}
end
return {0, 0}
"""


class RedisWindowCounter:
    """A `RateCounter` whose counts live in Redis: every replica's counter of one `name` counts together.

    The same sliding estimate as `WindowCounter` (this slot plus the previous one weighted by how much of
    it the window still overlaps), computed in one atomic script per call; the slots are Redis's wall
    clock's, so they line up across replicas. `retry_after` reads this machine's clock (it is advice)."""

    def __init__(self, redis: aioredis.Redis, name: str, limit: int, window: float = 60.0, *,
                 prefix: str = "bmcp:"):
        self.limit = limit
        self.window = window
        self._window_ms = max(1, round(window * 1000))
        self._key = f"{prefix}rate:{name}:"
        self._script = redis.register_script(_RATE)
        self._then_publish = redis.register_script(_RATE_THEN_PUBLISH)
        self._redis = redis

    async def _run(self, key: str, add: int) -> float:
        async with _reaching("a rate count"):
            current, previous, into = await self._script(keys=[self._key + key], args=[self._window_ms, add])
        return int(current) + int(previous) * (1.0 - int(into) / self._window_ms)

    async def hit(self, key: str) -> bool:
        return await self._run(key, 1) <= self.limit

    async def count(self, key: str) -> float:
        return await self._run(key, 0)

    async def hit_then_publish(self, key: str, channel: str, message: str) -> tuple[bool, int]:
        """`hit(key)` and, only when it is within the limit, PUBLISH `message` on `channel`, in one atomic
        script: (within the limit, how many subscribers heard it)."""
        async with _reaching("a rate count"):
            allowed, heard = await self._then_publish(keys=[self._key + key],
                                                      args=[self._window_ms, 1, self.limit, channel, message])
        return bool(int(allowed)), int(heard)

    async def over(self, key: str) -> bool:
        # Rounded up: just past a slot boundary the previous slot's weight is a hair under 1, and a burst
        # that reached the limit a second ago must still be over it (it is, without the boundary).
        return math.ceil(await self.count(key) - 1e-9) >= self.limit

    async def reset(self, key: str) -> None:
        async with _reaching("a rate reset"):
            await self._redis.delete(self._key + key)

    def retry_after(self) -> int:
        return max(1, int(self.window - time.time() % self.window))


class RedisCounters:
    """A `CounterFactory` (storage/counters.py) making `RedisWindowCounter`s on one connection and prefix."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "bmcp:"):
        self.redis = redis
        self.prefix = prefix

    def __call__(self, name: str, limit: int, window: float) -> RedisWindowCounter:
        return RedisWindowCounter(self.redis, name, limit, window, prefix=self.prefix)
