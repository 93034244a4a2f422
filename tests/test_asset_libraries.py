"""search_assets / import_asset across Poly Haven, Sketchfab, Poly Pizza and ambientCG, through a real
headless Blender against local fakes; downloads are cached, resumed and checked."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest

from blender_mcp_addon.protocol.answers import read_answer
from tests.blender_worker import Worker
from tests.fakes.libraries import EVIL_ID, HDRI_ID, MATERIAL_ID, PIZZA_ID, POLYPIZZA_KEY, FakeLibraries
from tests.fakes.polyhaven import HDRI_ID as PH_HDRI
from tests.fakes.polyhaven import MODEL_ID as PH_MODEL
from tests.fakes.polyhaven import FakePolyHaven
from tests.fakes.services import API_KEY, MODEL_UID, FakeServices
from tests.helpers import bus_client, wait_online
from tests.test_dispatch import call, completed, style_a

pytestmark = [pytest.mark.blender, pytest.mark.anyio]
TARGET = "blender-libraries-01"


@pytest.fixture(scope="module")
def fakes():
    started = [FakeLibraries().start(), FakePolyHaven().start(), FakeServices().start()]
    yield started
    for fake in started:
        fake.stop()


@pytest.fixture(scope="module")
def libraries(fakes) -> FakeLibraries:
    return fakes[0]


@pytest.fixture(scope="module")
def worker(server, fakes, tmp_path_factory):
    libs, polyhaven, services = fakes
    env = {"BLENDER_MCP_POLYPIZZA_API_URL": f"{libs.url}/polypizza", "BLENDER_MCP_POLYPIZZA_API_KEY": POLYPIZZA_KEY,
           "BLENDER_MCP_AMBIENTCG_API_URL": f"{libs.url}/ambientcg",
           "BLENDER_MCP_POLYHAVEN_API_URL": polyhaven.url,
           "BLENDER_MCP_SKETCHFAB_API_URL": f"{services.url}/sketchfab", "BLENDER_MCP_SKETCHFAB_API_KEY": API_KEY}
    w = Worker(server.url, tmp_path_factory.mktemp("blender-user"), TARGET,
                   "--integrations", "polyhaven,sketchfab,polypizza,ambientcg", env=env)
    yield w
    w.stop()


async def ready(server):
    async with bus_client(server.url, uuid="lib-watch") as watch:
        await wait_online(watch, TARGET, timeout=90)


def png_size(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", data[16:24])


async def search(client, args: dict) -> tuple[dict, list[bytes]]:
    raw = await client.call_tool("blender_search_assets", args)
    answer = read_answer(raw)
    assert answer["status"] == "completed", answer["error"]
    images = [base64.b64decode(c.data) for c in raw.content[1:] if c.type == "image"]
    return json.loads(answer["result"]), images


async def test_one_search_over_every_library_with_thumbnails_as_images(server, worker):
    await ready(server)
    async with await style_a(server.url) as client:
        pizza, images = await search(client, {"source": "polypizza", "query": "tree", "limit": 2})
        assert [a["id"] for a in pizza["assets"]] == [PIZZA_ID, "Other01"]
        assert pizza["assets"][0]["license"] == "CC-BY 3.0" and pizza["assets"][0]["author"] == "someartist"
        assert [a["thumbnail"] for a in pizza["assets"]] == [0, 1] and "images" not in pizza
        assert [png_size(i) for i in images] == [(24, 16), (24, 16)]
        acg, images = await search(client, {"source": "ambientcg", "query": "ground", "type": "textures"})
        assert [(a["id"], a["type"]) for a in acg["assets"]] == [(MATERIAL_ID, "textures"), (EVIL_ID, "textures")]
        assert len(images) == 2
        ph, images = await search(client, {"source": "polyhaven", "query": "sky", "type": "hdris"})
        assert [a["id"] for a in ph["assets"]] == [PH_HDRI] and png_size(images[0]) == (16, 16)
        sf, images = await search(client, {"source": "sketchfab", "query": "table"})
        assert sf["assets"][0]["id"] == MODEL_UID and png_size(images[0]) == (32, 24)
        bare, images = await search(client, {"source": "ambientcg", "thumbnails": False})
        assert len(bare["assets"]) == 3 and images == [] and bare["assets"][0]["thumbnail"] is None
        wrong = await call(client, "blender_search_assets", {"source": "polypizza", "type": "hdris"})
        assert wrong["status"] == "error" and "models only" in wrong["error"]


async def test_import_from_every_library(server, worker, libraries):
    await ready(server)
    async with await style_a(server.url) as client:
        tree = await completed(client, "blender_import_asset",
                               {"source": "polypizza", "id": PIZZA_ID, "target_size": 3.0})
        assert tree["imported_objects"] == ["OakTree"] and abs(tree["scale_factor"] - 3.0) < 1e-6
        ground = await completed(client, "blender_import_asset", {"source": "ambientcg", "id": MATERIAL_ID})
        assert ground["material"] == MATERIAL_ID
        assert set(ground["maps"].values()) == {"Base Color", "Roughness", "Normal"}
        sky = await completed(client, "blender_import_asset", {"source": "ambientcg", "id": HDRI_ID})
        assert sky["type"] == "hdris" and sky["world"]
        rock = await completed(client, "blender_import_asset", {"source": "polyhaven", "id": PH_MODEL})
        assert rock["imported_objects"] == ["FakeRock"] and rock["type"] == "models"
        chair = await completed(client, "blender_import_asset", {"source": "sketchfab", "id": MODEL_UID})
        assert chair["imported_objects"]
        missing = await call(client, "blender_import_asset", {"source": "ambientcg", "id": MATERIAL_ID,
                                                              "resolution": "8k"})
        assert missing["status"] == "error" and "no 8K-JPG download; there are: 1K-JPG, 2K-PNG" in missing["error"]
        evil = await call(client, "blender_import_asset", {"source": "ambientcg", "id": EVIL_ID})
        assert evil["status"] == "error" and "unsafe file name" in evil["error"]
        assert not Path("/tmp/blender_mcp_acg_pwned.txt").exists()


async def test_a_second_import_is_cached_and_a_cut_download_resumes(server, worker, libraries):
    await ready(server)
    async with await style_a(server.url) as client:
        first = await completed(client, "blender_import_asset", {"source": "polypizza", "id": PIZZA_ID})
        served = list(libraries.served)
        again = await completed(client, "blender_import_asset", {"source": "polypizza", "id": PIZZA_ID})
        assert again["file"] == first["file"] and libraries.served == served  # nothing downloaded again
        # as if the connection had dropped half way: the next import asks only for the rest
        path = Path(first["file"])
        whole = path.read_bytes()
        path.unlink()
        path.with_name(path.name + ".part").write_bytes(whole[:100])
        resumed = await completed(client, "blender_import_asset", {"source": "polypizza", "id": PIZZA_ID})
        assert libraries.ranges[-1] == "bytes=100-" and path.read_bytes() == whole
        assert resumed["imported_objects"]


async def test_disabled_sources_and_providers_say_so(server, worker):
    await ready(server)
    async with await style_a(server.url) as client:
        gen = await call(client, "blender_generate_3d", {"provider": "tripo", "prompt": "x"})
        assert gen["status"] == "error" and "Tripo is disabled in the add-on preferences" in gen["error"]
        old = await completed(client, "blender_get_polyhaven_status")
        assert old["enabled"]
