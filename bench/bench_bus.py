"""Bus speed on loopback: send->receive latency, throughput, fan-out to 10 and 100 subscribers.

    .venv/bin/python bench/bench_bus.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from contextlib import AsyncExitStack

from _common import report, run_bench, start_server

from tests.helpers import bus_client


async def latency(base: str, n: int) -> None:
    async with bus_client(base, uuid="bench-sender") as sender, bus_client(base, uuid="bench-rx") as rx:
        lat = []
        for i in range(n):
            t0 = time.perf_counter()
            await sender.call_tool("blender_send_message", {"target_uuid": "bench-rx", "payload": {"i": i}})
            await rx.collector.wait_for(i + 1)
            lat.append(time.perf_counter() - t0)
        report("bus send->receive, sequential", lat, n, sum(lat))


async def throughput(base: str, n: int, inflight: int) -> None:
    async with bus_client(base, uuid="bench-sender2") as sender, bus_client(base, uuid="bench-rx2") as rx:
        sem = asyncio.Semaphore(inflight)

        async def one(i: int) -> None:
            async with sem:
                await sender.call_tool("blender_send_message", {"target_uuid": "bench-rx2", "payload": {"i": i}})

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        await rx.collector.wait_for(n, timeout=120)
        report(f"bus to 1 subscriber, {inflight} calls in flight", None, n, time.perf_counter() - t0)


async def fanout(base: str, subscribers: int, sends: int, inflight: int) -> None:
    async with AsyncExitStack() as stack:
        sender = await stack.enter_async_context(bus_client(base, uuid="bench-fan-sender"))
        rxs = [await stack.enter_async_context(bus_client(base, uuid=f"bench-fan-{i}", group_id=f"fan{subscribers}"))
               for i in range(subscribers)]
        sem = asyncio.Semaphore(inflight)

        async def one(i: int) -> None:
            async with sem:
                await sender.call_tool("blender_send_message", {"group_id": f"fan{subscribers}", "payload": {"i": i}})

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(sends)))
        for rx in rxs:
            await rx.collector.wait_for(sends, timeout=300)
        report(f"fan-out to {subscribers} subscribers, {inflight} in flight", None, sends * subscribers,
               time.perf_counter() - t0, "deliveries/s")


async def main(quick: bool) -> None:
    server = start_server(BLENDER_MCP_MESSAGES_PER_MINUTE="10000000")
    try:
        scale = 0.3 if quick else 1.0
        await latency(server.url, int(500 * scale))
        await throughput(server.url, int(2000 * scale), 1)
        await throughput(server.url, int(2000 * scale), 16)
        await fanout(server.url, 10, int(300 * scale), 16)
        await fanout(server.url, 100, int(60 * scale), 16)
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    run_bench(main, parser.parse_args().quick)
