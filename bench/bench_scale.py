"""Scale: 1,000 connected idle clients on one server: server memory per client, time for a broadcast to reach all.

    .venv/bin/python bench/bench_scale.py [--clients 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from contextlib import AsyncExitStack

from _common import start_server

from tests.helpers import bus_client, login, tool_json


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main(n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * n + 256)), hard))
    server = start_server(BLENDER_MCP_MAX_CLIENTS_PER_USER=str(n + 10), BLENDER_MCP_MESSAGES_PER_MINUTE="1000000",
                          BLENDER_MCP_PING_INTERVAL="30")
    try:
        token = login(server.url)["access_token"]
        base_rss = rss_mb(server.proc.pid)
        async with AsyncExitStack() as stack:
            sem = asyncio.Semaphore(24)
            clients = []

            async def join(i: int) -> None:
                async with sem:
                    client = await stack.enter_async_context(bus_client(server.url, token=token))
                    await client.call_tool("blender_register_client", {"client_uuid": f"idle-{i:04d}",
                                                                       "client_type": "llm"})
                    clients.append((f"idle-{i:04d}", client))

            t0 = time.perf_counter()
            await asyncio.gather(*(join(i) for i in range(n)))
            while True:  # every event stream open and registered
                listing = tool_json(await clients[0][1].call_tool("blender_list_available_clients", {}))
                if sum(c["online"] for c in listing["ephemeral"]) == n:
                    break
                await asyncio.sleep(0.5)
            joined = time.perf_counter() - t0
            await asyncio.sleep(2)
            rss = rss_mb(server.proc.pid)
            print(f"{n} clients joined in {joined:.1f} s; server RSS {base_rss:.0f} MB -> {rss:.0f} MB "
                  f"({(rss - base_rss) * 1024 / n:.0f} KB per client)", flush=True)
            (sender_uuid, sender), others = clients[0], [c for _, c in clients[1:]]
            for round_ in range(3):
                t0 = time.perf_counter()
                await sender.call_tool("blender_send_message", {"from_uuid": sender_uuid, "payload": {"r": round_}})
                for c in others:
                    await c.collector.wait_for(round_ + 1, timeout=60)
                print(f"broadcast {round_ + 1} reached all {n - 1} others in {(time.perf_counter() - t0) * 1000:.0f} ms",
                      flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    asyncio.run(main(parser.parse_args().clients))
