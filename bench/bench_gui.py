"""Style A into an open Blender window beside the same calls into a headless worker, in one run.

    .venv/bin/python bench/bench_gui.py [--quick] [--blender "CMD"] [--idle-seconds 30] [--zip ZIP]

Starts the server, a real Blender window under Xvfb with the built zip (logged in and connected through
the add-on's operators: bench/gui_window.py), and a headless worker on the bpy module; then a plain
fastmcp client calls `blender_execute_code {"code": "x = 1"}` and `blender_get_scene_info` back to
back into each (the headless worker first, with the window idle), prints p50/p90/p99, the headless
worker's jobs/s with 16 calls in flight, and the window Blender's CPU use (and the server's) over
--idle-seconds twice: right after the calls, while the drainer's timer backs off, and once it has
(runtime/drivers.py: IDLE_AFTER_SECONDS after the last job). The window's CPU is split into its main
thread (Blender itself and the drainer's timer) and the add-on's bus client thread, and set beside a
second window of the same Blender without the add-on, idle over the same seconds: Blender's own floor,
so the add-on's share is the difference. `--blender` is the window's Blender as shell words (default:
`blender` on PATH, Debian's 3.4 here; e.g. a chroot launcher for 5.2).
`--zip` installs another build of the extension in both (default: the one in dist/), for A/B runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _common import ROOT, cpu_seconds, pct, run_bench, start_server

from blender_mcp_addon.protocol.answers import read_answer
from blender_mcp_addon.runtime.drivers import IDLE_AFTER_SECONDS
from tests.blender_worker import Worker, extension_zip
from tests.helpers import bus_client, login, wait_online

WINDOW_UUID = "blender-gui-bench"
HEADLESS_UUID = "blender-headless-bench"


def line(name: str, lat: list[float]) -> None:
    ms = [v * 1000 for v in lat]
    print(f"{name:<52} p50 {statistics.median(ms):7.2f} ms   p90 {pct(ms, 90):7.2f} ms   p99 {pct(ms, 99):7.2f} ms"
          f"   min {min(ms):6.2f} ms", flush=True)


async def idle_cpu(phase: str, pids: dict[str, tuple[int, int | None]], seconds: float) -> None:
    """CPU of each (pid, thread id or None for the whole process) over the same `seconds`."""
    before = {name: cpu_seconds(*ids) for name, ids in pids.items()}, time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - before[1]
    print(f"CPU, {phase}, over {wall:.0f} s (% of a core):", flush=True)
    for name, ids in pids.items():
        share = 100 * (cpu_seconds(*ids) - before[0][name]) / wall
        print(f"  {name:<58} {share:6.2f} %", flush=True)


async def round_trips(client, tool: str, args: dict, n: int) -> list[float]:
    for _ in range(5):  # warm-up
        await client.call_tool(tool, args)
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        raw = await client.call_tool(tool, args)
        lat.append(time.perf_counter() - t0)
        answer = read_answer(raw)
        assert answer["status"] == "completed", answer
    return lat


async def in_flight(client, calls_at_once: int, n: int) -> None:
    """The headless worker's throughput: `n` execute_code calls, `calls_at_once` of them in flight."""
    sem = asyncio.Semaphore(calls_at_once)

    async def one() -> None:
        async with sem:
            await client.call_tool("blender_execute_code", {"code": "x = 1", "target_uuid": HEADLESS_UUID})

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    print(f"{f'execute_code, headless, {calls_at_once} in flight':<52} {n / (time.perf_counter() - t0):7.0f} jobs/s",
          flush=True)


async def main(quick: bool, blender: list[str], idle_seconds: float, zip_path: str, backoff: bool) -> None:
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport

    server = start_server(BLENDER_MCP_MESSAGES_PER_MINUTE="10000000")
    out = Path(tempfile.mkdtemp(prefix="bmcp-bench-gui-"))
    env = {**os.environ, "BLENDER_USER_SCRIPTS": str(out / "scripts"), "BLENDER_USER_CONFIG": str(out / "config"),
           "BLENDER_USER_RESOURCES": str(out / "resources"), "BMCP_CHROOT_BINDS": str(ROOT)}
    subprocess.run([*blender, "-b", "--factory-startup", "--python-expr",
                    "import bpy; bpy.context.preferences.view.show_splash = False; bpy.ops.wm.save_userpref()"],
                   env=env, check=True, capture_output=True, timeout=120)
    window = subprocess.Popen(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", *blender, "--python",
                               str(ROOT / "bench/gui_window.py"), "--", zip_path, server.url, WINDOW_UUID,
                               str(out)], stdout=open(out / "blender.log", "wb"), stderr=subprocess.STDOUT, env=env,
                              start_new_session=True)
    # The same Blender without the add-on, idle beside it: Blender's own cost over the same seconds.
    bare = subprocess.Popen(["xvfb-run", "-a", "-n", "140", "-s", "-screen 0 1280x800x24", *blender, "--python",
                             str(ROOT / "bench/gui_window.py"), "--", "-", server.url, "-", str(out)],
                            stdout=open(out / "bare.log", "wb"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    worker = Worker(server.url, out / "headless", HEADLESS_UUID, zip_path=zip_path)
    try:
        deadline = time.monotonic() + 180
        while not (out / "ready").exists() or not (out / "ready-bare").exists():
            if (out / "failed").exists() or window.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the window did not connect: {(out / 'blender.log').read_text()[-2000:]}")
            await asyncio.sleep(0.2)
        ready = json.loads((out / "ready").read_text())
        bare_pid = json.loads((out / "ready-bare").read_text())["pid"]
        async with bus_client(server.url, uuid="bench-gui-watch") as watch:
            await wait_online(watch, WINDOW_UUID, timeout=60)
            await wait_online(watch, HEADLESS_UUID, timeout=120)
        print(f"window: Blender {ready['blender']} under Xvfb; headless: bpy module worker", flush=True)
        token = login(server.url)["access_token"]
        transport = StreamableHttpTransport(url=f"{server.url}/mcp", headers={"Authorization": f"Bearer {token}"})
        n = 60 if quick else 300
        async with Client(transport) as client:
            # The headless worker first, while the window is idle: once the window has had calls, its timer
            # ticks every 4 ms for seconds (drivers.interval_after) and that Blender's main loop competes
            # with the worker for this machine's two cores, which a worker on a render node never shares.
            for uuid, where in ((HEADLESS_UUID, "headless"), (WINDOW_UUID, "window")):
                code = await round_trips(client, "blender_execute_code", {"code": "x = 1", "target_uuid": uuid}, n)
                line(f"execute_code 'x = 1', {where}, sequential", code)
                scene = await round_trips(client, "blender_get_scene_info", {"limit": 10, "target_uuid": uuid}, n)
                line(f"get_scene_info, {where}, sequential", scene)
                if uuid == HEADLESS_UUID:
                    await in_flight(client, 16, n * 3)
        last_job = time.monotonic()
        await asyncio.sleep(2)  # let the last replies and redraws settle
        pid = ready["pid"]
        pids = {"window Blender with the add-on, connected": (pid, None),
                "  its main thread (Blender, the drainer's timer)": (pid, pid),
                **({"  its bus client thread": (pid, ready["bus_thread"])} if ready.get("bus_thread") else {}),
                "window Blender without the add-on (same seconds)": (bare_pid, None),
                "server": (server.proc.pid, None)}
        await idle_cpu("right after the calls (the timer backing off from 4 ms)", pids, idle_seconds)
        if backoff:  # the timer reaches its idle pace IDLE_AFTER_SECONDS after the last job it ran
            await asyncio.sleep(max(0.0, IDLE_AFTER_SECONDS + 1 - (time.monotonic() - last_job)))
            await idle_cpu(f"idle {IDLE_AFTER_SECONDS:.0f} s after the last call (the timer at its idle pace)", pids,
                           idle_seconds)
    finally:
        worker.stop()
        for proc in (window, bare):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        server.stop()
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--blender", default=os.environ.get("BLENDER_GUI") or "blender",
                        help="the window's Blender, as shell words")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--zip", default=None, help="the extension zip to install (default: dist/'s)")
    parser.add_argument("--no-backoff", action="store_true", help="skip the idle measurement after the back-off")
    args = parser.parse_args()
    run_bench(main, args.quick, shlex.split(args.blender), args.idle_seconds, args.zip or extension_zip(),
              not args.no_backoff)
