"""A plain fastmcp bus subscriber in its own process, for fault tests.

Usage: python subscriber.py BASE_URL UUID [GROUP]. Prints "ready" once registered, then one line per
bus record: "<payload.n>" so the parent can count and order them. BUS_PERSISTENT=1 registers it persistent.
"""
import asyncio
import json
import os
import sys

import httpx
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

BASE, UUID = sys.argv[1], sys.argv[2]
GROUP = sys.argv[3] if len(sys.argv) > 3 else None


async def main() -> None:
    token = httpx.post(f"{BASE}/auth/login", json={"username": os.environ.get("BUS_USER", "demo"),
                                                     "password": os.environ.get("BUS_PASSWORD", "demo")}).json()["access_token"]

    async def handler(message):
        inner = getattr(message, "root", message)
        if getattr(inner, "method", None) == "notifications/message" and inner.params.logger == "_message_bus":
            data = inner.params.data
            print(json.dumps(data.get("payload", {}).get("n")), flush=True)

    transport = StreamableHttpTransport(url=f"{BASE}/mcp", headers={"Authorization": f"Bearer {token}"})
    async with Client(transport, message_handler=handler, timeout=60) as client:
        await client.set_logging_level("debug")
        await client.call_tool("blender_register_client", {"client_uuid": UUID, "client_type": "blender",
                                                           "is_persistent": os.environ.get("BUS_PERSISTENT") == "1", "group_id": GROUP})
        print("ready", flush=True)
        await asyncio.Event().wait()


asyncio.run(main())
