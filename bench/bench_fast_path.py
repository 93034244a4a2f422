"""The server's cost of one blender_job_updates call, on its fast path and the SDK's way, interleaved.

    .venv/bin/python bench/bench_fast_path.py [--calls N] [--rounds R]

Two servers alike but for FAST_JOB_UPDATES, each with one registered client posting the extension's own
request (direct_call.request_body) back to back on its session; rounds alternate between them so the
VM's noise falls on both. Prints, per server, the median over rounds of the server's CPU per call and the
call's p50/p99 as the client sees it. The update names no job (an invalid id), so what is measured is
the way in and out, not the bus.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import httpx
from _common import cpu_seconds, pct, run_bench, start_server

from blender_mcp_addon.client.direct_call import ACCEPT, request_body, sdk_session_parts
from tests.helpers import bus_client, login


async def main(calls: int, rounds: int) -> None:
    servers = {"fast path": start_server(), "SDK's way": start_server(BLENDER_MCP_FAST_JOB_UPDATES="false")}
    cpu: dict[str, list[float]] = {name: [] for name in servers}
    lat: dict[str, list[float]] = {name: [] for name in servers}
    try:
        async with contextlib.AsyncExitStack() as stack:
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
            sessions = {}
            for name, server in servers.items():
                token = login(server.url)["access_token"]
                client = await stack.enter_async_context(bus_client(server.url, token=token, uuid="bench-fast",
                                                                    client_type="blender"))
                session, session_id, protocol = sdk_session_parts(client)  # type: ignore[misc]
                headers = {"accept": ACCEPT, "content-type": "application/json", "mcp-session-id": session_id,
                           "mcp-protocol-version": protocol, "authorization": f"Bearer {token}"}
                sessions[name] = (session, headers, server)
            arguments = {"updates": [{"job_id": " ", "status": "completed", "result": {"n": 1}}]}
            for round_no in range(rounds + 1):  # round 0 warms up
                for name, (session, headers, server) in sessions.items():
                    url = f"{server.url}/mcp"
                    assert server.proc is not None
                    before = cpu_seconds(server.proc.pid)
                    for _ in range(calls):
                        request_id = session._request_id
                        session._request_id += 1
                        t0 = time.perf_counter()
                        answer = await http.post(url, content=request_body(request_id, "blender_job_updates", arguments),
                                                 headers=headers)
                        elapsed = time.perf_counter() - t0
                        assert answer.status_code == 200 and b'"isError":false' in answer.content, answer.text
                        if round_no:
                            lat[name].append(elapsed)
                    if round_no:
                        cpu[name].append((cpu_seconds(server.proc.pid) - before) / calls)
    finally:
        for server in servers.values():
            server.stop()
    for name in servers:
        print(f"blender_job_updates, {name:<10}  server CPU/call {statistics.median(cpu[name]) * 1e3:5.3f} ms   "
              f"p50 {pct(lat[name], 50) * 1e3:5.2f} ms   p99 {pct(lat[name], 99) * 1e3:5.2f} ms", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    run_bench(main, args.calls, args.rounds)
