"""Replicas: Style A across replicas and through HAProxy, a broadcast over 3 replicas, what a record costs Redis.

    .venv/bin/python bench/bench_replicas.py [--quick] [--clients N] [--processes P]

Needs the bpy module and a built zip (as bench_dispatch.py), and Debian's redis-server, postgresql and
haproxy (tests/services.py runs them on loopback). Four parts, in one run so they can be read together:

1. `blender_get_scene_info {"limit": 10}`, sequential, from a plain fastmcp caller into a real headless
   Blender worker: (a) one server alone, (b) three replicas with the caller on replica 0 and Blender on
   replica 1, so every job and its answer cross Redis, (c) the caller through HAProxy. The three take
   turns in short chunks, so the VM's minute-to-minute swings fall on all of them alike.
2. A broadcast from replica 0 to N clients spread evenly over the 3 replicas (in child processes, as
   bench_scale.py), 5 rounds: time until every client had it.
3. What a record costs Redis (INFO commandstats, network bytes and Redis's own CPU, less the replicas'
   idle background measured just before): cross-replica direct sends, Style A jobs, broadcasts. Then the
   arithmetic of one Redis under many replicas, against what redis-benchmark gets from it here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from _common import idle_clients_child, pct, raise_fd_limit, report, run_bench, start_server
from blender_mcp_server.storage.redis import _RATE

from blender_mcp_addon.protocol.answers import read_answer
from tests.blender_worker import Worker
from tests.helpers import ServerProcess, bus_client, free_port, login, send, tool_json, wait_online
from tests.services import HAProxy, PostgresServer, RedisServer

SECRET = "bench-replicas-share-this-jwt-secret-0123456789"
REPLICAS = 3
BLENDER_REPLICA = 1  # the worker's replica; the caller sits on replica 0, so every job crosses
CALL = ("blender_get_scene_info", {"limit": 10})


# --- the services and the replicas ----------------------------------------------------------------------


def start_replicas(folder: Path, redis: RedisServer, database: PostgresServer, **env: str) -> list[ServerProcess]:
    """Three replicas as the README's reference deployment runs them: one Redis, one PostgreSQL, one secret."""
    servers = []
    for i in range(REPLICAS):
        data = folder / f"r{i}"
        data.mkdir(parents=True, exist_ok=True)
        servers.append(ServerProcess(data, free_port(), env={
            "BLENDER_MCP_REDIS": redis.url, "BLENDER_MCP_DATABASE": database.url,
            "BLENDER_MCP_REPLICA_ID": f"r{i}", "BLENDER_MCP_JWT_SECRET": SECRET, **env}))
    try:
        for server in servers:
            server.start()
    except BaseException:
        stop_all(servers)
        raise
    return servers


def stop_all(servers: list[ServerProcess]) -> None:
    for server in servers:
        server.stop()


def plain_client(base: str, token: str) -> Any:
    """A caller as an LLM host is one: fastmcp, no bus registration."""
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport

    return Client(StreamableHttpTransport(url=f"{base}/mcp", headers={"Authorization": f"Bearer {token}"}),
                  timeout=60)


def proxied_replica(proxy: HAProxy, session_id: str | None, ports: dict[int, int]) -> int | None:
    """Which replica HAProxy stuck this MCP session to: its stick table keys sessions by id, and the
    server ids are the backends' ports (tests/services.py)."""
    if not session_id:
        return None
    for line in proxy.runtime("show table replicas").splitlines():
        found = re.search(r"key=(\S+) .*server_id=(\d+)", line)
        if found and found.group(1) == session_id:
            return ports.get(int(found.group(2)))
    return None


# --- Redis metering ---------------------------------------------------------------------------------------


@dataclass
class Usage:
    """What Redis did over a window: calls per command, network bytes, its own CPU seconds."""

    seconds: float
    calls: dict[str, int] = field(default_factory=dict)
    bytes_in: int = 0
    bytes_out: int = 0
    cpu: float = 0.0

    def minus(self, background: Usage) -> Usage:
        """This window less the idle background's rate over the same length (never below zero)."""
        k = self.seconds / background.seconds
        calls = {name: max(0, round(n - background.calls.get(name, 0) * k)) for name, n in self.calls.items()}
        return Usage(self.seconds, {n: c for n, c in calls.items() if c}, max(0, round(self.bytes_in - background.bytes_in * k)),
                     max(0, round(self.bytes_out - background.bytes_out * k)), max(0.0, self.cpu - background.cpu * k))


# the meter's own commands, left out of every count
_METER = {"info", "config|resetstat"}


class Meter:
    """CONFIG RESETSTAT, then INFO around a window. The network counters include the meter's own INFO
    replies (a few KB a window), which the background window carries too, so subtracting it removes them."""

    def __init__(self, redis: RedisServer) -> None:
        self.r = redis.client()

    def _cpu(self) -> float:
        info = self.r.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def start(self) -> None:
        self.r.config_resetstat()
        self._cpu0 = self._cpu()
        self._t0 = time.monotonic()

    def read(self) -> Usage:
        seconds = time.monotonic() - self._t0
        cpu = self._cpu() - self._cpu0
        stats = self.r.info("stats")
        calls = {}
        for key, value in self.r.info("commandstats").items():
            name = key.removeprefix("cmdstat_")
            if name not in _METER:
                calls[name] = int(value["calls"])
        return Usage(seconds, calls, int(stats["total_net_input_bytes"]), int(stats["total_net_output_bytes"]), cpu)

    async def idle(self, seconds: float) -> Usage:
        """The replicas' background alone (asleep in the loop: the bench's own clients keep answering pings)."""
        self.start()
        await asyncio.sleep(seconds)
        return self.read()

    def close(self) -> None:
        self.r.close()


# Commands Redis runs inside the shared rate counter's script (storage/redis.py _RATE) for each hit:
# commandstats counts them under their own names beside the EVALSHA. TIME runs nowhere else, so it
# counts the script's runs.
_RATE_INNER = {"time": 1, "hget": 2, "hincrby": 1, "hkeys": 1, "pexpire": 1}


def round_trips(calls: dict[str, int]) -> dict[str, float]:
    """The commands the replicas sent (what costs a round trip), without those the rate script ran."""
    runs = calls.get("time", 0)
    sent = {name: n - _RATE_INNER.get(name, 0) * runs for name, n in calls.items()}
    return {name: n for name, n in sent.items() if n > 0}


def print_cost(label: str, usage: Usage, per: int, unit: str) -> dict[str, Any]:
    """Commands by name, bytes and Redis CPU per `unit`; returns the totals per unit for the arithmetic."""
    calls = sorted(usage.calls.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(usage.calls.values()) / per
    by_name = ", ".join(f"{name} {n / per:.2f}" for name, n in calls if n / per >= 0.005) or "none"
    sent = round_trips(usage.calls)
    sent_names = ", ".join(f"{name} {n / per:.2f}" for name, n in sorted(sent.items(), key=lambda kv: (-kv[1], kv[0]))
                           if n / per >= 0.005)
    print(f"  {label}: {total:.2f} commands per {unit} ({by_name})", flush=True)
    print(f"    of which round trips from the replicas: {sum(sent.values()) / per:.2f} ({sent_names}); the rest run "
          "inside the rate counter's script", flush=True)
    print(f"    {usage.bytes_in / per:,.0f} B in + {usage.bytes_out / per:,.0f} B out per {unit}; "
          f"Redis CPU {usage.cpu / per * 1e6:,.0f} µs per {unit} ({per} {unit}s in {usage.seconds:.1f} s)", flush=True)
    return {"commands": total, "bytes_in": usage.bytes_in / per, "bytes_out": usage.bytes_out / per,
            "cpu": usage.cpu / per, "sent": {name: n / per for name, n in sent.items()}}


def median_usage(rounds: list[Usage]) -> Usage:
    """Per command the median over rounds: a replica's 5-second sweep of the whole directory lands in some
    rounds' windows and not others, and the background rate spreads it evenly, which one round is not."""
    names = {n for u in rounds for n in u.calls}
    return Usage(statistics.median(u.seconds for u in rounds),
                 {n: round(statistics.median(u.calls.get(n, 0) for u in rounds)) for n in names},
                 round(statistics.median(u.bytes_in for u in rounds)),
                 round(statistics.median(u.bytes_out for u in rounds)), statistics.median(u.cpu for u in rounds))


# --- 1: dispatch, one server against replicas ------------------------------------------------------------


async def timed_calls(client: Any, n: int) -> list[float]:
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        raw = await client.call_tool(*CALL)
        lat.append(time.perf_counter() - t0)
        if (answer := read_answer(raw))["status"] != "completed":
            raise RuntimeError(f"call failed: {answer}")
    return lat


async def dispatch_part(work: Path, redis: RedisServer, database: PostgresServer, meter: Meter, quick: bool,
                        costs: dict[str, dict[str, Any]]) -> None:
    print("\n== 1. Style A dispatch: one server alone, across replicas, through HAProxy ==", flush=True)
    env = {"BLENDER_MCP_MESSAGES_PER_MINUTE": "10000000", "BLENDER_MCP_JOB_UPDATES_PER_MINUTE": "10000000"}
    with contextlib.ExitStack() as stack:
        single = start_server(**env)
        stack.callback(single.stop)
        replicas = start_replicas(work / "dispatch", redis, database, **env)
        stack.callback(stop_all, replicas)
        proxy = HAProxy(work / "haproxy", [s.port for s in replicas]).start()
        stack.callback(proxy.stop)
        proxy.wait_states({s.port: "UP" for s in replicas})
        # both Blenders start at once (each takes a while to load bpy and the zip)
        alone = Worker(single.url, work / "blender-single", "blender-single")
        stack.callback(alone.stop)
        across = Worker(replicas[BLENDER_REPLICA].url, work / "blender-r1", "blender-r1")
        stack.callback(across.stop)
        await alone.online(single.url, timeout=180)
        await across.online(replicas[BLENDER_REPLICA].url, timeout=180)

        n = 100 if quick else 300
        chunks = 5
        async with contextlib.AsyncExitStack() as clients:
            a = await clients.enter_async_context(plain_client(single.url, login(single.url)["access_token"]))
            b = await clients.enter_async_context(plain_client(replicas[0].url, login(replicas[0].url)["access_token"]))
            # through the balancer: sessions land round-robin; the required figure is a caller on another
            # replica than Blender's, so a session stuck to Blender's replica is noted and another one tried
            ports = {s.port: i for i, s in enumerate(replicas)}
            token = login(proxy.url)["access_token"]
            landed: list[int | None] = []
            for _ in range(REPLICAS + 1):
                c = await clients.enter_async_context(plain_client(proxy.url, token))
                landed.append(proxied_replica(proxy, c.transport.get_session_id(), ports))
                if landed[-1] != BLENDER_REPLICA:
                    break
            where = ", then ".join(f"replica {r}" if r is not None else "an unknown replica" for r in landed)
            print(f"through HAProxy the caller's session landed on {where}; Blender is on replica {BLENDER_REPLICA}"
                  + (" (so that session's jobs cross replicas too)" if landed[-1] not in (None, BLENDER_REPLICA) else ""),
                  flush=True)
            # (b0) isolates what replicas cost without crossing (PostgreSQL jobs, Redis rate counts and
            # directory reads) from what crossing adds on top (the job's and its answer's PUBLISH hops)
            same = await clients.enter_async_context(
                plain_client(replicas[BLENDER_REPLICA].url, login(replicas[BLENDER_REPLICA].url)["access_token"]))
            modes = {"(a) one server alone": a, "(b0) replicas, caller beside Blender": same,
                     "(b) across replicas, direct": b, "(c) through HAProxy": c}
            for client in modes.values():
                await timed_calls(client, 10)  # warm-up
            lat: dict[str, list[float]] = {name: [] for name in modes}
            for _ in range(chunks):  # turns, so that a slow minute of the VM falls on every mode alike
                for name, client in modes.items():
                    lat[name] += await timed_calls(client, n // chunks)
            for name, values in lat.items():
                report(f"get_scene_info {name}", values, len(values), sum(values), "jobs/s")
            ms = {name: [v * 1000 for v in values] for name, values in lat.items()}
            alone_ms = ms["(a) one server alone"]
            for name in list(modes)[1:]:
                print(f"  {name}: adds {statistics.median(ms[name]) - statistics.median(alone_ms):+.2f} ms at p50, "
                      f"{pct(ms[name], 99) - pct(alone_ms, 99):+.2f} ms at p99 to (a) (target: ≤ 3 ms added at p50)",
                      flush=True)
            beside = ms["(b0) replicas, caller beside Blender"]
            print(f"  crossing replicas alone, (b) less (b0): {statistics.median(ms['(b) across replicas, direct']) - statistics.median(beside):+.2f} ms "
                  "at p50", flush=True)

            print("\n== 3. What a record costs Redis (less the idle background of the same length) ==", flush=True)
            async with (bus_client(replicas[0].url, uuid="cost-sender") as sender,
                        bus_client(replicas[2].url, uuid="cost-receiver") as receiver):
                await wait_online(sender, "cost-receiver")
                await asyncio.sleep(1.0)  # the registrations' directory writes are out of the window
                background = await meter.idle(3.0 if quick else 6.0)
                print(f"  idle background (3 replicas, a Blender, 2 bus clients): "
                      f"{sum(background.calls.values()) / background.seconds:.1f} commands/s "
                      f"({', '.join(f'{k} {v / background.seconds:.1f}' for k, v in sorted(background.calls.items()))}), "
                      f"{(background.bytes_in + background.bytes_out) / background.seconds / 1024:.1f} KB/s", flush=True)

                jobs = 100
                meter.start()
                await timed_calls(b, jobs)
                costs["job"] = print_cost("(iii) Style A job, caller r0, Blender r1", meter.read().minus(background),
                                          jobs, "job")

                sends = 1000
                meter.start()
                for i in range(sends):
                    answer = await send(sender, from_uuid="cost-sender", target_uuid="cost-receiver", payload={"n": i})
                    if answer.get("delivery") != {"cost-receiver": "sent"}:
                        raise RuntimeError(f"send failed: {answer}")
                await receiver.collector.wait_for(sends, timeout=30)
                costs["direct"] = print_cost("(i) direct send r0 -> r2, payload {\"n\": i}",
                                             meter.read().minus(background), sends, "record")


# --- 2: fan-out over three replicas ------------------------------------------------------------------------


JOINS_AT_ONCE = 4  # per child: 2 cores hold 3 replicas and the children; more at once timed joins out at 30 s


def fan_child(url: str, token: str, first: int, count: int, conn: Connection) -> None:
    """A child process holding `count` idle bus clients on one replica, with fewer joins at once and
    three tries each (3,000 joins on 2 cores starve some past the client's timeout)."""
    idle_clients_child(url, token, first, count, conn, joins_at_once=JOINS_AT_ONCE, attempts=3)


async def fanout_part(work: Path, redis: RedisServer, database: PostgresServer, meter: Meter, n: int,
                      processes: int, costs: dict[str, dict[str, Any]]) -> int:
    print(f"\n== 2. Broadcast from replica 0 to {n} clients on {REPLICAS} replicas ({processes} processes) ==",
          flush=True)
    raise_fd_limit(n)
    redis.client().flushall()  # part 1's clients and jobs are not in this directory
    env = {"BLENDER_MCP_MAX_CLIENTS_PER_USER": str(n + 50), "BLENDER_MCP_MAX_SESSIONS_PER_USER": str(n + 50),
           "BLENDER_MCP_MAX_SESSIONS": str(n + 100), "BLENDER_MCP_MESSAGES_PER_MINUTE": "10000000",
           # the joins load 2 cores for minutes: a 2 s ping timeout (the test harness's) marks clients offline
           "BLENDER_MCP_PING_INTERVAL": "30", "BLENDER_MCP_PING_TIMEOUT": "30"}
    ctx = multiprocessing.get_context("spawn")
    procs: list[Any] = []
    pipes: list[Connection] = []
    replicas = start_replicas(work / "fanout", redis, database, **env)
    try:
        token = login(replicas[0].url)["access_token"]
        async with bus_client(replicas[0].url, token=token, uuid="fan-sender") as sender:
            t0 = time.perf_counter()
            share = -(-n // processes)
            for p in range(processes):
                first, count = p * share, min(share, n - p * share)
                if count <= 0:
                    break
                ours, theirs = ctx.Pipe()
                # each child's clients on one replica, the children round the replicas: an even spread
                proc = ctx.Process(target=fan_child, args=(replicas[p % REPLICAS].url, token, first, count, theirs),
                                   daemon=True)
                proc.start()
                procs.append(proc)
                pipes.append(ours)
            for pipe in pipes:
                if await asyncio.to_thread(pipe.recv) != "joined":
                    raise RuntimeError("a child did not join")
            while True:  # every client online in the shared directory
                listing = tool_json(await sender.call_tool("blender_list_available_clients", {}))
                if sum(c["online"] for c in listing["ephemeral"]) == n + 1:
                    break
                await asyncio.sleep(0.5)
            health = [httpx_health(s.url) for s in replicas]
            print(f"{n} clients joined in {time.perf_counter() - t0:.1f} s; per replica "
                  f"{', '.join(str(h.get('online')) for h in health)} online (the sender on replica 0)", flush=True)
            await asyncio.sleep(4)  # past the quiet-session ping, as bench_scale.py
            with redis.client() as r:  # the key is the user's id, not its name
                directory = {k: v for key in r.scan_iter("bmcp:dir:*") for k, v in r.hgetall(key).items()}
            entry_bytes = sum(len(k) + len(v) for k, v in directory.items()) / max(1, len(directory))
            print(f"  the shared directory: {len(directory)} entries, {entry_bytes:.0f} B each "
                  f"({entry_bytes * len(directory) / 1024:.0f} KB read whole by every broadcast, every untargeted "
                  "Style A call, and every replica's sweep each 5 s)", flush=True)
            costs["entry_bytes"] = {"bytes": entry_bytes, "entries": len(directory)}
            background = await meter.idle(5.0 if n < 2000 else 10.0)
            print(f"  idle background ({REPLICAS} replicas, {n} clients): "
                  f"{sum(background.calls.values()) / background.seconds:.1f} commands/s "
                  f"({', '.join(f'{k} {v / background.seconds:.1f}' for k, v in sorted(background.calls.items()))}), "
                  f"{background.bytes_in / background.seconds / 1024:.0f} KB/s in, "
                  f"{background.bytes_out / background.seconds / 1024:.0f} KB/s out, "
                  f"Redis CPU {background.cpu / background.seconds * 100:.1f} %", flush=True)
            costs["background"] = {"commands": sum(background.calls.values()) / background.seconds,
                                   "bytes": (background.bytes_in + background.bytes_out) / background.seconds,
                                   "cpu": background.cpu / background.seconds}
            times, used = [], []
            for round_ in range(5):
                for pipe in pipes:
                    pipe.send(round_)
                meter.start()
                started = time.monotonic()
                answer = tool_json(await sender.call_tool("blender_send_message", {
                    "from_uuid": "fan-sender", "payload": {"r": round_}}))
                answered = time.monotonic() - started
                # the broadcast's Redis work is all inside the send (lookup, rate count, one PUBLISH per other
                # replica, which Redis writes to the subscribers before answering); receiving costs none
                used.append(meter.read())
                done = [await asyncio.to_thread(pipe.recv) for pipe in pipes]
                times.append(max(done) - started)
                print(f"broadcast {round_ + 1} ({answer['status']}, {len(answer.get('recipients', []))} recipients) "
                      f"reached all {n} in {times[-1] * 1000:.0f} ms (the send answered in {answered * 1000:.0f} ms)", flush=True)
                await asyncio.sleep(1)
            for pipe in pipes:
                pipe.send(None)
            ms = [t * 1000 for t in times]
            print(f"broadcast to {n} on {REPLICAS} replicas: p50 {statistics.median(ms):.0f} ms, worst {max(ms):.0f} ms, "
                  f"{n / statistics.median(times):,.0f} deliveries/s at the median (target ≤ 1 s)", flush=True)
            # A replica's sweep (SMEMBERS, then HGETALL of the whole directory) is one ~800 KB event every 5 s, not
            # a steady rate: subtracting its average from a window of a few hundred ms is wrong either way. So keep
            # the rounds no sweep fell in, and drop only the beats (a few hundred bytes a second) from them.
            clean = [u for u in used if not u.calls.get("smembers")] or [u.minus(background) for u in used]
            for u in clean:
                for beat in ("zadd", "zrangebyscore", "zremrangebyscore"):
                    u.calls.pop(beat, None)
            costs["broadcast"] = print_cost(f"(ii) one broadcast to {n} clients on {REPLICAS} replicas (median of the "
                                            f"{len(clean)} of 5 rounds without a sweep)", median_usage(clean), 1,
                                            "broadcast")
    finally:
        for proc in procs:
            proc.join(15)
            if proc.is_alive():
                proc.kill()
        stop_all(replicas)
    return n


def httpx_health(url: str) -> dict[str, Any]:
    import httpx

    return httpx.get(f"{url}/health", timeout=10).json()


# --- 4: one Redis, on paper --------------------------------------------------------------------------------


def redis_benchmark(redis: RedisServer, quick: bool) -> dict[str, float]:
    """Requests/s one Redis serves here (50 connections, no pipelining; redis-benchmark shares the 2 cores)."""
    binary = shutil.which("redis-benchmark")
    if not binary:
        print("  redis-benchmark is not installed (Debian package redis-tools): no measured ceiling", flush=True)
        return {}
    n = "30000" if quick else "100000"
    runs = {"SET": ["-t", "set"], "PUBLISH": ["publish", "bmcp:bench:nobody", "hello"],
            # the shared rate counter every send and job runs: a Lua script of ~7 commands
            "rate-counter EVALSHA": ["evalsha", "", "1", "bmcp:bench:rate", "60000", "1"]}
    with redis.client() as r:  # by its sha: the script's newlines would break redis-benchmark's CSV line
        runs["rate-counter EVALSHA"][1] = r.script_load(_RATE)
    found = {}
    for name, args in runs.items():
        out = subprocess.run([binary, "-h", "127.0.0.1", "-p", str(redis.port), "-n", n, "--csv", *args],
                             capture_output=True, text=True, timeout=120).stdout
        rows = [line.split('","') for line in out.splitlines() if line.startswith('"') and "rps" not in line]
        if rows:
            found[name] = float(rows[-1][1].strip('"'))
    print(f"  redis-benchmark here: {', '.join(f'{k} {v:,.0f}/s' for k, v in found.items())} "
          "(one Redis thread; 50 connections, no pipelining, the benchmark client on the same 2 cores)", flush=True)
    return found


def on_paper(costs: dict[str, dict[str, Any]], ceiling: dict[str, float]) -> None:
    print("\n== 4. One Redis under N replicas, on paper (from the per-record costs above) ==", flush=True)
    print("  A direct record or a Style A job costs Redis the same whatever the number of replicas (one lookup,\n"
          "  one rate count, one PUBLISH to the holder's channel), so what one Redis carries is the cluster's\n"
          "  total rate; N replicas on N machines add only their idle background each.", flush=True)
    cpu_budget = 1.0  # one Redis thread: one core's seconds per second
    for kind, rate in (("direct", 10_000), ("direct", 50_000), ("job", 1_000), ("job", 5_000)):
        if kind not in costs:
            continue
        c = costs[kind]
        cpu = c["cpu"] * rate
        ops = c["commands"] * rate
        print(f"  {rate:>6,} {'records' if kind == 'direct' else 'jobs'}/s: {ops:>9,.0f} commands/s, "
              f"{(c['bytes_in'] + c['bytes_out']) * rate / 1e6:6.1f} MB/s, Redis CPU {cpu / cpu_budget * 100:5.0f} % of its "
              f"one thread{'  <- past one Redis' if cpu > cpu_budget else ''}", flush=True)
    for kind, unit in (("direct", "records"), ("job", "jobs")):
        if kind in costs and costs[kind]["cpu"] > 0:
            line = (f"  one Redis thread's ceiling for {unit}: ~{1 / costs[kind]['cpu']:,.0f}/s from its CPU measured "
                    "under this sequential traffic (an epoll wake-up per command)")
            if ceiling:
                # each round trip at the rate redis-benchmark's 50 connections get for its kind of command
                rates = {"evalsha": ceiling.get("rate-counter EVALSHA"), "publish": ceiling.get("PUBLISH")}
                seconds = sum(n / (rates.get(name) or ceiling.get("SET") or 1)
                              for name, n in costs[kind]["sent"].items())
                line += f"; ~{1 / seconds:,.0f}/s from redis-benchmark's rates of its round trips"
            print(line, flush=True)
    if "broadcast" in costs and "entry_bytes" in costs:
        b, e = costs["broadcast"], costs["entry_bytes"]
        print(f"  a broadcast reads the whole directory ({e['entries']:.0f} entries x {e['bytes']:.0f} B) and sends one "
              f"PUBLISH per other replica: {b['bytes_in'] + b['bytes_out']:,.0f} B and {b['cpu'] * 1e3:.1f} ms of Redis CPU "
              f"each here, so ~{1 / b['cpu'] if b['cpu'] else float('inf'):,.0f} such broadcasts/s fill one Redis", flush=True)
    if "job" in costs and "entry_bytes" in costs:
        e = costs["entry_bytes"]
        print(f"  a Style A call without target_uuid reads the whole directory too (HGETALL, to find the one Blender):"
              f" with {e['entries']:.0f} clients on the bus that is {e['entries'] * e['bytes'] / 1024:,.0f} KB a job, "
              f"{e['entries'] * e['bytes'] * 1000 / 1e6:,.0f} MB/s at 1,000 jobs/s", flush=True)
    if "background" in costs:
        bg = costs["background"]
        print(f"  idle background of {REPLICAS} replicas: {bg['commands']:.0f} commands/s, {bg['bytes'] / 1024:.0f} KB/s, "
              f"{bg['cpu'] * 100:.1f} % Redis CPU; N replicas: N/{REPLICAS} of that (beats, directory sweeps)", flush=True)
    if ceiling:
        print(f"  Redis's single-thread limit measured here: {', '.join(f'{k} {v:,.0f}/s' for k, v in ceiling.items())}",
              flush=True)


# --- the run -------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def services(work: Path) -> Iterator[tuple[RedisServer, PostgresServer]]:
    redis = RedisServer(work / "redis").start()
    try:
        database = PostgresServer(work / "postgres").start()
        try:
            yield redis, database
        finally:
            database.destroy()
    finally:
        redis.stop()


async def main(quick: bool, clients: int | None, processes: int | None, parts: str) -> None:
    n = clients or (600 if quick else 3000)
    procs = processes or max(REPLICAS, REPLICAS * round(n / 1500))  # ~500 clients a child, a multiple of 3
    work = Path(tempfile.mkdtemp(prefix="bmcp-bench-replicas-"))
    costs: dict[str, dict[str, Any]] = {}
    began = time.monotonic()
    with services(work) as (redis, database):
        meter = Meter(redis)
        try:
            if "dispatch" in parts:
                await dispatch_part(work, redis, database, meter, quick, costs)
            if "fanout" in parts:
                await fanout_part(work, redis, database, meter, n, procs, costs)
            ceiling = redis_benchmark(redis, quick)
            on_paper(costs, ceiling)
        finally:
            meter.close()
    shutil.rmtree(work, ignore_errors=True)
    print(f"\n(whole run {time.monotonic() - began:.0f} s)", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clients", type=int, default=None, help="broadcast receivers (default 3000; --quick 600)")
    parser.add_argument("--processes", type=int, default=None, help="child processes holding them (default ~500 each)")
    parser.add_argument("--parts", default="dispatch,fanout", help="run only these parts (dispatch, fanout)")
    args = parser.parse_args()
    run_bench(main, args.quick, args.clients, args.processes, args.parts)
