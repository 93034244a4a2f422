"""generate_3d / generation_status / import_generated_model with every provider, through a real headless
Blender, against local fakes of Tripo, Meshy, Hunyuan3D and Hyper3D Rodin."""

from __future__ import annotations

from pathlib import Path

import pytest

from blender_mcp_addon.integrations.generators import parse_handle
from blender_mcp_addon.integrations.http import ServiceError
from tests.blender_worker import Worker
from tests.fakes.files import png
from tests.fakes.generators import MESHY_KEY, SECRET_ID, SECRET_KEY, TRIPO_KEY, FakeGenerators
from tests.fakes.services import API_KEY, FakeServices
from tests.helpers import bus_client, wait_online
from tests.test_dispatch import call, completed, style_a

pytestmark = [pytest.mark.blender, pytest.mark.anyio]
TARGET = "blender-generators-01"


@pytest.fixture(scope="module")
def generators():
    fake = FakeGenerators().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def rodin():
    fake = FakeServices().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("blender-user")


@pytest.fixture(scope="module")
def worker(server, generators, rodin, user_folder):
    env = {"BLENDER_MCP_TRIPO_API_URL": f"{generators.url}/tripo", "BLENDER_MCP_TRIPO_API_KEY": TRIPO_KEY,
           "BLENDER_MCP_MESHY_API_URL": f"{generators.url}/meshy", "BLENDER_MCP_MESHY_API_KEY": MESHY_KEY,
           "BLENDER_MCP_HUNYUAN3D_API_URL": f"{generators.url}/hunyuan",
           "BLENDER_MCP_HUNYUAN3D_SECRET_ID": SECRET_ID, "BLENDER_MCP_HUNYUAN3D_SECRET_KEY": SECRET_KEY,
           "BLENDER_MCP_RODIN_API_URL": f"{rodin.url}/rodin", "BLENDER_MCP_RODIN_API_KEY": API_KEY,
           "BLENDER_MCP_GENERATION_POLL_SECONDS": "0.1"}
    w = Worker(server.url, user_folder, TARGET, "--integrations", "rodin,tripo,hunyuan3d,meshy", env=env)
    yield w
    w.stop()


async def ready(server):
    async with bus_client(server.url, uuid="gen-watch") as watch:
        await wait_online(watch, TARGET, timeout=90)


def test_handles_name_the_provider_and_refuse_what_could_become_a_path():
    assert parse_handle("tripo:abc-123") == ("tripo", ["abc-123"])
    assert parse_handle("meshy:image:0190-x") == ("meshy", ["image", "0190-x"])
    assert parse_handle("rodin:task-1:sub/key:with=odd") == ("rodin", ["task-1", "sub/key:with=odd"])
    for bad in ("tripo:../../etc", "nope:1", "meshy:video:1", "rodin:task-1", "hunyuan3d:"):
        with pytest.raises(ServiceError):
            parse_handle(bad)


async def test_tripo_text_generation_with_progress_then_import(server, worker, generators):
    await ready(server)
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value, total, message):
        progress.append((value, message))

    async with await style_a(server.url, progress_handler=on_progress) as client:
        job = await completed(client, "blender_generate_3d", {"provider": "tripo", "prompt": "a red chair"})
        assert job["handle"] == "tripo:tripo-text-1" and job["state"] == "queued" and not job["done"]
        assert generators.bodies[-1] == {"type": "text_to_model", "prompt": "a red chair"}
    # a new session (as after a reconnect) polls and imports from the handle alone
    async with await style_a(server.url, progress_handler=on_progress) as client:
        early = await call(client, "blender_import_generated_model", {"handle": job["handle"], "name": "Chair"})
        assert early["status"] == "error" and "running, not done" in early["error"]
        status = await completed(client, "blender_generation_status", {"handle": job["handle"], "wait_seconds": 10})
        assert status["done"] and status["progress"] == 1.0 and status["provider"] == "tripo"
        assert any(m and "Tripo: " in m for _, m in progress)
        imported = await completed(client, "blender_import_generated_model",
                                   {"handle": job["handle"], "name": "Chair", "target_size": 2.0})
        assert imported["object"] == "Chair" and imported["imported_objects"] == ["Chair"]
        assert abs(imported["scale_factor"] - 2.0) < 1e-6
        assert Path(imported["file"]).name == "model.glb"
        downloads = generators.downloads
        again = await completed(client, "blender_import_generated_model", {"handle": job["handle"], "name": "Chair2"})
        assert again["file"] == imported["file"] and generators.downloads == downloads  # served from the cache


async def test_tripo_image_and_hunyuan3d_generation_wait_until_done(server, worker, generators, tmp_path):
    await ready(server)
    image = tmp_path / "ref.png"
    image.write_bytes(png())
    async with await style_a(server.url) as client:
        tripo = await completed(client, "blender_generate_3d",
                                {"provider": "tripo", "image_paths": [str(image)], "wait_seconds": 10})
        assert tripo["handle"] == "tripo:tripo-image-1" and tripo["done"]
        assert generators.bodies[-1]["file"] == {"type": "png", "file_token": "img-token-1"}
        hunyuan = await completed(client, "blender_generate_3d",
                                  {"provider": "hunyuan3d", "prompt": "a teapot", "wait_seconds": 10})
        assert hunyuan["handle"] == "hunyuan3d:1357924680" and hunyuan["state"] == "done"
        model = await completed(client, "blender_import_generated_model",
                                {"handle": hunyuan["handle"], "name": "Teapot"})
        assert model["object"] == "Teapot" and Path(model["file"]).name == "model.obj"


async def test_meshy_text_and_image_tasks_keep_their_kind_in_the_handle(server, worker, generators, tmp_path):
    await ready(server)
    image = tmp_path / "ref.png"
    image.write_bytes(png())
    async with await style_a(server.url) as client:
        text = await completed(client, "blender_generate_3d", {"provider": "meshy", "prompt": "a boot"})
        assert text["handle"] == "meshy:text:0190-meshy-text"
        assert generators.bodies[-1]["mode"] == "preview"
        picture = await completed(client, "blender_generate_3d", {"provider": "meshy", "image_paths": [str(image)]})
        assert picture["handle"] == "meshy:image:0190-meshy-image"
        assert generators.bodies[-1]["image_url"].startswith("data:image/png;base64,")
        done = await completed(client, "blender_generation_status", {"handle": picture["handle"], "wait_seconds": 10})
        assert done["done"] and done["progress"] == 1.0
        boot = await completed(client, "blender_import_generated_model", {"handle": picture["handle"], "name": "Boot"})
        assert boot["object"] == "Boot"


async def test_rodin_through_generate_3d_and_the_old_tools_side_by_side(server, worker, rodin):
    await ready(server)
    async with await style_a(server.url) as client:
        job = await completed(client, "blender_generate_3d", {"provider": "rodin", "prompt": "a lamp"})
        assert job["handle"] == "rodin:task-0001:sub-0001"
        done = await completed(client, "blender_generation_status", {"handle": job["handle"], "wait_seconds": 10})
        assert done["done"]
        lamp = await completed(client, "blender_import_generated_model", {"handle": job["handle"], "name": "Lamp"})
        assert lamp["object"] == "Lamp"
        old = await completed(client, "blender_import_generated_asset", {"task_uuid": "task-0001", "name": "Lamp2"})
        assert "Lamp2" in old["imported_objects"]
        paired = await completed(client, "blender_import_generated_asset", {"task_uuid": job["handle"], "name": "Lamp3"})
        assert paired["object"] == "Lamp3"  # generation_status / import_generated_asset: the pair takes a handle


async def test_clear_errors(server, worker):
    await ready(server)
    async with await style_a(server.url) as client:
        empty = await call(client, "blender_generate_3d", {"provider": "tripo"})
        assert empty["status"] == "error" and "pass a prompt" in empty["error"]
        bad = await call(client, "blender_generation_status", {"handle": "tripo:../../x"})
        assert bad["status"] == "error" and "not a valid job handle" in bad["error"]
        wrong = await call(client, "blender_generate_3d", {"provider": "dalle", "prompt": "x"})
        assert wrong["status"] == "invalid_arguments"
