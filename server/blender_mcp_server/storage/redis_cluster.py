"""Replicas sharing one bus through Redis: the directory of every replica's clients, and their mail.

Keys (under `prefix`, default `bmcp:`):
- `replicas`: a sorted set, each live replica scored with the time its liveness expires; every replica
  renews its own each `beat` seconds and reads everyone's. A replica whose score has passed is gone.
- `dir:<user>`: a hash, client uuid -> the client's `ClientInfo` snapshot (JSON), written by the replica
  holding its session. Writes are compare-and-set on the holder (Lua), so a replica that lost a client
  to another can never write it back.
- `users`: the set of users with directory entries, for the sweep of gone replicas.
- `to:<replica>`: the pub/sub channel each replica listens on: records for clients it holds, job updates
  for Style A calls waiting on it, "let go" when a client registered elsewhere, "queue grew" when another
  replica kept records for a client it holds offline.
- `wait:<user>:<job>`: the replica where a Style A call waits for that job (expires with the call).

Pub/sub is at most once; "queued" is never reported for a record on it. A record for a persistent client
that is offline, or whose replica is gone, goes into the queue store (Redis streams, kept across
restarts) before the send is answered `queued`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .protocols import QueueStore
from .records import ClientInfo, StoreUnavailable

log = logging.getLogger(__name__)

# Write the client's snapshot unless another replica holds it now (a replica that was told to let go,
# or that was thought gone, must not write its old state over the new holder's).
_SET_IF_MINE = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local ok, d = pcall(cjson.decode, cur)
  if ok and d['replica'] ~= ARGV[2] and d['replica'] ~= cjson.null then return 0 end
end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1
"""
# Take a gone replica's client over for nobody (offline) or drop it (ephemeral), only if still the same.
_REPLACE_IF_SAME = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1
"""


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class RedisCluster:
    """The `bus.cluster.Cluster` of replicas sharing one Redis (see the module's docstring)."""

    shared = True

    def __init__(self, url: str, replica: str, queue: QueueStore, *, prefix: str = "bmcp:", beat: float = 1.0,
                 ttl: float = 3.0, sweep_every: float = 5.0, timeout: float = 2.0):
        self.replica = replica
        self.prefix = prefix
        self.beat, self.ttl, self.sweep_every = beat, ttl, sweep_every
        self._queue = queue
        self._redis = aioredis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                              retry_on_timeout=False, health_check_interval=30)
        self._set_if_mine = self._redis.register_script(_SET_IF_MINE)
        self._replace_if_same = self._redis.register_script(_REPLACE_IF_SAME)
        self._live: dict[str, float] = {}  # replica -> when its liveness expires (read each beat)
        self._pending: dict[tuple[str, str], str] = {}  # directory writes not yet made: snapshot JSON or ""
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._inbox: Any = None

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from None

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self, inbox: Any) -> None:
        self._inbox = inbox
        try:
            await self._beat_once()
            await self._tidy(lambda held_by: held_by == self.replica)
        except StoreUnavailable as exc:  # serve anyway: the beat and the listener keep trying
            log.warning("cluster: Redis is out of reach at start: %s", exc)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._beat_forever(), name="cluster-beat"),
                       loop.create_task(self._listen_forever(), name="cluster-listen"),
                       loop.create_task(self._write_forever(), name="cluster-directory"),
                       loop.create_task(self._sweep_forever(), name="cluster-sweep")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self._flush_directory()
            await self._redis.zrem(self._key("replicas"), self.replica)
        await self._redis.aclose()

    def alive(self, replica: str | None) -> bool:
        return replica is not None and (replica == self.replica or self._live.get(replica, 0.0) > time.time())

    async def _beat_once(self) -> None:
        now = time.time()
        key = self._key("replicas")
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {self.replica: now + self.ttl})
            pipe.zremrangebyscore(key, "-inf", now - 3600)
            pipe.zrangebyscore(key, now, "+inf", withscores=True)
            *_, live = await self._call(pipe.execute())
        self._live = {(r.decode() if isinstance(r, bytes) else r): float(score) for r, score in live}

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.beat)
            try:
                await self._beat_once()
            except StoreUnavailable as exc:
                log.warning("cluster: cannot renew this replica's liveness: %s", exc)

    # -- the directory --------------------------------------------------------------------------------
    def note(self, info: ClientInfo) -> None:
        self._pending[(info.user_id, info.uuid)] = _dumps(info.snapshot() | {"replica": self.replica})
        self._wake.set()

    def note_gone(self, user_id: str, uuid: str) -> None:
        self._pending[(user_id, uuid)] = ""
        self._wake.set()

    async def _write_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._flush_directory()
            except StoreUnavailable as exc:
                log.warning("cluster: directory writes wait for Redis: %s", exc)
                await asyncio.sleep(self.beat)
                self._wake.set()

    async def _flush_directory(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for (user_id, uuid), value in batch.items():
                        await self._set_if_mine(keys=[self._key("dir", user_id)], args=[uuid, self.replica, value],
                                                client=pipe)
                    await self._call(pipe.execute())
            except StoreUnavailable:
                for key, value in batch.items():  # newer states noted meanwhile win
                    self._pending.setdefault(key, value)
                raise

    async def claim(self, info: ClientInfo) -> None:
        key = self._key("dir", info.user_id)
        self._pending.pop((info.user_id, info.uuid), None)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(key, info.uuid)
            pipe.hset(key, info.uuid, _dumps(info.snapshot() | {"replica": self.replica}))
            pipe.sadd(self._key("users"), info.user_id)
            before, *_ = await self._call(pipe.execute())
        held_by = json.loads(before).get("replica") if before else None
        if held_by and held_by != self.replica and self.alive(held_by):
            await self._send(held_by, {"k": "let_go", "u": info.user_id, "t": info.uuid})

    def _view(self, raw: bytes | str) -> ClientInfo | None:
        """A directory entry as this replica should see it: a client of a gone replica is offline (a
        persistent one) or gone (an ephemeral one)."""
        try:
            info = ClientInfo.from_snapshot(json.loads(raw))
        except (ValueError, TypeError):
            return None
        if info.replica is not None and not self.alive(info.replica):
            if not info.is_persistent:
                return None
            if info.online or info.offline_since is None:
                info.offline_since = self._live.get(info.replica) or time.time()
            info.online, info.offline_reason, info.replica = False, "its server replica went away", None
        return info

    async def lookup(self, user_id: str, uuid: str) -> ClientInfo | None:
        raw = await self._call(self._redis.hget(self._key("dir", user_id), uuid))
        info = self._view(raw) if raw else None
        return None if info is None or info.replica == self.replica else info

    async def others(self, user_id: str) -> list[ClientInfo]:
        entries = await self._call(self._redis.hgetall(self._key("dir", user_id)))
        views = (self._view(raw) for raw in entries.values())
        return [info for info in views if info is not None and info.replica != self.replica]

    async def _sweep_forever(self) -> None:
        """Tidy the directory after replicas that went away (every replica does; the writes are
        compare-and-set, so they agree)."""
        seen: set[str] = set()
        while True:
            await asyncio.sleep(self.sweep_every)
            live = {r for r in self._live if self.alive(r)}
            gone, seen = seen - live, live
            if not gone:
                continue  # reading every directory entry costs Redis ~0.5 MB/s at 3,000 clients: only after a loss
            try:
                await self._tidy(lambda held_by: not self.alive(held_by))
            except (StoreUnavailable, RedisError, OSError) as exc:
                log.warning("cluster: sweep of gone replicas skipped: %s", exc)

    async def _tidy(self, gone: Any) -> None:
        """Entries held by replicas `gone(replica)` says are gone become offline (persistent) or leave (ephemeral).
        At start a replica tidies its own past: a restarted replica holds nobody yet."""
        for user in await self._call(self._redis.smembers(self._key("users"))):
            user_id = user.decode() if isinstance(user, bytes) else user
            key = self._key("dir", user_id)
            entries = await self._call(self._redis.hgetall(key))
            if not entries:
                await self._call(self._redis.srem(self._key("users"), user_id))
            for uuid, raw in entries.items():
                data = json.loads(raw)
                held_by = data.get("replica")
                if held_by is None or not gone(held_by):
                    continue
                info = ClientInfo.from_snapshot(data)
                after = ""
                if info.is_persistent:
                    info.online, info.replica, info.offline_reason = False, None, "its server replica went away"
                    info.offline_since = info.offline_since or time.time()
                    after = _dumps(info.snapshot())
                await self._call(self._replace_if_same(keys=[key], args=[uuid, raw, after]))

    # -- mail -----------------------------------------------------------------------------------------
    async def _send(self, replica: str, message: dict[str, Any]) -> int:
        return int(await self._call(self._redis.publish(self._key("to", replica), _dumps(message))))

    async def forward(self, clients: list[ClientInfo], priority: int, base: dict[str, Any], size: int) -> dict[str, str]:
        states: dict[str, str] = {}
        by_replica: dict[str, list[ClientInfo]] = {}
        keep: list[ClientInfo] = []
        for info in clients:
            if info.online and info.replica is not None and self.alive(info.replica):
                if priority > info.level:
                    states[info.uuid] = "filtered"
                else:
                    by_replica.setdefault(info.replica, []).append(info)
            elif info.is_persistent:
                keep.append(info)
            else:
                states[info.uuid] = "gone"
        for replica, group in by_replica.items():
            heard = await self._send(replica, {"k": "recs", "u": group[0].user_id, "p": priority, "b": base, "s": size,
                                               "to": [[info.uuid, info.is_persistent] for info in group]})
            for info in group:
                if heard:
                    states[info.uuid] = "sent"
                elif info.is_persistent:
                    keep.append(info)  # its replica went away this instant: keep it for its next session
                else:
                    states[info.uuid] = "gone"
        if keep:
            now = time.time()
            await self._queue.add_offline_records([(info.user_id, info.uuid, priority, now,
                                                    _dumps(dict(base, target_uuid=info.uuid))) for info in keep])
            holders: dict[str, list[str]] = {}
            for info in keep:
                states[info.uuid] = "queued"
                if info.replica is not None and self.alive(info.replica):
                    holders.setdefault(info.replica, []).append(info.uuid)
            for replica, uuids in holders.items():
                await self._send(replica, {"k": "grew", "u": keep[0].user_id, "to": uuids})
        return states

    async def expect_update(self, user_id: str, job_id: str, ttl: float) -> None:
        await self._call(self._redis.set(self._key("wait", user_id, job_id), self.replica, ex=max(1, int(ttl))))

    async def stop_expecting(self, user_id: str, job_id: str) -> None:
        await self._call(self._redis.delete(self._key("wait", user_id, job_id)))

    async def forward_update(self, user_id: str, job_id: str, payload: dict[str, Any]) -> bool:
        waits_on = await self._call(self._redis.get(self._key("wait", user_id, job_id)))
        replica = waits_on.decode() if isinstance(waits_on, bytes) else waits_on
        if not replica or replica == self.replica:
            return False
        return bool(await self._send(replica, {"k": "upd", "u": user_id, "j": job_id, "d": payload}))

    async def _listen_forever(self) -> None:
        channel = self._key("to", self.replica)
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._arrived(json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("cluster: listening again after %s", exc)
                await asyncio.sleep(self.beat)
            except Exception:  # one bad message must not stop this replica's mail
                log.exception("cluster: a message could not be handled")
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _arrived(self, message: dict[str, Any]) -> None:
        kind, inbox = message.get("k"), self._inbox
        if kind == "recs":
            await inbox.records_arrived(message["u"], int(message["p"]), message["b"], int(message["s"]),
                                        [(str(uuid), bool(persistent)) for uuid, persistent in message["to"]])
        elif kind == "upd":
            inbox.update_arrived(message["u"], message["j"], message["d"])
        elif kind == "let_go":
            await inbox.let_go(message["u"], message["t"])
        elif kind == "grew":
            for uuid in message["to"]:
                await inbox.queue_grew(message["u"], uuid)
