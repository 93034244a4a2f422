"""The queue store and the rate counters, per call: the embedded SQLite store against Redis (loopback).

Prints p50/p99 per call for each engine, and for Redis the commands and bytes each call costs (from INFO
commandstats and INFO stats over many calls, so one INFO's own bytes hardly count).

    .venv/bin/python bench/bench_store.py [calls]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _common import report, run_bench
from blender_mcp_server.storage.counters import WindowCounter
from blender_mcp_server.storage.records import PersistentClient
from blender_mcp_server.storage.redis import RedisQueueStore, RedisWindowCounter
from blender_mcp_server.storage.sqlite import SqliteStore

from tests.services import RedisServer

RECORD = '{"user_id":"1","from_uuid":"llm","routing":{"type":"direct","target_uuid":"b"},"payload":{"n":1}}'


async def _timed(calls: int, make: Callable[[int], Awaitable[Any]]) -> list[float]:
    latencies = []
    for i in range(calls):
        started = time.perf_counter()
        await make(i)
        latencies.append(time.perf_counter() - started)
    return latencies


def _stats(redis_server: RedisServer) -> tuple[dict[str, int], int, int]:
    with redis_server.client() as r:
        commands = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in r.info("commandstats").items()}
        net = r.info("stats")
    return commands, int(net["total_net_input_bytes"]), int(net["total_net_output_bytes"])


async def main(calls: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bmcp-bench-store-"))
    redis_server = RedisServer(folder / "redis").start()
    sqlite = SqliteStore(folder / "bus.db")
    redis = RedisQueueStore.from_url(redis_server.url)
    try:
        for name, store in (("sqlite", sqlite), ("redis", redis)):
            await store.put_persistent(PersistentClient("1", "b", "blender", [], None, None, None))
            ids: list[int] = []

            async def add(i: int, store: Any = store, ids: list[int] = ids) -> None:
                ids.extend(await store.add_offline_records([("1", "b", 2, time.time(), RECORD)]))

            before = _stats(redis_server)
            report(f"{name}: add_offline_records (1 record)", await _timed(calls, add))
            after = _stats(redis_server)
            if name == "redis":
                used = {c: after[0].get(c, 0) - before[0].get(c, 0) for c in after[0]}
                used = {c: n for c, n in used.items() if n and c != "info"}
                print(f"    per call: {', '.join(f'{c} x{n / calls:g}' for c, n in sorted(used.items()))}; "
                      f"{(after[1] - before[1]) / calls:.0f} bytes in, {(after[2] - before[2]) / calls:.0f} out")
            report(f"{name}: set_offline_since", await _timed(
                calls, lambda i, store=store: store.set_offline_since("1", "b", float(i))))
            report(f"{name}: offline_records ({calls} queued)", await _timed(
                max(1, calls // 50), lambda i, store=store: store.offline_records("1", "b")))
            report(f"{name}: delete_offline_records (1 id)", await _timed(
                calls, lambda i, store=store, ids=ids: store.delete_offline_records([("1", "b", ids[i])])))

        local = WindowCounter(10**9)
        report("in-process: rate hit", await _timed(calls, lambda i: local.hit("1")))
        shared = RedisWindowCounter(redis.redis, "messages", 10**9)
        await shared.hit("1")  # loads the script, so the figures below are the steady state
        before = _stats(redis_server)
        report("redis: rate hit", await _timed(calls, lambda i: shared.hit("1")))
        after = _stats(redis_server)
        used = {c: after[0].get(c, 0) - before[0].get(c, 0) for c in after[0]}
        used = {c: n for c, n in used.items() if n and c != "info"}
        print(f"    per call: {', '.join(f'{c} x{n / calls:g}' for c, n in sorted(used.items()))} "
              f"(the script's own calls included); {(after[1] - before[1]) / calls:.0f} bytes in, "
              f"{(after[2] - before[2]) / calls:.0f} out")
    finally:
        await sqlite.close()
        await redis.close()
        redis_server.stop()


if __name__ == "__main__":
    run_bench(main, int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
