"""blender:// resources, name completion, prompts and tool annotations against a real headless Blender worker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from blender_mcp_server.tools.dispatch_tools import MULTI_SERVICE
from fastmcp import Client
from mcp import McpError, types

from blender_mcp_addon.protocol.answers import DISPATCH_KEYS
from blender_mcp_addon.protocol.catalog import COMMANDS
from tests.blender_worker import Worker
from tests.helpers import ROOT, bus_client, wait_online
from tests.test_dispatch import call, style_a

pytestmark = [pytest.mark.blender, pytest.mark.anyio]
TARGET = "blender-res01"
NAME_TEMPLATES = ("blender://object/{name}{?target}", "blender://material/{name}{?target}",
                  "blender://collection/{name}{?target}")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """The worker's output folder: the only one its save_blend may write in."""
    return tmp_path_factory.mktemp("outputs")


@pytest.fixture(scope="module")
def worker(server, outputs, tmp_path_factory):
    w = Worker(server.url, tmp_path_factory.mktemp("blender-user"), TARGET, "--output-dir", str(outputs))
    yield w
    w.stop()


async def ready(server) -> None:
    async with bus_client(server.url, uuid="resources-watch") as watch:
        await wait_online(watch, TARGET, timeout=90)


async def read(client: Client, uri: str) -> Any:
    contents = await client.read_resource(uri)
    assert len(contents) == 1 and contents[0].mimeType == "application/json", contents
    return json.loads(contents[0].text)


async def read_error(client: Client, uri: str) -> tuple[int, dict[str, Any]]:
    """The JSON-RPC error code and the dispatch answer a failed read carries."""
    with pytest.raises(McpError) as exc:
        await client.read_resource(uri)
    data = exc.value.error.data
    assert isinstance(data, dict) and set(DISPATCH_KEYS) <= set(data), exc.value.error
    assert data["status"] in exc.value.error.message  # the message alone says what happened too
    return exc.value.error.code, data


async def complete(client: Client, template: str, argument: str, value: str, **context: str) -> types.Completion:
    ref = types.ResourceTemplateReference(type="ref/resource", uri=template)
    return await client.complete(ref, {"name": argument, "value": value}, context or None)


async def test_listings_prompts_and_tool_annotations(server):
    async with await style_a(server.url) as client:
        assert client.initialize_result.capabilities.completions is not None
        assert {str(r.uri) for r in await client.list_resources()} == {
            "blender://scene", "blender://file", "blender://clients"}
        templates = {t.uriTemplate: t for t in await client.list_resource_templates()}
        assert set(templates) == {*NAME_TEMPLATES, "blender://scene{?target}", "blender://file{?target}"}
        assert all(t.mimeType == "application/json" and t.description for t in templates.values())
        prompts = {p.name: p for p in await client.list_prompts()}
        assert set(prompts) == {"blender_edit_scene", "blender_inspect_scene", "blender_recover"}
        assert [a.name for a in prompts["blender_edit_scene"].arguments if a.required] == ["task"]
        got = await client.get_prompt("blender_edit_scene", {"task": "make the cube red"})
        text = got.messages[0].content.text
        assert "make the cube red" in text
        for tool in ("blender_look", "blender_checkpoint", "blender_restore_checkpoint", "blender_undo",
                     "blender_describe_api", "blender://scene"):
            assert tool in text, tool
        recover = (await client.get_prompt("blender_recover", {})).messages[0].content.text
        assert "blender_restore_checkpoint" in recover
        assert client.initialize_result.instructions and "blender_look" in client.initialize_result.instructions
        tools = {t.name: t for t in await client.list_tools()}
        for spec in COMMANDS:
            hints = tools[spec.tool_name].annotations
            assert hints is not None and hints.title, spec.name
            assert hints.readOnlyHint is not None
            assert hints.openWorldHint == (spec.integration is not None or spec.name in MULTI_SERVICE)
        assert tools["blender_get_scene_info"].annotations.readOnlyHint
        assert tools["blender_execute_code"].annotations.destructiveHint


async def test_each_resource_reads_the_running_blender(server, worker, outputs):
    await ready(server)
    async with await style_a(server.url) as client:
        scene = await read(client, "blender://scene")
        assert scene["object_count"] == 3 and {o["name"] for o in scene["objects"]} == {"Camera", "Cube", "Light"}
        contents = await client.read_resource("blender://scene")
        assert contents[0].meta["target_uuid"] == TARGET and contents[0].meta["job_id"].startswith("j-")
        cube = await read(client, "blender://object/Cube")
        assert cube["type"] == "MESH" and cube["mesh"]["vertices"] == 8
        mat = await read(client, "blender://material/Material")
        assert mat["objects"] == ["Cube"] and mat["base_color"][:3] == [0.8, 0.8, 0.8] and mat["roughness"] == 0.5
        assert mat["node_tree"]["principled_bsdf"] == "Principled BSDF"
        assert {"from": "Principled BSDF.BSDF", "to": "Material Output.Surface"} in mat["node_tree"]["links"]
        coll = await read(client, "blender://collection/Collection")
        assert coll["objects"] == ["Camera", "Cube", "Light"] and coll["parents"] == ["Scene Collection"]
        assert coll["view_layer"]["visible"] and not coll["hide_render"]
        clients = await read(client, "blender://clients")
        listed = {c["uuid"]: c for c in clients["persistent"] + clients["ephemeral"]}
        assert listed[TARGET]["online"] and listed[TARGET]["client_type"] == "blender"
        assert clients == json.loads((await client.call_tool("blender_list_available_clients", {})).content[0].text)

        # a name that needs escaping, a hidden collection and a missing texture, made the Style A way
        missing = outputs / "gone" / "wood.png"
        made = await call(client, "blender_execute_code", {"code": (
            "import bpy\n"
            "o = bpy.data.objects.new('My Cube/2', bpy.data.objects['Cube'].data)\n"
            "c = bpy.data.collections.new('Props')\nbpy.context.scene.collection.children.link(c)\n"
            "c.objects.link(o)\nc.hide_render = True\n"
            "bpy.context.view_layer.layer_collection.children['Props'].exclude = True\n"
            "img = bpy.data.images.new('wood.png', 4, 4)\n"
            f"img.source = 'FILE'\nimg.filepath = {str(missing)!r}\n"
            "m = bpy.data.materials['Material']\n"
            "tex = m.node_tree.nodes.new('ShaderNodeTexImage')\ntex.image = img\n"
            "m.node_tree.links.new(tex.outputs['Color'], m.node_tree.nodes['Principled BSDF'].inputs['Base Color'])\n")})
        assert made["status"] == "completed", made["error"]
        odd = await read(client, f"blender://object/{quote('My Cube/2', safe='')}")
        assert odd["name"] == "My Cube/2" and odd["collections"] == ["Props"]
        props = await read(client, "blender://collection/Props")
        assert props["hide_render"] and props["view_layer"]["exclude"] and props["objects"] == ["My Cube/2"]
        mat = await read(client, "blender://material/Material")
        assert mat["base_color_from"] == "Image Texture"
        assert mat["images"] == [{"name": "wood.png", "source": "FILE", "packed": False,
                                  "filepath": str(missing), "abspath": str(missing), "exists": False}]
        blend = outputs / "scene.blend"
        saved = await call(client, "blender_save_blend", {"filepath": str(blend)})
        assert saved["status"] == "completed", saved["error"]
        info = await read(client, "blender://file")
        # the bpy module keeps is_dirty set after a save (a window clears it), so only its type is sure here
        assert info["filepath"] == str(blend) and info["saved"] and isinstance(info["is_dirty"], bool)
        # saving made the path relative to the file; abspath is what was checked
        assert {"kind": "image", "name": "wood.png", "filepath": "//gone/wood.png",
                "abspath": str(missing)} in info["missing_files"]
        assert info["libraries"] == []
        await call(client, "blender_execute_code", {"code": "import bpy\nbpy.data.objects['Cube'].location.x = 1"})
        assert (await read(client, "blender://file"))["is_dirty"] is True

        # ?target= names the Blender explicitly, on static URIs and on templates alike
        assert (await read(client, f"blender://scene?target={TARGET}"))["object_count"] == 4
        assert (await read(client, f"blender://file?target={TARGET}"))["filepath"] == str(blend)
        assert (await read(client, f"blender://object/Cube?target={TARGET}"))["name"] == "Cube"


async def test_names_complete_from_the_running_blender(server, worker):
    await ready(server)
    async with await style_a(server.url) as client:
        objects = await complete(client, NAME_TEMPLATES[0], "name", "c")
        assert objects.values[:2] == ["Camera", "Cube"] and objects.hasMore is False
        assert (await complete(client, NAME_TEMPLATES[0], "name", "Cu")).values[0] == "Cube"
        assert (await complete(client, NAME_TEMPLATES[1], "name", "Mat")).values == ["Material"]
        colls = await complete(client, NAME_TEMPLATES[2], "name", "")
        assert {"Scene Collection", "Collection"} <= set(colls.values)
        aimed = await complete(client, NAME_TEMPLATES[0], "name", "Li", target=TARGET)
        assert aimed.values == ["Light"]
        assert (await complete(client, NAME_TEMPLATES[0], "target", "blender-r")).values == [TARGET]
        assert (await complete(client, NAME_TEMPLATES[0], "name", "zzz")).values == []
        assert (await complete(client, "blender://nothing/{x}", "x", "a")).values == []


async def test_unknown_names_and_targets_are_style_a_errors(server, worker):
    await ready(server)
    async with await style_a(server.url) as client:
        for uri, command in (("blender://object/Nope", "get_object_info"),
                             ("blender://material/Nope", "get_material_info"),
                             ("blender://collection/Nope", "get_collection_info")):
            code, answer = await read_error(client, uri)
            assert code == -32002 and answer["status"] == "error" and answer["command"] == command
            assert "named 'Nope'" in answer["error"] and answer["target_uuid"] == TARGET
        code, answer = await read_error(client, "blender://object/Cube?target=blender-nope")
        assert code == -32002 and answer["status"] == "unknown_target" and answer["target_uuid"] == "blender-nope"
        assert "blender_list_available_clients" in answer["hint"]
        with pytest.raises(McpError) as exc:
            await client.read_resource("blender://nothing")
        assert exc.value.error.code == -32002


async def test_no_blender_and_two_blenders(server, worker):
    await ready(server)
    async with await style_a(server.url, "alice", "alice-pw") as alice:
        code, none = await read_error(alice, "blender://scene")
        assert code == -32002 and none["status"] == "no_client" and "Login then Connect" in none["hint"]
        assert (await read_error(alice, "blender://object/Cube"))[1]["status"] == "no_client"
        assert (await complete(alice, NAME_TEMPLATES[0], "name", "C")).values == []  # nothing to ask: empty
        # demo's Blender is not alice's to read: the same unknown_target a tool call gets
        code, foreign = await read_error(alice, f"blender://scene?target={TARGET}")
        assert foreign["status"] == "unknown_target"
        async with (bus_client(server.url, username="alice", password="alice-pw", uuid="fake-bl-1", client_type="blender"),
                    bus_client(server.url, username="alice", password="alice-pw", uuid="fake-bl-2", client_type="blender")):
            code, amb = await read_error(alice, "blender://file")
            assert amb["status"] == "ambiguous_target" and amb["candidates"] == ["fake-bl-1", "fake-bl-2"]
            assert (await complete(alice, NAME_TEMPLATES[0], "target", "fake")).values == ["fake-bl-1", "fake-bl-2"]
            assert (await read(alice, "blender://clients"))["ephemeral"][0]["uuid"] == "fake-bl-1"


def inspector() -> list[str] | None:
    """The MCP Inspector's CLI when npm has it cached: tests must not reach the network."""
    npx = shutil.which("npx")
    if npx is None:
        return None
    cmd = [npx, "--offline", "--yes", "@modelcontextprotocol/inspector", "--cli"]
    try:
        probe = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60,
                               env={**os.environ, "npm_config_offline": "true"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return cmd if probe.returncode == 0 and "--cli" in probe.stdout else None


async def test_the_mcp_inspector_reads_resources_through_the_stdio_bridge(server, worker, tmp_path):
    """The Inspector CLI sends no Authorization header over HTTP, so it drives the stdio bridge, as a
    desktop client would; the bridge forwards resources, templates and prompts to the bus server."""
    cmd = inspector()
    if cmd is None:
        pytest.skip("the MCP Inspector CLI is not in the npm cache (this test does not download it)")
    await ready(server)
    # A config file, because the Inspector reads a bare --server (the bridge's own flag) as its own option.
    config = tmp_path / "inspector.json"
    config.write_text(json.dumps({"mcpServers": {"blender": {
        "command": sys.executable,
        "args": ["-m", "blender_mcp_server.cli", "stdio", "--server", server.url, "--username", "demo"],
        "env": {"BLENDER_MCP_PASSWORD": "demo",
                "PYTHONPATH": os.pathsep.join([str(ROOT / "server"), str(ROOT)])}}}}))
    env = {**os.environ, "npm_config_offline": "true"}

    def run(*method: str) -> dict[str, Any]:
        proc = subprocess.run([*cmd, "--config", str(config), "--server", "blender", *method], capture_output=True,
                              text=True, timeout=120, env=env, cwd=ROOT)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return json.loads(proc.stdout)

    uris = {r["uri"] for r in run("--method", "resources/list")["resources"]}
    assert {"blender://scene", "blender://file", "blender://clients"} <= uris
    templates = {t["uriTemplate"] for t in run("--method", "resources/templates/list")["resourceTemplates"]}
    assert set(NAME_TEMPLATES) <= templates
    cube = run("--method", "resources/read", "--uri", "blender://object/Cube")["contents"][0]
    assert json.loads(cube["text"])["type"] == "MESH"
    assert {p["name"] for p in run("--method", "prompts/list")["prompts"]} >= {"blender_edit_scene"}
    tools = {t["name"]: t for t in run("--method", "tools/list")["tools"]}
    assert tools["blender_execute_code"]["annotations"]["destructiveHint"] is True
    assert tools["blender_get_file_info"]["annotations"]["readOnlyHint"] is True
