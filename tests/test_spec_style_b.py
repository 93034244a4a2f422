"""The spec's Style B example, run as its own process, against a Blender side made of a plain fastmcp client."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT, bus_client, tool_json

pytestmark = pytest.mark.anyio


async def test_spec_style_b_client_gets_its_job_update(server):
    async with bus_client(server.url, uuid="blender-demo01", client_type="blender", persistent=True) as blender:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "tests/spec_clients/style_b.py"), server.url, "blender-demo01",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        [dispatch] = await blender.collector.wait_for(1, timeout=30)
        assert dispatch["payload"]["message_type"] == "job_dispatch"
        assert dispatch["from_uuid"] == "llm-myclient-001" and dispatch["job_id"] == "job-abc123"
        reply = tool_json(await blender.call_tool("blender_job_update", {
            "job_id": "job-abc123", "status": "completed", "result": "3\n", "from_uuid": "blender-demo01"}))
        assert reply["routing"] == {"type": "direct", "target_uuid": "llm-myclient-001"}
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()[-2000:]
        result = json.loads(out.decode().strip().splitlines()[-1])
        assert result["kind"] == "job_update" and result["status"] == "completed" and result["result"] == "3\n"
