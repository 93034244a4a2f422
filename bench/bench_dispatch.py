"""Style A round trip through a real headless Blender worker: p50/p99, jobs/s and CPU per job of each process.

    .venv/bin/python bench/bench_dispatch.py [--quick] [--code] [--rounds N] [--in-flight N] [--profile DIR]
      --code        blender_execute_code {"code": "x = 1"} instead of blender_get_scene_info {"limit": 10}
      --rounds N    repeat both phases N times on the same server and worker (the VM is noisy: read ranges)
      --in-flight N calls at once in the second phase (default 16, the issue's figure)
      --profile DIR py-spy the server and the worker during the second phase (raw collapsed stacks)
      --zip PATH    the extension zip the worker installs (default: the newest in dist/), to compare builds
      --attach CMD  run CMD (formatted with {pid} and {name}: server, worker) beside each process during that
                    phase, stopped with SIGINT after it (perf record, strace -c ...)
    (needs the bpy module and a built zip)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import cpu_seconds, report, run_bench, start_server

from blender_mcp_addon.protocol.answers import read_answer
from tests.blender_worker import Worker
from tests.helpers import bus_client, login, wait_online


class CpuMeter:
    """CPU per job of the server, the worker and this client over one phase, and how many job updates the
    worker sent per blender_job_updates call (its batches grow with the calls in flight)."""

    def __init__(self, server_pid: int, worker_pid: int, server_url: str) -> None:
        self.pids = {"server": server_pid, "worker": worker_pid}
        self.metrics_url = f"{server_url}/metrics"

    def _counters(self) -> tuple[float, float]:
        text = httpx.get(self.metrics_url, timeout=10).text
        found = dict(re.findall(r'^(bmcp_job_updates_total|bmcp_fast_tool_calls_total\{kind="job_updates"\}) (\S+)$', text,
                                re.M))
        return float(found.get("bmcp_job_updates_total", 0)), float(found.get('bmcp_fast_tool_calls_total{kind="job_updates"}', 0))

    def start(self) -> None:
        self._updates = self._counters()
        self._at = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._client = time.process_time()

    def line(self, jobs: int) -> str:
        used = {name: cpu_seconds(pid) - self._at[name] for name, pid in self.pids.items()}
        used["client"] = time.process_time() - self._client
        updates, calls = (now - then for now, then in zip(self._counters(), self._updates, strict=True))
        batches = f"   updates/call {updates / calls:4.1f} (fast path)" if calls else ""
        return "   CPU/job " + "  ".join(f"{name} {seconds / jobs * 1000:5.2f} ms"
                                         for name, seconds in used.items()) + batches


async def main(quick: bool, code: bool, rounds: int, profile: str | None, attach: str | None,
               zip_path: str | None, in_flight: int) -> None:
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport

    tool, args = ("blender_execute_code", {"code": "x = 1"}) if code else ("blender_get_scene_info", {"limit": 10})
    server = start_server(BLENDER_MCP_MESSAGES_PER_MINUTE="10000000")
    worker = Worker(server.url, Path(tempfile.mkdtemp(prefix="bmcp-bench-blender-")), "blender-bench-01",
                    zip_path=zip_path)
    assert server.proc is not None
    meter = CpuMeter(server.proc.pid, worker.proc.pid, server.url)
    try:
        async with bus_client(server.url, uuid="bench-watch") as watch:
            await wait_online(watch, "blender-bench-01", timeout=120)
        token = login(server.url)["access_token"]
        transport = StreamableHttpTransport(url=f"{server.url}/mcp", headers={"Authorization": f"Bearer {token}"})
        async with Client(transport) as client:
            n = 100 if quick else 400
            for _ in range(10):  # warm-up
                await client.call_tool(tool, args)
            for round_no in range(rounds):
                lat = []
                meter.start()
                for _ in range(n):
                    t0 = time.perf_counter()
                    raw = await client.call_tool(tool, args)
                    lat.append(time.perf_counter() - t0)
                    assert read_answer(raw)["status"] == "completed"
                report(f"dispatch {tool[8:]}, sequential", lat, n, sum(lat), "jobs/s")
                print(meter.line(n), flush=True)
                sem = asyncio.Semaphore(in_flight)
                lat_at_once: list[float] = []

                async def one(sem: asyncio.Semaphore = sem, lat_at_once: list[float] = lat_at_once) -> None:
                    async with sem:
                        t0 = time.perf_counter()
                        await client.call_tool(tool, args)
                        lat_at_once.append(time.perf_counter() - t0)

                spies = []
                if (profile or attach) and round_no == rounds - 1:
                    spy = str(Path(sys.executable).parent / "py-spy")
                    for name, pid in meter.pids.items():
                        cmd = (attach.format(pid=pid, name=name).split() if attach else
                               [spy, "record", "-r", "500", "--nonblocking", "-f", "raw", "-o", f"{profile}/{name}.txt",
                                "-p", str(pid), "-t"])
                        spies.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                    await asyncio.sleep(1.0)
                meter.start()
                t0 = time.perf_counter()
                await asyncio.gather(*(one() for _ in range(n * 2 * (3 if spies else 1))))
                report(f"dispatch {tool[8:]}, {in_flight} in flight", lat_at_once, len(lat_at_once), time.perf_counter() - t0, "jobs/s")
                print(meter.line(len(lat_at_once)), flush=True)
                for spy in spies:
                    spy.send_signal(2)
                    spy.wait(20)
    finally:
        worker.stop()
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--code", action="store_true")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--profile")
    parser.add_argument("--attach")
    parser.add_argument("--zip")
    parser.add_argument("--in-flight", type=int, default=16)
    a = parser.parse_args()
    if a.profile:
        shutil.rmtree(a.profile, ignore_errors=True)
        os.makedirs(a.profile)
    run_bench(main, a.quick, a.code, a.rounds, a.profile, a.attach, a.zip, a.in_flight)
