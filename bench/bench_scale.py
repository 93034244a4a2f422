"""Scale: 1,000 connected idle clients on one server: server memory per client, time for a broadcast to reach all.

    .venv/bin/python bench/bench_scale.py [--clients 1000] [--processes 4]

The idle clients live in a few child processes, as they would in separate Blenders and LLM
hosts: one process holding all 1,000 fastmcp clients spent most of a broadcast parsing
999 records in turn and in full garbage collections over its own ~1 GB heap, which
measured the bench rather than the server. Each child reports when all its clients have a
round's record (time.monotonic is one clock for every process on the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from multiprocessing.connection import Connection

from _common import idle_clients_child, raise_fd_limit, run_bench, start_server

from tests.helpers import bus_client, login, tool_json


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main(n: int, processes: int) -> None:
    raise_fd_limit(n)
    server = start_server(BLENDER_MCP_MAX_CLIENTS_PER_USER=str(n + 10), BLENDER_MCP_MESSAGES_PER_MINUTE="1000000",
                          BLENDER_MCP_PING_INTERVAL="30")
    ctx = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    procs = []
    try:
        token = login(server.url)["access_token"]
        base_rss = rss_mb(server.proc.pid)
        async with bus_client(server.url, token=token, uuid="idle-sender") as sender:
            t0 = time.perf_counter()
            share = -(-(n - 1) // processes)
            for p in range(processes):
                first, count = p * share, min(share, n - 1 - p * share)
                if count <= 0:
                    break
                ours, theirs = ctx.Pipe()
                proc = ctx.Process(target=idle_clients_child, args=(server.url, token, first, count, theirs), daemon=True)
                proc.start()
                pipes.append(ours)
                procs.append(proc)
            for pipe in pipes:
                assert await asyncio.to_thread(pipe.recv) == "joined"
            while True:  # every event stream open and registered
                listing = tool_json(await sender.call_tool("blender_list_available_clients", {}))
                if sum(c["online"] for c in listing["ephemeral"]) == n:
                    break
                await asyncio.sleep(0.5)
            joined = time.perf_counter() - t0
            await asyncio.sleep(4)  # past the quiet-session ping (server/blender_mcp_server/quiet_ping.py)
            rss = rss_mb(server.proc.pid)
            print(f"{n} clients ({processes} processes) joined in {joined:.1f} s; server RSS {base_rss:.0f} MB -> "
                  f"{rss:.0f} MB ({(rss - base_rss) * 1024 / n:.0f} KB per client)", flush=True)
            for round_ in range(5):
                for pipe in pipes:
                    pipe.send(round_)
                started = time.monotonic()
                await sender.call_tool("blender_send_message", {"from_uuid": "idle-sender", "payload": {"r": round_}})
                done = [await asyncio.to_thread(pipe.recv) for pipe in pipes]
                print(f"broadcast {round_ + 1} reached all {n - 1} others in {(max(done) - started) * 1000:.0f} ms",
                      flush=True)
                await asyncio.sleep(1)
            for pipe in pipes:
                pipe.send(None)
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=4)
    args = parser.parse_args()
    run_bench(main, args.clients, args.processes)
