"""Soak: 50 clients, mixed traffic (direct, group, type_filter, broadcast, all priorities) for a bounded time.

Counts every record each target should get and does get: nothing may be lost for live targets.
Samples the server's RSS to show whether memory stays flat.

    .venv/bin/python bench/bench_soak.py [--seconds 120] [--clients 50]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import time
from contextlib import AsyncExitStack

from _common import run_bench, start_server
from bench_scale import rss_mb

from tests.helpers import bus_client, login, tool_json

PRIORITIES = ["emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"]


async def main(seconds: float, n: int) -> None:
    server = start_server(BLENDER_MCP_MESSAGES_PER_MINUTE="10000000")
    rng = random.Random(7)
    try:
        token = login(server.url)["access_token"]
        async with AsyncExitStack() as stack:
            clients = {}
            for i in range(n):
                uuid = f"soak-{i:02d}"
                clients[uuid] = await stack.enter_async_context(bus_client(
                    server.url, token=token, uuid=uuid, group_id=f"g{i % 5}",
                    client_type="blender" if i % 2 else "llm"))
            info = {u: (f"g{i % 5}", "blender" if i % 2 else "llm") for i, u in enumerate(clients)}
            expected: collections.Counter[str] = collections.Counter()
            sent = 0
            samples = [rss_mb(server.proc.pid)]
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
                    samples.append(rss_mb(server.proc.pid))
                    next_sample += 10

            t0 = time.perf_counter()
            await asyncio.gather(*(sender(u) for u in list(clients)[:10]), sampler())
            for uuid, client in clients.items():
                await client.collector.wait_for(expected[uuid], timeout=120)
            elapsed = time.perf_counter() - t0
            got = {u: len(c.collector.records) for u, c in clients.items()}
            lost = sum(max(0, expected[u] - got[u]) for u in clients)
            dupes = sum(max(0, got[u] - expected[u]) for u in clients)
            deliveries = sum(expected.values())
            print(f"soak {seconds:.0f} s, {n} clients: {sent} sends, {deliveries} deliveries "
                  f"({deliveries / elapsed:.0f}/s), lost {lost}, extra {dupes}", flush=True)
            print("server RSS MB every 10 s: " + ", ".join(f"{s:.0f}" for s in samples), flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    run_bench(main, args.seconds, args.clients)
