"""Replicas sharing one bus through Redis: the directory of every replica's clients, and their mail.

Keys (under `prefix`, default `bmcp:`):
- `replicas`: a sorted set, each live replica scored with the time its liveness expires; every replica
  renews its own each `beat` seconds and reads everyone's. A replica whose score has passed is gone.
- `dir:<user>`: a hash, client uuid -> the client's `ClientInfo` snapshot (JSON), written by the replica
  holding its session. Writes are compare-and-set on the holder (Lua), so a replica that lost a client
  to another can never write it back.
- `users`: the set of users with directory entries, for the sweep of gone replicas.
- `dirs`: a pub/sub channel every replica listens on, naming the users whose directory changed in a way
  that matters to routing (a client came, went, went on- or offline, changed its level or group; not a
  heartbeat's `last_seen`). Each replica caches each user's directory for `directory_cache` seconds, and
  drops a user's copy when told (or everyone's, when its subscription had to be made again), so a Style A
  call or a fan-out does not read the whole hash each time. Listings read it fresh.
- `to:<replica>`: the pub/sub channel each replica listens on: records for clients it holds, job updates
  for Style A calls waiting on it, "let go" when a client registered elsewhere, "queue grew" when another
  replica kept records for a client it holds offline.
- `wait:<user>:<job>`: the replica where a Style A call waits for that job (expires with the call). The
  record that carries the job to its Blender names that replica too, so the Blender's replica forwards the
  job's updates without reading the key; it reads it only when the Blender moved replicas mid-job.

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
from collections import OrderedDict
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from blender_mcp_addon.protocol import FINAL_JOB_STATUSES

from .counters import RateCounter
from .protocols import QueueStore
from .records import ClientInfo, StoreUnavailable
from .redis import RedisWindowCounter, retry_on_broken_connection

log = logging.getLogger(__name__)
_WAITS_KEPT = 65_536  # jobs whose waiting replica is remembered here (see RedisCluster._waits)
_USERS_CACHED = 4_096  # users whose directory a replica keeps a copy of (the least recently read go first)
# A snapshot's fields that change without mattering to routing: a change of only these tells no one.
_CHURN = ("last_seen", "queued")

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
                 ttl: float = 3.0, sweep_every: float = 5.0, timeout: float = 2.0, directory_cache: float = 1.0,
                 persistent_max_offline: float | None = None):
        self.replica = replica
        self.prefix = prefix
        self.beat, self.ttl, self.sweep_every = beat, ttl, sweep_every
        self._queue = queue
        self._redis = aioredis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                              retry=retry_on_broken_connection(), health_check_interval=30)
        # The listener's own client never reconnects by itself: redis-py's pub/sub would resubscribe
        # silently, and whatever was published meanwhile (a let-go, a queue that grew) would be lost
        # unnoticed. Every reconnect goes through _listen_forever, which then checks what it missed.
        self._listener = aioredis.Redis.from_url(url, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
                                                 health_check_interval=30)
        self._set_if_mine = self._redis.register_script(_SET_IF_MINE)
        self._replace_if_same = self._redis.register_script(_REPLACE_IF_SAME)
        self._live: dict[str, float] = {}  # replica -> when its liveness expires (read each beat)
        self._resync_wanted = False  # a check after a lapse failed (Redis away): the next beat starts it again
        self._lapse_resync: asyncio.Task | None = None
        # Every replica seen alive since the sweep last tidied after it -> when its liveness was last to
        # expire: one that lived and died between two sweeps is still swept, and its clients' offline time
        # is when it went, not the time each read happens to look.
        self._seen: dict[str, float] = {}
        self._pending: dict[tuple[str, str], str] = {}  # directory writes not yet made: snapshot JSON or ""
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._inbox: Any = None
        self.persistent_max_offline = persistent_max_offline
        # Style A calls waiting here for jobs whose Blender another replica holds -> that replica, once the
        # job's record went to it (None: not yet, or its final update came, so the holder forgot the job).
        self._expecting: dict[tuple[str, str], str | None] = {}
        # Jobs of Blenders held here whose calls wait on another replica -> that replica (learnt from the
        # job's record; a cache in front of the wait: keys, so its bound only costs a read when it is full).
        self._waits: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._background: set[asyncio.Task] = set()
        # user -> (when read, its directory hash as read); `_generation` moves on each "dirs" message, and a
        # read begun before it is not kept (it may predate the change the message announces)
        self.directory_cache = directory_cache
        self._directories: OrderedDict[str, tuple[float, dict[bytes, bytes]]] = OrderedDict()
        self._generation = 0
        self._shapes: dict[tuple[str, str], str] = {}  # what each client held here last looked like to routing
        self._changed: set[str] = set()  # users whose routing-relevant directory changed, not yet announced

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
        resync = [self._lapse_resync] if self._lapse_resync is not None else []
        for task in (*self._tasks, *resync):
            task.cancel()
        await asyncio.gather(*self._tasks, *resync, *self._background, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self._flush_directory()
            await self._redis.zrem(self._key("replicas"), self.replica)
        await self._redis.aclose()
        await self._listener.aclose()

    def alive(self, replica: str | None) -> bool:
        return replica is not None and (replica == self.replica or self._live.get(replica, 0.0) > time.time())

    async def _beat_once(self) -> None:
        now = time.time()
        # This replica's own liveness as the last beat read it back (none before the first). Passed, the
        # others took this replica for gone meanwhile: their sweeps may have taken its clients over, and a
        # claim elsewhere may have skipped telling it.
        expired = self._live.get(self.replica)
        lapsed = expired is not None and expired <= now
        key = self._key("replicas")
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {self.replica: now + self.ttl})
            pipe.zremrangebyscore(key, "-inf", now - 3600)
            pipe.zrangebyscore(key, now, "+inf", withscores=True)
            *_, live = await self._call(pipe.execute())
        self._live = {(r.decode() if isinstance(r, bytes) else r): float(score) for r, score in live}
        self._seen.update(self._live)
        if lapsed or self._resync_wanted:
            self._resync_soon()

    def _resync_soon(self) -> None:
        """Run `_resync` beside the beats (one with thousands of clients to check must not delay the next
        beat past the TTL, which would make this replica look gone again); one at a time, retried at the
        next beat while Redis is away."""
        if self._lapse_resync is not None and not self._lapse_resync.done():
            self._resync_wanted = True  # it may have read the directory before this lapse's sweeps
            return
        self._resync_wanted = False
        log.warning("cluster: this replica's liveness had lapsed; checking what it holds against the directory")

        async def resync() -> None:
            try:
                await self._resync()
            except StoreUnavailable as exc:
                self._resync_wanted = True
                log.warning("cluster: the check after a lapse waits for Redis: %s", exc)
            except Exception:  # noqa: BLE001 - logged here: nobody awaits this task
                log.exception("cluster: the check after a lapse failed")

        self._lapse_resync = asyncio.get_running_loop().create_task(resync(), name="cluster-lapse-resync")

    async def _beat_forever(self) -> None:
        while True:
            await asyncio.sleep(self.beat)
            try:
                await self._beat_once()
            except StoreUnavailable as exc:
                log.warning("cluster: cannot renew this replica's liveness: %s", exc)

    # -- the directory --------------------------------------------------------------------------------
    def note(self, info: ClientInfo) -> None:
        snapshot = info.snapshot() | {"replica": self.replica}
        self._pending[(info.user_id, info.uuid)] = _dumps(snapshot)
        shape = _dumps({k: v for k, v in snapshot.items() if k not in _CHURN})
        if self._shapes.get((info.user_id, info.uuid)) != shape:
            self._shapes[(info.user_id, info.uuid)] = shape
            self._changed.add(info.user_id)
        self._wake.set()

    def note_gone(self, user_id: str, uuid: str) -> None:
        self._pending[(user_id, uuid)] = ""
        self._shapes.pop((user_id, uuid), None)
        self._changed.add(user_id)
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
            changed, self._changed = self._changed, set()
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for (user_id, uuid), value in batch.items():
                        await self._set_if_mine(keys=[self._key("dir", user_id)], args=[uuid, self.replica, value],
                                                client=pipe)
                    if changed:  # after the writes, in the same pipeline: whoever hears it reads them
                        pipe.publish(self._key("dirs"), _dumps({"k": "dir", "u": sorted(changed)}))
                    await self._call(pipe.execute())
            except StoreUnavailable:
                for key, value in batch.items():  # newer states noted meanwhile win
                    self._pending.setdefault(key, value)
                self._changed |= changed
                raise

    async def claim(self, info: ClientInfo) -> None:
        key = self._key("dir", info.user_id)
        self._pending.pop((info.user_id, info.uuid), None)
        snapshot = info.snapshot() | {"replica": self.replica}
        self._shapes[(info.user_id, info.uuid)] = _dumps({k: v for k, v in snapshot.items() if k not in _CHURN})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hget(key, info.uuid)
            pipe.hset(key, info.uuid, _dumps(snapshot))
            pipe.sadd(self._key("users"), info.user_id)
            pipe.publish(self._key("dirs"), _dumps({"k": "dir", "u": [info.user_id]}))
            before, *_ = await self._call(pipe.execute())
        held_by = json.loads(before).get("replica") if before else None
        # Told even when it looks gone: a replica this one took for gone (its beats missed while Redis was
        # away, or it stalled) may be alive and still hold the client. Its listener either hears this or,
        # subscribing after the write above, finds the new holder in its resync.
        if held_by and held_by != self.replica:
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
                info.offline_since = self._live.get(info.replica) or self._seen.get(info.replica) or time.time()
            info.online, info.offline_reason, info.replica = False, "its server replica went away", None
        return info

    async def lookup(self, user_id: str, uuid: str) -> ClientInfo | None:
        raw = await self._call(self._redis.hget(self._key("dir", user_id), uuid))
        info = self._view(raw) if raw else None
        return None if info is None or info.replica == self.replica else info

    async def others(self, user_id: str, *, fresh: bool = False) -> list[ClientInfo]:
        entries = await self._directory(user_id, fresh)
        views = (self._view(raw) for raw in entries.values())
        return [info for info in views if info is not None and info.replica != self.replica]

    async def _directory(self, user_id: str, fresh: bool) -> dict[bytes, bytes]:
        """The user's directory hash: this replica's copy while it is young enough, else read (and kept)."""
        now = time.monotonic()
        cached = self._directories.get(user_id)
        if not fresh and cached is not None and now - cached[0] < self.directory_cache:
            self._directories.move_to_end(user_id)
            return cached[1]
        generation = self._generation
        entries = await self._call(self._redis.hgetall(self._key("dir", user_id)))
        if self.directory_cache > 0 and generation == self._generation:
            self._directories[user_id] = (now, entries)
            self._directories.move_to_end(user_id)
            while len(self._directories) > _USERS_CACHED:
                self._directories.popitem(last=False)
        return entries

    def _forget_directories(self, users: list[str] | None) -> None:
        """Drop the copies of these users' directories (None: everyone's)."""
        self._generation += 1
        if users is None:
            self._directories.clear()
        for user_id in users or ():
            self._directories.pop(user_id, None)

    async def uuids(self, user_id: str) -> frozenset[str]:
        """Every uuid in the user's directory hash (the names only: a registration must not read every
        snapshot; an ephemeral client of a replica that went away counts until the sweep drops it)."""
        names = await self._call(self._redis.hkeys(self._key("dir", user_id)))
        return frozenset(uuid.decode() if isinstance(uuid, bytes) else uuid for uuid in names)

    async def _sweep_forever(self) -> None:
        """Tidy the directory after replicas that went away (every replica does; the writes are
        compare-and-set, so they agree)."""
        while True:
            await asyncio.sleep(self.sweep_every)
            gone = [r for r in self._seen if not self.alive(r)]
            if not gone:
                continue  # reading every directory entry costs Redis ~0.5 MB/s at 3,000 clients: only after a loss
            try:
                await self._tidy(lambda held_by: not self.alive(held_by))
            except (StoreUnavailable, RedisError, OSError) as exc:
                log.warning("cluster: sweep of gone replicas skipped (next time): %s", exc)
                continue
            for replica in gone:
                self._seen.pop(replica, None)

    async def prune(self, *, now: float, job_retention: float, offline_max_age: float) -> dict[str, int]:
        """Persistent clients nobody holds, offline longer than `persistent_max_offline`, leave the bus with
        what was kept for them (a replica holding one ages it out itself; these are held by no replica).
        Every replica runs it (Liveness.prune); the removal is compare-and-set, so they agree."""
        if self.persistent_max_offline is None:
            return {}
        cutoff, left = now - self.persistent_max_offline, 0
        for user in await self._call(self._redis.smembers(self._key("users"))):
            user_id = user.decode() if isinstance(user, bytes) else user
            key = self._key("dir", user_id)
            for uuid, raw in (await self._call(self._redis.hgetall(key))).items():
                info = self._view(raw)
                if info is None or info.replica is not None or not info.is_persistent or info.online:
                    continue
                if (info.offline_since or now) < cutoff and await self._call(
                        self._replace_if_same(keys=[key], args=[uuid, raw, ""])):
                    await self._queue.forget_persistent(user_id, info.uuid)
                    self._changed.add(user_id)
                    left += 1
        if left:
            self._wake.set()  # the flush tells the other replicas' directory copies
        return {"persistent_clients": left}

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
        job = base.get("job_id")
        for replica, group in by_replica.items():
            message = {"k": "recs", "u": group[0].user_id, "p": priority, "b": base, "s": size,
                       "to": [[info.uuid, info.is_persistent] for info in group]}
            waiting = (group[0].user_id, job) if isinstance(job, str) else None
            if waiting in self._expecting:
                message["w"] = self.replica  # where the job's updates go
                self._expecting[waiting] = replica
            heard = await self._send(replica, message)
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
        self._expecting[(user_id, job_id)] = None
        await self._call(self._redis.set(self._key("wait", user_id, job_id), self.replica, ex=max(1, int(ttl))))

    def stop_expecting(self, user_id: str, job_id: str) -> None:
        """Off the caller's path: delete the wait: key and, unless the job's final update came, tell the
        Blender's replica to forget where the call waited (an update after the call ended is then answered
        as it would be on one server, not "delivered" to nobody)."""
        holder = self._expecting.pop((user_id, job_id), None)

        async def tidy() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.delete(self._key("wait", user_id, job_id))
                if holder is not None:
                    pipe.publish(self._key("to", holder), _dumps({"k": "unwait", "u": user_id, "j": job_id}))
                await pipe.execute()

        task = asyncio.get_running_loop().create_task(tidy())
        self._background.add(task)
        task.add_done_callback(self._tidied)

    def _tidied(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:  # the key expires by itself
            log.warning("cluster: a finished call's wait key was left to expire: %s", exc)

    async def forward_update(self, user_id: str, job_id: str, payload: dict[str, Any], rate: RateCounter) -> str:
        key = (user_id, job_id)
        final = payload.get("status") in FINAL_JOB_STATUSES
        replica = self._waits.pop(key, None) if final else self._waits.get(key)
        if replica is None:  # not learnt from the job's record: the Blender moved here mid-job, or it was evicted
            waits_on = await self._call(self._redis.get(self._key("wait", user_id, job_id)))
            replica = waits_on.decode() if isinstance(waits_on, bytes) else waits_on
        if not replica or replica == self.replica:
            return "nowhere" if await rate.hit(user_id) else "refused"
        message = _dumps({"k": "upd", "u": user_id, "j": job_id, "d": payload})
        if isinstance(rate, RedisWindowCounter):  # the count and the PUBLISH in one round trip
            allowed, heard = await rate.hit_then_publish(user_id, self._key("to", replica), message)
        else:
            allowed = await rate.hit(user_id)
            heard = int(await self._call(self._redis.publish(self._key("to", replica), message))) if allowed else 0
        if not allowed:
            return "refused"
        return "forwarded" if heard else "nowhere"

    async def _listen_forever(self) -> None:
        channels = self._key("to", self.replica), self._key("dirs")
        while True:
            pubsub = self._listener.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*channels)
                self._forget_directories(None)  # what was said while nobody listened is unknown
                await self._resync()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._arrived(json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, StoreUnavailable) as exc:
                log.warning("cluster: listening again after %s", exc)
                await asyncio.sleep(self.beat)
            except Exception:  # one bad message must not stop this replica's mail
                log.exception("cluster: a message could not be handled")
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _resync(self) -> None:
        """After the mail was down (or at start), make up for what may have been missed: a client this
        replica holds that registered elsewhere meanwhile is let go (the let-go message is lost); every
        other one is written again (a Redis restarted from its append-only file may have lost up to its
        last second of writes); and each persistent one loads what was kept for it meanwhile (offline or
        online: a record for a client of a replica that looked gone, or whose PUBLISH nobody heard, is kept,
        and the "grew" that would have said so went to nobody)."""
        by_user: dict[str, list[ClientInfo]] = {}
        for info in self._inbox.held():
            by_user.setdefault(info.user_id, []).append(info)
        if not by_user:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id, infos in by_user.items():
                pipe.hmget(self._key("dir", user_id), [info.uuid for info in infos])
            found = await self._call(pipe.execute())
        for (user_id, infos), raws in zip(by_user.items(), found, strict=True):
            for info, raw in zip(infos, raws, strict=True):
                held_by = json.loads(raw).get("replica") if raw else None
                if held_by is not None and held_by != self.replica:
                    await self._inbox.let_go(user_id, info.uuid)
                    continue
                self.note(info)
                if info.is_persistent:  # online ones too: a sender whose PUBLISH went unheard kept it instead
                    await self._inbox.queue_grew(user_id, info.uuid)

    async def _arrived(self, message: dict[str, Any]) -> None:
        kind, inbox = message.get("k"), self._inbox
        if kind == "dir":
            self._forget_directories([str(user) for user in message["u"]])
        elif kind == "recs":
            if isinstance(waits := message.get("w"), str) and isinstance(job := message["b"].get("job_id"), str):
                self._waits[(message["u"], job)] = waits
                while len(self._waits) > _WAITS_KEPT:
                    self._waits.popitem(last=False)
            await inbox.records_arrived(message["u"], int(message["p"]), message["b"], int(message["s"]),
                                        [(str(uuid), bool(persistent)) for uuid, persistent in message["to"]])
        elif kind == "upd":
            if (message["d"] or {}).get("status") in FINAL_JOB_STATUSES and (message["u"], message["j"]) in self._expecting:
                self._expecting[(message["u"], message["j"])] = None  # its holder forgot the job as it sent this
            inbox.update_arrived(message["u"], message["j"], message["d"])
        elif kind == "unwait":
            self._waits.pop((message["u"], message["j"]), None)
        elif kind == "let_go":
            self._shapes.pop((message["u"], message["t"]), None)
            await inbox.let_go(message["u"], message["t"])
        elif kind == "grew":
            for uuid in message["to"]:
                await inbox.queue_grew(message["u"], uuid)
