"""Soak: 50 clients, mixed traffic (direct, group, type_filter, broadcast, all priorities) for a bounded time.

Counts every record each target should get and does get: nothing may be lost for live targets.
Samples the server's RSS to show whether memory stays flat.

    .venv/bin/python bench/bench_soak.py [--seconds 120] [--clients 50] [--replicas 3]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import tempfile
import time
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import Any

from _common import run_bench, start_server
from bench_scale import rss_mb

from tests.helpers import bus_client, login, tool_json, wait_online

PRIORITIES = ["emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"]


async def soak(urls: list[str], pids: list[int], seconds: float, n: int) -> dict[str, Any]:
    """`n` clients spread over the servers at `urls` (replicas of one bus, or one server), ten of them
    sending mixed traffic for `seconds`; the counts sent, expected, lost and extra, and each server's RSS
    (`pids`) every 10 s."""
    rng = random.Random(7)
    token = login(urls[0])["access_token"]
    async with AsyncExitStack() as stack:
        clients = {}
        for i in range(n):
            uuid = f"soak-{i:02d}"
            clients[uuid] = await stack.enter_async_context(bus_client(
                urls[i % len(urls)], token=token, uuid=uuid, group_id=f"g{i % 5}",
                client_type="blender" if i % 2 else "llm"))
        if len(urls) > 1:  # every replica lists every client before traffic starts
            for client in clients.values():
                await wait_online(client, f"soak-{n - 1:02d}", timeout=30)
        info = {u: (f"g{i % 5}", "blender" if i % 2 else "llm") for i, u in enumerate(clients)}
        expected: collections.Counter[str] = collections.Counter()
        sent = 0
        samples = [[rss_mb(pid) for pid in pids]]
        deadline = time.monotonic() + seconds
        next_sample = time.monotonic() + 10

        async def sender(uuid: str) -> None:
            nonlocal sent
            client = clients[uuid]
            while time.monotonic() < deadline:
                mode = rng.random()
                args = {"from_uuid": uuid, "priority": rng.choice(PRIORITIES), "payload": {"k": sent}}
                if mode < 0.5:
                    target = rng.choice(list(clients))
                    args["target_uuid"] = target
                    targets = [target]
                elif mode < 0.75:
                    group = f"g{rng.randrange(5)}"
                    args["group_id"] = group
                    targets = [u for u, (g, _) in info.items() if g == group]
                elif mode < 0.95:
                    kind = rng.choice(["blender", "llm"])
                    args["client_type"] = kind
                    targets = [u for u, (_, t) in info.items() if t == kind]
                else:
                    targets = [u for u in clients if u != uuid]
                answer = tool_json(await client.call_tool("blender_send_message", args))
                assert answer["status"] == "sent", answer
                expected.update(targets)
                sent += 1

        async def sampler() -> None:
            nonlocal next_sample
            while time.monotonic() < deadline:
                await asyncio.sleep(max(0.0, next_sample - time.monotonic()))
                samples.append([rss_mb(pid) for pid in pids])
                next_sample += 10

        t0 = time.perf_counter()
        await asyncio.gather(*(sender(u) for u in list(clients)[:10]), sampler())
        for uuid, client in clients.items():
            await client.collector.wait_for(expected[uuid], timeout=120)
        await asyncio.sleep(0.5)  # anything extra has arrived by now
        elapsed = time.perf_counter() - t0
        got = {u: len(c.collector.records) for u, c in clients.items()}
        return {"sent": sent, "deliveries": sum(expected.values()), "seconds": elapsed, "samples": samples,
                "lost": sum(max(0, expected[u] - got[u]) for u in clients),
                "extra": sum(max(0, got[u] - expected[u]) for u in clients)}


async def main(seconds: float, n: int, replicas: int) -> None:
    with ExitStack() as stack:
        if replicas > 1:
            urls, pids = start_replicas(stack, replicas)
        else:
            server = start_server(BLENDER_MCP_MESSAGES_PER_MINUTE="10000000")
            stack.callback(server.stop)
            assert server.proc is not None
            urls, pids = [server.url], [server.proc.pid]
        out = await soak(urls, pids, seconds, n)
        print(f"soak {seconds:.0f} s, {n} clients on {len(urls)} server(s): {out['sent']} sends, "
              f"{out['deliveries']} deliveries ({out['deliveries'] / out['seconds']:.0f}/s), "
              f"lost {out['lost']}, extra {out['extra']}", flush=True)
        for i in range(len(pids)):
            print(f"server {i} RSS MB every 10 s: " + ", ".join(f"{row[i]:.0f}" for row in out["samples"]), flush=True)


def start_replicas(stack: ExitStack, count: int) -> tuple[list[str], list[int]]:
    """`count` replicas on a Redis and a PostgreSQL of their own (tests/services.py), stopped with `stack`."""
    from tests.services import PostgresServer, RedisServer
    from tests.test_replicas import Replicas

    folder = Path(tempfile.mkdtemp(prefix="bmcp-soak-"))
    redis = RedisServer(folder / "redis").start()
    stack.callback(redis.stop)
    database = PostgresServer(folder / "postgres").start()
    stack.callback(database.destroy)
    group = Replicas(folder / "bus", redis, database, count=count,
                     BLENDER_MCP_MESSAGES_PER_MINUTE="10000000").start()
    stack.callback(group.stop)
    return [s.url for s in group.servers], [s.proc.pid for s in group.servers if s.proc is not None]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--replicas", type=int, default=1, help="3: three replicas on Redis and PostgreSQL")
    args = parser.parse_args()
    run_bench(main, args.seconds, args.clients, args.replicas)
