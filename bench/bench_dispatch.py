"""Style A round trip through a real headless Blender worker: blender_get_scene_info p50/p99 and jobs/s.

    .venv/bin/python bench/bench_dispatch.py [--quick]   (needs the bpy module and a built zip)
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from _common import report, run_bench, start_server

from blender_mcp_addon.protocol.answers import read_answer
from tests.blender_worker import Worker
from tests.helpers import bus_client, login, wait_online


async def main(quick: bool) -> None:
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport

    server = start_server(BLENDER_MCP_MESSAGES_PER_MINUTE="10000000")
    worker = Worker(server.url, Path(tempfile.mkdtemp(prefix="bmcp-bench-blender-")), "blender-bench-01")
    try:
        async with bus_client(server.url, uuid="bench-watch") as watch:
            await wait_online(watch, "blender-bench-01", timeout=120)
        token = login(server.url)["access_token"]
        transport = StreamableHttpTransport(url=f"{server.url}/mcp", headers={"Authorization": f"Bearer {token}"})
        async with Client(transport) as client:
            n = 100 if quick else 400
            for _ in range(10):  # warm-up
                await client.call_tool("blender_get_scene_info", {"limit": 10})
            lat = []
            for _ in range(n):
                t0 = time.perf_counter()
                raw = await client.call_tool("blender_get_scene_info", {"limit": 10})
                lat.append(time.perf_counter() - t0)
                assert read_answer(raw)["status"] == "completed"
            report("dispatch get_scene_info, sequential", lat, n, sum(lat), "jobs/s")
            sem = asyncio.Semaphore(16)
            lat16: list[float] = []

            async def one() -> None:
                async with sem:
                    t0 = time.perf_counter()
                    await client.call_tool("blender_get_scene_info", {"limit": 10})
                    lat16.append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(n * 2)))
            report("dispatch get_scene_info, 16 in flight", lat16, n * 2, time.perf_counter() - t0, "jobs/s")
    finally:
        worker.stop()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    run_bench(main, parser.parse_args().quick)
