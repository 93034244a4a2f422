"""The spec's Style A client (write-your-own-llm-client), as written there; only URL and credentials differ.

Usage: python style_a.py BASE_URL
"""
import sys

import requests

BASE = sys.argv[1]


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

from fastmcp import Client  # noqa: E402
from fastmcp.client.transports import StreamableHttpTransport  # noqa: E402

transport = StreamableHttpTransport(
    url=f"{BASE}/mcp",
    headers={"Authorization": f"Bearer {token}"},
)
import asyncio  # noqa: E402
import json  # noqa: E402


async def main():
    async with Client(transport) as client:
        # Read the active scene. Returns a JSON string; parse it.
        raw = await client.call_tool("blender_get_scene_info", {})
        result = json.loads(raw.content[0].text)
        print(result)
        # {"status": "completed", "command": "get_scene_info",
        # "target_uuid": "blender-demo01", "job_id": "j-...",
        # "result": "{...scene info as JSON string...}", "error": ""}
        # Run arbitrary Python in Blender.
        raw = await client.call_tool("blender_execute_code", {
            "code": "import bpy; print(len(bpy.data.objects))"
        })
        print(json.loads(raw.content[0].text)["result"])  # "3\n"
        # Download a PolyHaven HDRI. Status probe first.
        status = json.loads(
            (await client.call_tool("blender_get_polyhaven_status", {})).content[0].text
        )
        if status["status"] == "completed":
            await client.call_tool("blender_download_polyhaven_asset", {
                "asset_id": "kloofendal_43d_clear_puresky",
                "asset_type": "hdris",
                "resolution": "2k",
            })


asyncio.run(main())
