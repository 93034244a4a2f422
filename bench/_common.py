"""Shared bits of the benchmarks: a real server on loopback, percentiles, printing."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import ServerProcess, bus_client, free_port  # noqa: E402


def start_server(**env: str) -> ServerProcess:
    data = Path(tempfile.mkdtemp(prefix="bmcp-bench-"))
    return ServerProcess(data, free_port(), env=dict(env)).start()


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """User + system CPU time of a process (all its threads, or the one `tid`), from /proc (clock ticks)."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid is not None else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def report(name: str, latencies_s: list[float] | None = None, count: int | None = None,
           seconds: float | None = None, unit: str = "msg/s") -> None:
    parts = [f"{name:<46}"]
    if latencies_s:
        ms = [v * 1000 for v in latencies_s]
        parts.append(f"p50 {statistics.median(ms):7.2f} ms   p99 {pct(ms, 99):7.2f} ms")
    if count is not None and seconds:
        parts.append(f"{count / seconds:9.0f} {unit}")
    print("   ".join(parts), flush=True)


def cpu_check(label: str = "") -> float:
    """Time a fixed pure-Python loop and print it: this VM's CPU speed swings up to 3x from minute to minute
    (the same loop took 122-461 ms), so every benchmark prints it beside its figures."""
    started = time.perf_counter()
    acc = 0
    for i in range(3_000_000):
        acc += i * i % 7
    ms = (time.perf_counter() - started) * 1000
    print(f"cpu check{' ' + label if label else ''}: reference loop {ms:.0f} ms (this VM has measured 122-461 ms)", flush=True)
    return ms


def run_bench(main: Callable[..., Awaitable[None]], *args: Any) -> None:
    """Run one benchmark between two CPU checks, so its figures can be read against the VM's speed."""
    cpu_check("before")
    asyncio.run(main(*args))
    cpu_check("after")


def raise_fd_limit(n: int) -> None:
    """Room for `n` clients' sockets in this process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * n + 256)), hard))


def idle_clients_child(url: str, token: str, first: int, count: int, conn: Connection, joins_at_once: int = 12,
                       attempts: int = 1) -> None:
    """A child process holding `count` idle bus clients (`idle-<first>` ...) on the server at `url`.

    It sends "joined" once all are registered; then, for each round number it receives, it waits until
    every client has that round's record and sends the time it saw the last one; None ends it. Each join
    is tried `attempts` times (thousands of joins on 2 cores starve some past the client's timeout)."""
    raise_fd_limit(count)
    asyncio.run(_idle_clients(url, token, first, count, conn, joins_at_once, attempts))


async def _idle_clients(url: str, token: str, first: int, count: int, conn: Connection, joins_at_once: int,
                        attempts: int) -> None:
    async with contextlib.AsyncExitStack() as stack:
        sem = asyncio.Semaphore(joins_at_once)
        clients = []

        async def join(i: int) -> None:
            for attempt in range(attempts):
                async with sem:
                    own = contextlib.AsyncExitStack()
                    try:
                        client = await own.enter_async_context(bus_client(url, token=token))
                        await client.call_tool("blender_register_client", {"client_uuid": f"idle-{i:04d}",
                                                                           "client_type": "llm"})
                    except Exception:
                        with contextlib.suppress(Exception):
                            await own.aclose()
                        if attempt == attempts - 1:
                            raise
                        continue
                    stack.push_async_callback(own.aclose)
                    clients.append(client)
                    return

        await asyncio.gather(*(join(i) for i in range(first, first + count)))
        gc.collect()
        gc.freeze()  # the clients' heap is settled; later collections only walk new objects
        conn.send("joined")
        while (round_ := await asyncio.to_thread(conn.recv)) is not None:
            for client in clients:
                await client.collector.wait_for(round_ + 1, timeout=60)
            conn.send(time.monotonic())
