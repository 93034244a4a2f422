"""Bus subscribers that cost almost nothing to run, to measure the server's fan-out rather than its receivers.

A fastmcp client spends ~200 us of CPU on each record it receives (SSE parsing in
httpx-sse, pydantic validation, anyio streams, and the SDK formatting every message
for a debug log line that is then thrown away). 10,000 deliveries/s would need two
cores for the receivers alone on this two-core machine. These subscribers speak the
same Streamable HTTP MCP as any client (initialize, logging/setLevel, tools/call
blender_register_client, then the standing GET stream), and then just split the SSE
stream on blank lines and `json.loads` each record, checking what they got.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from multiprocessing.connection import Connection
from typing import Any

import httpx

PROTOCOL = "2025-06-18"


class LeanSession:
    def __init__(self, http: httpx.AsyncClient, token: str):
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
                        "Content-Type": "application/json"}
        self._id = 0

    async def rpc(self, method: str, params: dict[str, Any] | None = None, *, notify: bool = False) -> Any:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params or {}}
        if not notify:
            self._id += 1
            message["id"] = self._id
        response = await self.http.post("/mcp", json=message, headers=self.headers)
        response.raise_for_status()
        if "mcp-session-id" in response.headers:
            self.headers["mcp-session-id"] = response.headers["mcp-session-id"]
            self.headers["mcp-protocol-version"] = PROTOCOL
        if notify:
            return None
        body = response.text
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            body = next(line[5:] for line in body.splitlines() if line.startswith("data:"))
        answer = json.loads(body)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    async def answer(self, request_id: Any) -> None:
        """Answer a ping. One that fails (a pooled connection the server just closed) costs nothing here:
        the server pings again, and a subscriber it drops would show as missed records."""
        with contextlib.suppress(httpx.HTTPError):
            await self.http.post("/mcp", json={"jsonrpc": "2.0", "id": request_id, "result": {}},
                                 headers=self.headers)

    async def join(self, uuid: str, group_id: str) -> None:
        await self.rpc("initialize", {"protocolVersion": PROTOCOL, "capabilities": {},
                                      "clientInfo": {"name": "bench-lean", "version": "1"}})
        await self.rpc("notifications/initialized", notify=True)
        await self.rpc("logging/setLevel", {"level": "debug"})
        result = await self.rpc("tools/call", {"name": "blender_register_client", "arguments": {
            "client_uuid": uuid, "client_type": "llm", "group_id": group_id}})
        if json.loads(result["content"][0]["text"]).get("status") != "registered":
            raise RuntimeError(f"register {uuid}: {result}")

    async def receive(self, expected: int, opened: asyncio.Event) -> list[int]:
        """Read the GET stream until `expected` bus records arrived; returns their payloads' `i`."""
        seen: list[int] = []
        pongs: set[asyncio.Task[None]] = set()
        headers = {k: v for k, v in self.headers.items() if k != "Content-Type"}
        async with self.http.stream("GET", "/mcp", headers=headers, timeout=None) as response:
            response.raise_for_status()
            opened.set()
            buffer = b""
            async for chunk in response.aiter_raw():
                buffer += chunk
                *events, buffer = buffer.split(b"\r\n\r\n")
                for event in events:
                    start = event.find(b"data: ")
                    if start < 0:
                        continue  # a keep-alive comment
                    message = json.loads(event[start + 6:])
                    params = message.get("params") or {}
                    if message.get("method") == "notifications/message" and params.get("logger") == "_message_bus":
                        seen.append(params["data"]["payload"]["i"])
                    elif message.get("method") == "ping":  # the server's liveness check: answer, or go offline
                        pong = asyncio.create_task(self.answer(message["id"]))
                        pongs.add(pong)  # held until done: the loop keeps only weak references to tasks
                        pong.add_done_callback(pongs.discard)
                if len(seen) >= expected:
                    return seen
        return seen


def child(url: str, token: str, group_id: str, first: int, count: int, expected: int, conn: Connection) -> None:
    asyncio.run(_child(url, token, group_id, first, count, expected, conn))


async def _child(url: str, token: str, group_id: str, first: int, count: int, expected: int,
                 conn: Connection) -> None:
    limits = httpx.Limits(max_connections=2 * count + 8, max_keepalive_connections=2 * count + 8)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
        sessions = [LeanSession(http, token) for _ in range(count)]
        for i, session in enumerate(sessions):
            await session.join(f"lean-{group_id}-{first + i}", group_id)
        opened = [asyncio.Event() for _ in sessions]
        tasks = [asyncio.create_task(s.receive(expected, o)) for s, o in zip(sessions, opened, strict=True)]
        for event in opened:
            await event.wait()
        conn.send("ready")
        results = await asyncio.gather(*tasks)
        done = time.monotonic()
        ok = all(sorted(r) == list(range(expected)) for r in results)
        conn.send(("done", done, ok))
