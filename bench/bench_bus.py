"""Bus speed on loopback: send->receive latency, throughput, fan-out to 10 and 100 subscribers.

    .venv/bin/python bench/bench_bus.py [--quick]

Fan-out is measured twice: with fastmcp clients as subscribers (what an LLM host or a
Blender runs; on two cores they, not the server, are the limit), and with lean
subscribers in two child processes (lean_subscriber.py), which measure the server.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from contextlib import AsyncExitStack
from multiprocessing.connection import Connection

from _common import report, run_bench, start_server
from fastmcp import Client
from lean_subscriber import child

from tests.helpers import bus_client, login, tool_json


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


async def send_to_group(sender: Client, group: str, sends: int, inflight: int) -> None:
    """`sends` group messages with payload {"i": 0..sends-1}, `inflight` calls at a time."""
    sem = asyncio.Semaphore(inflight)

    async def one(i: int) -> None:
        async with sem:
            await sender.call_tool("blender_send_message", {"group_id": group, "payload": {"i": i}})

    await asyncio.gather(*(one(i) for i in range(sends)))


async def fanout(base: str, subscribers: int, sends: int, inflight: int) -> None:
    group = f"fan{subscribers}-{inflight}"
    async with AsyncExitStack() as stack:
        sender = await stack.enter_async_context(bus_client(base, uuid="bench-fan-sender"))
        rxs = [await stack.enter_async_context(bus_client(base, uuid=f"bench-fan-{i}", group_id=group))
               for i in range(subscribers)]
        t0 = time.perf_counter()
        await send_to_group(sender, group, sends, inflight)
        for rx in rxs:
            await rx.collector.wait_for(sends, timeout=300)
        report(f"fan-out to {subscribers} subscribers, {inflight} in flight", None, sends * subscribers,
               time.perf_counter() - t0, "deliveries/s")


async def fanout_lean(base: str, subscribers: int, sends: int, inflight: int, processes: int = 2) -> None:
    token = login(base)["access_token"]
    group = f"lean{subscribers}"
    ctx = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    procs = []
    try:
        share = -(-subscribers // processes)
        for p in range(processes):
            ours, theirs = ctx.Pipe()
            count = min(share, subscribers - p * share)
            proc = ctx.Process(target=child, args=(base, token, group, p * share, count, sends, theirs), daemon=True)
            proc.start()
            pipes.append(ours)
            procs.append(proc)
        for pipe in pipes:
            assert await asyncio.to_thread(pipe.recv) == "ready"
        async with bus_client(base, token=token, uuid=f"bench-lean-sender{subscribers}") as sender:
            while sum(c["online"] for c in tool_json(await sender.call_tool("blender_list_available_clients", {}))[
                    "ephemeral"] if c["group_id"] == group) < subscribers:
                await asyncio.sleep(0.2)
            started = time.monotonic()
            await send_to_group(sender, group, sends, inflight)
            done = [await asyncio.to_thread(pipe.recv) for pipe in pipes]
        assert all(ok for _, _, ok in done), "a lean subscriber missed or repeated a record"
        report(f"fan-out to {subscribers} lean subscribers, {inflight} in flight", None, sends * subscribers,
               max(t for _, t, _ in done) - started, "deliveries/s")
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()


async def main(quick: bool) -> None:
    server = start_server(BLENDER_MCP_MESSAGES_PER_MINUTE="10000000")
    try:
        scale = 0.3 if quick else 1.0
        await latency(server.url, int(500 * scale))
        await throughput(server.url, int(2000 * scale), 1)
        await throughput(server.url, int(2000 * scale), 16)
        for inflight in (1, 16):
            await fanout(server.url, 10, int(300 * scale), inflight)
            await fanout(server.url, 100, int(60 * scale), inflight)
        await fanout_lean(server.url, 10, int(3000 * scale), 16)
        await fanout_lean(server.url, 100, int(600 * scale), 16)
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    run_bench(main, parser.parse_args().quick)
