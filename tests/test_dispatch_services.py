"""Hyper3D Rodin and Sketchfab through the dispatch tools, against local fakes of both services."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import pytest

from tests.blender_worker import Worker
from tests.fakes.files import png
from tests.fakes.services import API_KEY, EVIL_UID, MODEL_UID, FakeServices
from tests.helpers import bus_client, wait_online
from tests.test_dispatch import call, completed, style_a

pytestmark = [pytest.mark.blender, pytest.mark.anyio]
TARGET = "blender-services-01"


@pytest.fixture(scope="module")
def services():
    fake = FakeServices().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def worker(server, services, tmp_path_factory):
    env = {"BLENDER_MCP_RODIN_API_URL": f"{services.url}/rodin", "BLENDER_MCP_RODIN_API_KEY": API_KEY,
           "BLENDER_MCP_SKETCHFAB_API_URL": f"{services.url}/sketchfab", "BLENDER_MCP_SKETCHFAB_API_KEY": API_KEY}
    w = Worker(server.url, tmp_path_factory.mktemp("blender-user"), TARGET,
                   "--integrations", "polyhaven,rodin,sketchfab", env=env)
    yield w
    w.stop()


async def ready(server):
    async with bus_client(server.url, uuid="svc-watch") as watch:
        await wait_online(watch, TARGET, timeout=90)


async def test_rodin_text_and_image_generation_then_import(server, worker, tmp_path):
    await ready(server)
    async with await style_a(server.url) as client:
        status = await completed(client, "blender_get_hyper3d_status")
        assert status["enabled"] and status["has_api_key"]
        task = await completed(client, "blender_generate_hyper3d_model_via_text",
                                      {"text_prompt": "a wooden chair", "bbox_condition": [1, 1, 2]})
        assert task["task_uuid"] == "task-0001" and task["subscription_key"] == "sub-0001"
        image = tmp_path / "ref.png"
        image.write_bytes(png())
        task2 = await completed(client, "blender_generate_hyper3d_model_via_images",
                                       {"input_image_paths": [str(image)]})
        assert task2["task_uuid"] == "task-0001"
        first = await completed(client, "blender_poll_rodin_job_status", {"subscription_key": "sub-0001"})
        second = await completed(client, "blender_poll_rodin_job_status", {"subscription_key": "sub-0001"})
        assert first["done"] is False and second["done"] is True
        imported = await completed(client, "blender_import_generated_asset",
                                          {"task_uuid": "task-0001", "name": "Chair"})
        assert "Chair" in imported["imported_objects"]
        missing = await call(client, "blender_generate_hyper3d_model_via_images", {"input_image_paths": ["/nope.png"]})
        assert missing["status"] == "error" and "no image file" in missing["error"]


async def test_sketchfab_search_preview_and_download(server, worker):
    await ready(server)
    async with await style_a(server.url) as client:
        status = await completed(client, "blender_get_sketchfab_status")
        assert status == {"enabled": True, "username": "test-artist", "message": "logged in as test-artist"}
        found = await completed(client, "blender_search_sketchfab_models", {"query": "table"})
        assert found["models"][0]["uid"] == MODEL_UID and found["models"][0]["license"] == "CC Attribution"
        raw = await client.call_tool("blender_get_sketchfab_model_preview", {"uid": MODEL_UID})
        assert raw.content[1].type == "image"
        data = base64.b64decode(raw.content[1].data)
        assert struct.unpack(">II", data[16:24]) == (32, 24)
        model = await completed(client, "blender_download_sketchfab_model",
                                       {"uid": MODEL_UID, "target_size": 2.0})
        assert model["imported_objects"] == ["FakeRock"] and abs(model["scale_factor"] - 2.0) < 1e-6
        evil = await call(client, "blender_download_sketchfab_model", {"uid": EVIL_UID})
        assert evil["status"] == "error" and "unsafe file name" in evil["error"]
        assert not Path("/tmp/blender_mcp_zip_pwned.txt").exists()
