"""The add-on and the server tell each other their versions when a Blender registers."""

from __future__ import annotations

import asyncio
import time
import tomllib

import blender_mcp_server
import pytest

import blender_mcp_addon
from blender_mcp_addon.client.auth import TokenKeeper
from blender_mcp_addon.client.bus_client import BusClient, ClientConfig
from blender_mcp_addon.protocol.versions import PROTOCOL_VERSION, RELEASE, server_incompatibility
from tests.helpers import ROOT, bus_client, tool_json, wait_online

pytestmark = pytest.mark.anyio


def test_every_place_that_names_the_release_agrees():
    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    bl_info = ".".join(str(n) for n in blender_mcp_addon.bl_info["version"])
    assert {manifest["version"], project["project"]["version"], bl_info, blender_mcp_server.__version__} == {RELEASE}


async def test_register_answers_the_server_versions_and_the_listing_shows_the_clients(server):
    versions = {"addon": RELEASE, "blender": "5.2.2 LTS", "python": "3.14.1", "protocol": PROTOCOL_VERSION}
    async with bus_client(server.url, uuid="ver-llm") as llm:
        answer = tool_json(await llm.call_tool("blender_register_client", {
            "client_uuid": "ver-blender", "client_type": "blender", "is_persistent": False, "versions": versions}))
        assert answer["status"] == "registered"
        assert answer["server"] == {"version": blender_mcp_server.__version__, "protocol": PROTOCOL_VERSION,
                                    "protocols": [PROTOCOL_VERSION, PROTOCOL_VERSION]}
        entry = await wait_online(llm, "ver-blender")
        assert entry["versions"] == versions
        assert (await wait_online(llm, "ver-llm"))["versions"] is None  # a Style B client that said nothing


async def test_a_protocol_the_server_cannot_serve_is_refused_with_the_reason(server):
    async with bus_client(server.url) as llm:
        for protocol, advice in ((PROTOCOL_VERSION + 1, "update the server"), (0, "update the BlenderMCP add-on")):
            answer = tool_json(await llm.call_tool("blender_register_client", {
                "client_uuid": "ver-future", "client_type": "blender", "versions": {"protocol": protocol}}))
            assert answer["status"] == "error" and answer["error"] == "incompatible_version", answer
            assert f"protocol {protocol}" in answer["message"] and advice in answer["message"]
            assert answer["server"]["protocols"] == [PROTOCOL_VERSION, PROTOCOL_VERSION]
        bad = tool_json(await llm.call_tool("blender_register_client", {
            "client_uuid": "ver-bad", "client_type": "blender", "versions": {"blender": "x" * 500}}))
        assert bad["error"] == "invalid_arguments" and "versions" in bad["message"]
        listing = tool_json(await llm.call_tool("blender_list_available_clients", {}))
        listed = {c["uuid"] for c in listing["persistent"] + listing["ephemeral"]}
        assert not listed & {"ver-future", "ver-bad"}


async def test_the_add_on_stops_with_a_clear_error_when_the_server_refuses_its_protocol(server):
    """The extension's own client: an error state with the server's reason, and no retry loop."""
    config = ClientConfig(server_url=server.url, client_uuid="ver-old-addon",
                          versions={"addon": "9.0.0", "protocol": PROTOCOL_VERSION + 5})
    client = BusClient(config, TokenKeeper(server.url, username="demo", password="demo"), on_record=lambda *_: None)
    client.start()
    try:
        deadline = time.monotonic() + 15
        while client.running and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not client.running, "the client kept retrying a server that cannot serve it"
        assert client.state.status == "error"
        assert f"protocol {PROTOCOL_VERSION + 5}" in client.state.reason and "update the server" in client.state.reason
    finally:
        await asyncio.to_thread(client.stop)


def test_the_add_on_refuses_a_server_of_another_protocol():
    assert server_incompatibility({"server": {"version": "0.1.0", "protocols": [1, 1]}}) is None
    assert server_incompatibility({}) is None  # a server from before the exchange: nothing to compare
    newer = server_incompatibility({"server": {"version": "2.0.0", "protocols": [PROTOCOL_VERSION + 1, 9]}})
    assert newer and "server 2.0.0" in newer and "update the add-on" in newer
