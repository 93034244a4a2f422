"""describe_api, checkpoints and undo on a real headless Blender worker with the built zip."""

from __future__ import annotations

import pytest

from tests.blender_worker import Worker
from tests.test_dispatch import call, completed, style_a_on

pytestmark = [pytest.mark.blender, pytest.mark.anyio]
TARGET = "blender-history01"


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    return tmp_path_factory.mktemp("history-output")


@pytest.fixture(scope="module")
def worker(server, output, tmp_path_factory):
    w = Worker(server.url, tmp_path_factory.mktemp("blender-user"), TARGET, "--output-dir", str(output),
               username="bob", password="bob-pw", env={"BLENDER_MCP_MAX_CHECKPOINTS": "3"})
    yield w
    w.stop()


async def run(client, code: str) -> str:
    answer = await call(client, "blender_execute_code", {"code": code})
    assert answer["status"] == "completed", answer
    return answer["result"]


@pytest.fixture
async def bob(server, worker):
    async with style_a_on(server.url, TARGET, "bob", "bob-pw") as client:
        yield client


async def test_describe_api_answers_from_the_running_blender(bob):
    obj = await completed(bob, "blender_describe_api", {"path": "bpy.types.Object"})
    assert obj["kind"] == "type" and obj["base"] == "ID" and obj["blender"]
    location = next(p for p in obj["properties"] if p["identifier"] == "location")
    assert location["type"] == "FLOAT" and location["array_length"] == 3 and location["subtype"] == "TRANSLATION"
    levels = await completed(bob, "blender_describe_api", {"path": "bpy.types.SubsurfModifier.levels"})
    assert levels["type"] == "INT" and levels["min"] == 0 and levels["default"] == 1
    op = await completed(bob, "blender_describe_api", {"path": "bpy.ops.object.mode_set"})
    mode = next(p for p in op["parameters"] if p["identifier"] == "mode")
    assert "EDIT" in [i["identifier"] for i in mode["items"]]
    await run(bob, "bpy.context.view_layer.objects.active = None")
    refused = await completed(bob, "blender_describe_api", {"path": "bpy.ops.object.mode_set"})
    assert refused["poll"] is False and "active object" in refused["poll_message"]
    data = await completed(bob, "blender_describe_api", {"path": 'bpy.data.objects["Cube"]'})
    assert data["type"] == "bpy.types.Object" and data["values"]["name"] == "Cube"
    found = await completed(bob, "blender_describe_api", {"search": "subdivision modifier levels"})
    assert "bpy.types.SubsurfModifier.levels" in [m["path"] for m in found["matches"]]
    for bad, why in (('__import__("os").system("true")', "only names"), ('bpy.data.objects[name]', "literal"),
                     ("bpy.app.__class__", "private"), ('bpy.data.objects["Nope"]', "no ['Nope']")):
        answer = await call(bob, "blender_describe_api", {"path": bad})
        assert answer["status"] == "error" and why in answer["error"], (bad, answer)
    both = await call(bob, "blender_describe_api", {"path": "bpy.types.Object", "search": "x"})
    assert both["status"] == "error" and "not both" in both["error"]


async def test_checkpoints_are_named_bounded_and_restorable(bob, output):
    blend = output / "scene.blend"
    await completed(bob, "blender_save_blend", {"filepath": str(blend)})
    for n in range(4):
        await run(bob, f"bpy.ops.mesh.primitive_cube_add(location=({n}, 3, 0))")
        made = await completed(bob, "blender_checkpoint", {"name": f"step-{n}"})
        assert made["path"].startswith(str(output / "scene_checkpoints"))
    listed = await completed(bob, "blender_list_checkpoints")
    assert [c["name"] for c in listed["checkpoints"]] == ["step-1", "step-2", "step-3"]  # the bound is 3
    count = "print(len(bpy.data.objects))"
    before = await run(bob, count)
    await run(bob, "bpy.data.objects.remove(bpy.data.objects['Cube'])")
    restored = await completed(bob, "blender_restore_checkpoint", {"name": "step-1"})
    assert restored["file"] == str(blend) and restored["saved_current_as"].startswith("before-restore-")
    after = await run(bob, count)
    assert int(after) == int(before) - 2  # step-1 had two fewer cubes than step-3
    names = [c["name"] for c in (await completed(bob, "blender_list_checkpoints"))["checkpoints"]]
    assert "step-1" in names and restored["saved_current_as"] in names
    missing = await call(bob, "blender_restore_checkpoint", {"name": "nope"})
    assert missing["status"] == "error" and "step-1" in missing["error"]
    bad = await call(bob, "blender_checkpoint", {"name": "../escape"})
    assert bad["status"] == "error" and "checkpoint name" in bad["error"]


async def test_undo_and_redo_say_clearly_that_headless_blender_has_none(bob):
    for tool in ("blender_undo", "blender_redo"):
        answer = await call(bob, tool)
        assert answer["status"] == "error" and "need a Blender window" in answer["error"]
