"""Shared bits of the benchmarks: a real server on loopback, percentiles, printing."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import ServerProcess, free_port  # noqa: E402


def start_server(**env: str) -> ServerProcess:
    data = Path(tempfile.mkdtemp(prefix="bmcp-bench-"))
    return ServerProcess(data, free_port(), env=dict(env)).start()


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
