"""The spec's Style B client (write-your-own-llm-client), as written there; only URL and credentials differ.

Usage: python style_b.py BASE_URL TARGET_UUID  (prints the job_update payload)
"""
import asyncio
import json
import sys

import requests
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

BASE = sys.argv[1]
TARGET = sys.argv[2] if len(sys.argv) > 2 else "blender-demo01"


def login(base: str, username: str, password: str) -> dict:
    r = requests.post(
        f"{base}/auth/login",
        json={"username": username, "password": password},
        timeout=10,
    )
    r.raise_for_status()
    return r.json()  # {access_token, refresh_token, token_type, expires_in, user}


auth = login(BASE, "demo", "demo")
token = auth["access_token"]

transport = StreamableHttpTransport(
    url=f"{BASE}/mcp",
    headers={"Authorization": f"Bearer {token}"},
)

MESSAGE_BUS_LOGGER = "_message_bus"


class JobWaiter:
    def __init__(self):
        self._futures: dict[str, asyncio.Future] = {}

    def register(self, job_id: str) -> asyncio.Future:
        loop = asyncio.get_event_loop()
        fut = loop.create_future()
        self._futures[job_id] = fut
        return fut

    def resolve(self, data: dict):
        # called from on_message when a job_update arrives
        payload = data.get("payload", {})
        if payload.get("kind") != "job_update":
            return
        fut = self._futures.pop(payload["job_id"], None)
        if fut and not fut.done():
            fut.set_result(payload)


async def main():
    waiter = JobWaiter()

    async def handler(message):
        inner = getattr(message, "root", message)
        if getattr(inner, "method", None) != "notifications/message":
            return
        params = getattr(inner, "params", None)
        if params is None:
            return
        logger = getattr(params, "logger", None) or (
            params.get("logger") if isinstance(params, dict) else None
        )
        if logger != MESSAGE_BUS_LOGGER:
            return
        data = getattr(params, "data", None) or (
            params.get("data") if isinstance(params, dict) else None
        )
        if isinstance(data, str):
            data = json.loads(data)
        waiter.resolve(data)

    async with Client(transport, message_handler=handler) as client:
        # Subscribe to every priority level (default is "warning").
        await client.set_logging_level("debug")
        # Join the bus.
        my_uuid = "llm-myclient-001"
        await client.call_tool("blender_register_client", {
            "client_uuid": my_uuid,
            "client_type": "llm",
            "is_persistent": False,
            "capabilities": ["chat"],
        })
        # Dispatch a script.
        job_id = "job-abc123"
        fut = waiter.register(job_id)
        await client.call_tool("blender_send_message", {
            "target_uuid": TARGET,
            "from_uuid": my_uuid,
            "priority": "info",
            "payload": {
                "message_type": "job_dispatch",
                "job_id": job_id,
                "script": "import bpy\nprint(len(bpy.data.objects))",
            },
        })
        # Wait for the addon's job_update reply.
        result = await asyncio.wait_for(fut, timeout=30)
        print(json.dumps(result))  # {kind:'job_update', status:'completed', result:'3\n', ...}
        await client.call_tool("blender_unregister_client", {"client_uuid": my_uuid})


asyncio.run(main())
