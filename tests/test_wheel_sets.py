"""The zip's wheels, Python by Python: what `legacy.py` picks for each imports and runs the bus client.

Each interpreter starts isolated (`-I -S`: no site-packages at all), unpacks the zip's wheels the way the
legacy add-on path does, and connects the add-on's own bus client to the real server. Python 3.10 is the
one blender.org's Blender 3.4-4.1 run, 3.11 Blender 4.2-5.0 and Debian 12's 3.4, 3.13 Blender 5.1+ and
Debian 13's 4.3, 3.14 Debian sid's 5.2 (its system Python, in the chroot the Blender tests use).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from blender_mcp_addon import wheel_tags
from tests.blender_worker import extension_zip
from tests.blenders import chroot
from tests.blenders.matrix import python_for
from tests.helpers import ROOT, bus_client, wait_online

pytestmark = pytest.mark.anyio

SCRIPT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from blender_mcp import legacy
vendor = legacy.activate_wheels()
import cryptography, fastmcp, pydantic_core
from blender_mcp.client.auth import TokenKeeper
from blender_mcp.client.bus_client import BusClient, ClientConfig
server, uuid = sys.argv[2], sys.argv[3]
versions = {"addon": "0.1.0", "python": ".".join(map(str, sys.version_info[:3])), "protocol": 1}
client = BusClient(ClientConfig(server_url=server, client_uuid=uuid, versions=versions),
                   TokenKeeper(server, username="demo", password="demo"), on_record=lambda *_: None)
client.start()
deadline = time.time() + 30
while client.state.status != "connected" and time.time() < deadline:
    time.sleep(0.05)
print("READY " + json.dumps({"state": client.state.describe(), "binary": pydantic_core._pydantic_core.__file__,
                             "from_vendor": all(m.__file__.startswith(str(vendor)) for m in
                                                (cryptography, fastmcp, pydantic_core))}), flush=True)
sys.stdin.readline()  # the test has seen this client on the bus
client.stop()
"""


def interpreters() -> dict[str, list[str]]:
    """Python version -> command, for each Python this machine (or the sid chroot) has."""
    found: dict[str, list[str]] = {}
    for version in ("3.10", "3.11", "3.13"):
        try:
            found[version] = [python_for(version)]
        except RuntimeError:
            pass
    if "3.11" not in found:
        found["3.11"] = [getattr(sys, "_base_executable", sys.executable)]
    if chroot.ready("sid"):
        found["3.14"] = [str(chroot.launcher_of("sid")), "python3"]
    return found


PYTHONS = interpreters()


def test_each_python_finds_one_complete_set_of_wheels_in_the_zip():
    with zipfile.ZipFile(extension_zip()) as zf:
        names = zf.namelist()
    shared = [n.rsplit("/", 1)[1] for n in names if "/wheels/" in n]
    for version in ((3, 10), (3, 11), (3, 13), (3, 14)):
        own = [n.rsplit("/", 1)[1] for n in names if f"/legacy_wheels/{wheel_tags.folder_for(version)}/" in n]
        picked = wheel_tags.pick(shared, own, version)
        projects = [wheel_tags.distribution(w) for w in picked]
        assert len(projects) == len(set(projects)), f"Python {version}: two wheels of one project"
        assert {"pydantic-core", "fastmcp-slim", "cryptography", "requests"} <= set(projects), version
        core = next(w for w in picked if wheel_tags.distribution(w) == "pydantic-core")
        assert f"cp{version[0]}{version[1]}" in core, core


@pytest.mark.parametrize("version", sorted(PYTHONS))
async def test_the_wheels_picked_for_this_python_import_and_join_the_bus(server, tmp_path, version):
    with zipfile.ZipFile(extension_zip()) as zf:
        zf.extractall(tmp_path)
    uuid = f"wheels-py{version.replace('.', '')}"
    proc = subprocess.Popen([*PYTHONS[version], "-I", "-S", "-c", SCRIPT, str(tmp_path), server.url, uuid],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=tmp_path, env={**os.environ, "BMCP_CHROOT_BINDS": str(ROOT)})
    try:
        lines = []
        assert proc.stdout is not None and proc.stdin is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("READY "):
                break
        assert lines and lines[-1].startswith("READY "), "".join(lines)[-3000:]
        ready = json.loads(lines[-1][len("READY "):])
        assert ready["state"] == "connected" and ready["from_vendor"], ready
        assert f"cpython-{version.replace('.', '')}" in ready["binary"], ready  # this Python's own build
        async with bus_client(server.url) as llm:
            entry = await wait_online(llm, uuid, timeout=30)
        assert entry["versions"]["python"].startswith(version)
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
