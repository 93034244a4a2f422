"""A headless worker with `--policy safe --checkpoint-before-code`: ordinary scripts run (and are
checkpointed first), scripts that reach outside the scene are refused with reasons the caller can act on."""

from __future__ import annotations

import json

import pytest

from tests.blender_worker import Worker
from tests.test_dispatch import call, completed, style_a_on

pytestmark = [pytest.mark.blender, pytest.mark.anyio]
TARGET = "blender-safe01"


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    return tmp_path_factory.mktemp("safe-output")


@pytest.fixture(scope="module")
def worker(server, output, tmp_path_factory):
    w = Worker(server.url, tmp_path_factory.mktemp("blender-user"), TARGET, "--policy", "safe",
               "--checkpoint-before-code", "--output-dir", str(output), username="alice", password="alice-pw")
    yield w
    w.stop()


@pytest.fixture
async def alice(server, worker):
    async with style_a_on(server.url, TARGET, "alice", "alice-pw") as client:
        yield client


async def test_ordinary_scripts_run_and_each_is_checkpointed_first(alice, output):
    ran = await call(alice, "blender_execute_code", {"code": (
        "import bpy, math\nbpy.ops.mesh.primitive_uv_sphere_add(radius=math.pi / 3)\n"
        "bpy.ops.export_scene.gltf(filepath=OUTPUT_DIR + '/sphere.glb')\nprint(OUTPUT_DIR)")})
    assert ran["status"] == "completed", ran
    assert ran["result"].strip().splitlines()[-1] == str(output) and (output / "sphere.glb").stat().st_size > 1000
    assert ran["details"]["checkpoint"].startswith("before-execute_code-")
    listed = await completed(alice, "blender_list_checkpoints")
    assert ran["details"]["checkpoint"] in [c["name"] for c in listed["checkpoints"]]


async def test_scripts_that_reach_outside_are_refused_with_the_reasons(alice, tmp_path):
    outside = tmp_path / "elsewhere.glb"
    refused = await call(alice, "blender_execute_code", {"code": (
        "import os\nimport bpy\nbpy.app.timers.register(lambda: 1.0)\n"
        f"bpy.ops.export_scene.gltf(filepath={str(outside)!r})")})
    assert refused["status"] == "error" and "safe code policy" in refused["error"], refused
    reasons = [r["reason"] for r in refused["details"]["refusals"]]
    assert any("imports 'os'" in r for r in reasons) and any("bpy.app.timers" in r for r in reasons)
    assert any("outside the output folder" in r for r in reasons)
    assert [r["line"] for r in refused["details"]["refusals"]] == [1, 3, 4]
    assert not outside.exists()
    assert "checkpoint" not in (refused.get("details") or {})  # refused before anything ran, nothing to take back
    scene = json.loads((await call(alice, "blender_get_scene_info"))["result"])
    assert scene["object_count"] >= 3
