"""`blender-mcp-server setup` against fixture config files of every client, then the real server driven
with the entries it wrote (HTTP with headers, and the stdio bridge), and the add-on installed into real
Blenders."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest
from blender_mcp_server.setup_clients import edit
from blender_mcp_server.setup_clients.locations import Machine, config_path
from fastmcp import Client
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport

from blender_mcp_addon.protocol import client_config as cc
from blender_mcp_addon.protocol.answers import read_answer
from tests.helpers import ROOT, free_port, start_fresh

CODEX_TOML = """# my codex settings
model = "o4-mini"

[mcp_servers.docs]
command = "npx"   # keep this comment
args = ["-y", "docs-mcp"]

[mcp_servers.docs.env]
DOCS_KEY = "k"

[profiles.fast]
model = "gpt-5-mini"
"""

FIXTURES: dict[str, str] = {
    "claude-desktop": json.dumps({"mcpServers": {"fs": {"command": "npx", "args": ["fs"]}},
                                  "globalShortcut": "Ctrl+Space"}, indent=2),
    "claude-code": json.dumps({"numStartups": 7, "projects": {"/x": {"mcpServers": {}}},
                               "mcpServers": {"gh": {"type": "http", "url": "https://gh.example/mcp"}}}),
    "codex": CODEX_TOML,
    "cursor": json.dumps({"mcpServers": {"other": {"url": "http://o/mcp"}}}, indent=4),
    "vscode": json.dumps({"inputs": [], "servers": {"mem": {"type": "stdio", "command": "npx", "args": []}}}),
    "windsurf": json.dumps({"mcpServers": {}}),
    "opencode": json.dumps({"$schema": "https://opencode.ai/config.json", "theme": "dark",
                            "mcp": {"x": {"type": "local", "command": ["x"]}}}, indent=2),
    "antigravity": json.dumps({"mcpServers": {"y": {"serverUrl": "http://y/mcp"}}}),
}


def make_home(root: Path) -> Machine:
    m = Machine.current(root, "linux")
    for client, text in FIXTURES.items():
        path = config_path(client, m)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return m


def run_setup(home: Path, *args: str, password: str = "demo", python: str = sys.executable,
              cwd: Path = ROOT, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "BLENDER_MCP_PASSWORD": password, **(extra_env or {})}
    return subprocess.run([python, "-m", "blender_mcp_server.cli", "setup", "--home", str(home), *args],
                          capture_output=True, text=True, env=env, timeout=120, cwd=cwd, stdin=subprocess.DEVNULL)


def parse(client: str, text: str) -> dict:
    return tomllib.loads(text) if client == "codex" else json.loads(text)


def others(client: str, data: dict) -> dict:
    """The document without the blender entry."""
    data = json.loads(json.dumps(data))
    data.get(cc.CONTAINER[client], {}).pop(cc.SERVER_NAME, None)
    return data


def blender_entry(client: str, text: str) -> dict:
    return parse(client, text)[cc.CONTAINER[client]][cc.SERVER_NAME]


# --- pure parts -------------------------------------------------------------------------------------------

def test_paths_per_system():
    home = Path("/h")
    mac, win, lin = (Machine.current(home, s) for s in ("macos", "windows", "linux"))
    assert config_path("claude-desktop", mac) == home / "Library/Application Support/Claude/claude_desktop_config.json"
    assert config_path("claude-desktop", win) == home / "AppData/Roaming/Claude/claude_desktop_config.json"
    assert config_path("claude-desktop", lin) == home / ".config/Claude/claude_desktop_config.json"
    assert config_path("vscode", win) == home / "AppData/Roaming/Code/User/mcp.json"
    assert config_path("vscode", mac) == home / "Library/Application Support/Code/User/mcp.json"
    assert config_path("codex", lin) == home / ".codex/config.toml"
    assert config_path("claude-code", win) == home / ".claude.json"
    assert config_path("windsurf", mac) == home / ".codeium/windsurf/mcp_config.json"
    assert config_path("antigravity", lin) == home / ".gemini/antigravity/mcp_config.json"
    assert config_path("opencode", win) == home / ".config/opencode/opencode.json"


def test_toml_edit_keeps_comments_and_refuses_inline_entries():
    value = cc.http_entry("codex", "http://127.0.0.1:8000", "t\"ok")
    new = edit.toml_set(CODEX_TOML, value)
    assert new.startswith(CODEX_TOML) and "# keep this comment" in new
    assert tomllib.loads(new)["mcp_servers"]["blender"] == value
    again = edit.toml_set(new, {**value, "url": "http://other/mcp"})
    assert again.count("[mcp_servers.blender]") == 1
    assert edit.toml_remove(again) == CODEX_TOML
    with pytest.raises(edit.EditError):
        edit.toml_set('mcp_servers = { blender = { url = "x" } }\n', value)
    with pytest.raises(edit.EditError):
        edit.toml_set("not = [valid\n", value)


def test_opencode_servers_layout_is_kept():
    text = json.dumps({"mcp": {"servers": {"a": {"type": "local", "command": ["a"]}}}})
    new, created = edit.json_set(text, "mcp", cc.http_entry("opencode", "http://h:1", "T"))
    servers = json.loads(new)["mcp"]["servers"]
    assert not created and set(servers) == {"a", "blender"} and "enabled" not in servers["blender"]
    assert json.loads(edit.json_remove(new, "mcp", drop_empty=True)) == json.loads(text)


def test_snippets_come_from_one_builder():
    line = cc.claude_code_command("http://h:1", "TOK")
    assert line == 'claude mcp add --transport http blender http://h:1/mcp --header "Authorization: Bearer TOK"'
    desktop = json.loads(cc.json_snippet("claude-desktop", "http://h:1", "TOK"))
    assert desktop["mcpServers"]["blender"] == {"command": "blender-mcp-server", "args": ["stdio", "--server", "http://h:1"],
                                                "env": {"BLENDER_MCP_TOKEN": "TOK"}}
    operators = (ROOT / "blender_mcp_addon/ui/operators.py").read_text()
    assert "from ..protocol.client_config import claude_code_command" in operators
    assert "claude mcp add" not in operators.replace("`claude mcp add`", "")


# --- the command against fixtures and a real server -----------------------------------------------------

@pytest.fixture(scope="module")
def bus(tmp_path_factory):
    server = start_fresh(tmp_path_factory.mktemp("setup-server"))
    yield server
    server.stop()


def test_dry_run_changes_nothing_and_mints_nothing(tmp_path, bus):
    m = make_home(tmp_path / "home")
    proc = run_setup(m.home, "--server", bus.url, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    for client, text in FIXTURES.items():
        assert config_path(client, m).read_text() == text
        assert f"--- {client}" in proc.stdout
    assert "+[mcp_servers.blender]" in proc.stdout and "<new API token, minted on apply>" in proc.stdout
    access = httpx.post(f"{bus.url}/auth/login", json={"username": "demo", "password": "demo"}).json()["access_token"]
    names = [t["name"] for t in httpx.get(f"{bus.url}/auth/tokens", headers={"authorization": f"Bearer {access}"}).json()["tokens"]]
    assert not [n for n in names if n.startswith("setup: ")]


def test_without_yes_and_no_terminal_nothing_is_written(tmp_path, bus):
    m = make_home(tmp_path / "home")
    proc = run_setup(m.home, "--server", bus.url, "--clients", "cursor")
    assert proc.returncode == 1 and "--yes" in proc.stderr
    assert config_path("cursor", m).read_text() == FIXTURES["cursor"]


@pytest.mark.parametrize("answer", ["n", "y"])
def test_the_prompt_on_a_terminal(tmp_path, bus, answer):
    import pty

    m = make_home(tmp_path / "home")
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "blender_mcp_server.cli", "setup", "--home", str(m.home),
                             "--server", bus.url, "--clients", "cursor"], stdin=follower,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "BLENDER_MCP_PASSWORD": "demo"})
    os.close(follower)
    os.write(leader, f"{answer}\n".encode())
    out, err = proc.communicate(timeout=60)
    os.close(leader)
    written = json.loads(config_path("cursor", m).read_text())["mcpServers"]
    if answer == "n":
        assert proc.returncode == 1 and "cancelled" in out and "blender" not in written
    else:
        assert proc.returncode == 0, err
        assert written["blender"]["headers"]["Authorization"].startswith("Bearer ey")


def test_bad_files_are_reported_and_left_alone(tmp_path, bus):
    m = make_home(tmp_path / "home")
    broken = config_path("cursor", m)
    broken.write_text('{"mcpServers": {  // a comment\n')
    proc = run_setup(m.home, "--server", bus.url, "--yes", "--clients", "cursor,windsurf")
    assert proc.returncode == 4 and "skipped cursor" in proc.stderr and "not valid JSON" in proc.stderr
    assert broken.read_text() == '{"mcpServers": {  // a comment\n' and not broken.with_name("mcp.json.bak").exists()
    assert "blender" in json.loads(config_path("windsurf", m).read_text())["mcpServers"]


def test_wrong_password_writes_nothing(tmp_path, bus):
    m = make_home(tmp_path / "home")
    proc = run_setup(m.home, "--server", bus.url, "--yes", "--clients", "cursor", password="nope")
    assert proc.returncode == 3 and "login refused" in proc.stderr
    assert config_path("cursor", m).read_text() == FIXTURES["cursor"]


def test_print_shows_every_clients_snippet_and_touches_nothing(tmp_path):
    proc = run_setup(tmp_path, "--print", "--server", "http://127.0.0.1:8000")
    assert proc.returncode == 0 and not any(tmp_path.iterdir())
    assert proc.stdout.count("# ") == len(cc.CLIENTS) and '"serverUrl": "http://127.0.0.1:8000/mcp"' in proc.stdout
    assert '[mcp_servers.blender]\nurl = "http://127.0.0.1:8000/mcp"' in proc.stdout


def test_unknown_client_is_a_usage_error(tmp_path):
    proc = run_setup(tmp_path, "--clients", "emacs")
    assert proc.returncode == 2 and "unknown client" in proc.stderr



@pytest.mark.anyio
async def test_setup_writes_working_entries_and_remove_restores(tmp_path, bus):
    m = make_home(tmp_path / "home")
    access = httpx.post(f"{bus.url}/auth/login", json={"username": "demo", "password": "demo"}).json()["access_token"]
    auth = {"authorization": f"Bearer {access}"}

    def new_tokens() -> list[dict]:  # the other tests share this server: only the ones minted here
        return [t for t in httpx.get(f"{bus.url}/auth/tokens", headers=auth).json()["tokens"] if t["jti"] not in before]

    before = {t["jti"] for t in httpx.get(f"{bus.url}/auth/tokens", headers=auth).json()["tokens"]}
    proc = run_setup(m.home, "--server", bus.url, "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tokens = {t["name"]: t for t in new_tokens()}
    assert len(tokens) == len(FIXTURES)
    for client, original in FIXTURES.items():
        path = config_path(client, m)
        assert path.with_name(path.name + ".bak").read_text() == original
        assert others(client, parse(client, path.read_text())) == parse(client, original)
        assert not tokens[f"setup: {client}"]["revoked"]
    assert config_path("codex", m).read_text().startswith(CODEX_TOML)  # comments and layout kept

    # Every HTTP entry, as its client would use it: URL + headers.
    for client in FIXTURES:
        value = blender_entry(client, config_path(client, m).read_text())
        if cc.is_stdio(value):
            continue
        url = value.get("url") or value["serverUrl"]
        headers = value.get("headers") or value["http_headers"]
        async with Client(StreamableHttpTransport(url=url, headers=headers), timeout=30) as client_:
            listing = read_answer(await client_.call_tool("blender_list_available_clients", {}))
            assert set(listing) == {"persistent", "ephemeral"}, client

    # Claude Desktop's stdio entry: exactly the command, args and env it wrote (no PYTHONPATH help).
    desktop = blender_entry("claude-desktop", config_path("claude-desktop", m).read_text())
    assert set(desktop["env"]) == {"BLENDER_MCP_TOKEN"}
    async with Client(StdioTransport(command=desktop["command"], args=desktop["args"], env=desktop["env"]),
                      timeout=60) as client_:
        listing = read_answer(await client_.call_tool("blender_list_available_clients", {}))
        assert set(listing) == {"persistent", "ephemeral"}

    # Running again replaces the entry and revokes the token it replaces.
    again = run_setup(m.home, "--server", bus.url, "--yes", "--clients", "cursor")
    assert again.returncode == 0, again.stderr
    cursor_tokens = [t for t in new_tokens() if t["name"] == "setup: cursor"]
    assert sorted(bool(t["revoked"]) for t in cursor_tokens) == [False, True]

    removed = run_setup(m.home, "--server", bus.url, "--yes", "--remove")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    for client, original in FIXTURES.items():
        assert parse(client, config_path(client, m).read_text()) == parse(client, original), client
    assert config_path("codex", m).read_text() == CODEX_TOML
    assert len(new_tokens()) == len(FIXTURES) + 1 and all(t["revoked"] for t in new_tokens())
    nothing = run_setup(m.home, "--server", bus.url, "--yes", "--remove")
    assert nothing.returncode == 0 and "nothing to remove" in nothing.stdout


def test_a_named_client_without_a_file_gets_one_and_remove_deletes_it(tmp_path, bus):
    home = tmp_path / "empty-home"
    home.mkdir()
    proc = run_setup(home, "--server", bus.url, "--yes", "--clients", "vscode")
    assert proc.returncode == 0, proc.stderr
    path = config_path("vscode", Machine.current(home, "linux"))
    assert blender_entry("vscode", path.read_text())["type"] == "http"
    assert "/dev/null" in proc.stdout
    assert run_setup(home, "--server", bus.url, "--yes", "--remove", "--clients", "vscode").returncode == 0
    assert not path.exists()


# --- the add-on into real Blenders -----------------------------------------------------------------------

CHROOTS = Path(os.environ.get("BMCP_CHROOT_CACHE", "/var/cache/blender-mcp/chroots"))
# The matrix's row with a real binary names it in BLENDER; elsewhere Debian's own 3.4 (legacy installer) and
# trixie's 4.3 (extension CLI), when this machine has them. The bpy-module rows have no binary to install into.
if os.environ.get("BLENDER"):
    BLENDERS = [pytest.param(os.environ["BLENDER"], id="BLENDER")]
elif os.environ.get("BLENDER_PYTHON"):
    BLENDERS = []
else:
    BLENDERS = [pytest.param("/usr/bin/blender", id="debian-3.4"),
                pytest.param(f"{CHROOTS / 'trixie.run'} blender", id="trixie-4.3")]


@pytest.mark.blender
@pytest.mark.parametrize("blender", BLENDERS)
def test_install_addon_into_a_real_blender(tmp_path, blender):
    first = shlex.split(blender)[0]
    if not os.access(first, os.X_OK):
        pytest.skip(f"{first} is not here")
    zips = sorted((ROOT / "dist").glob("blender_mcp-*-linux_x64.zip"))
    if not zips:
        pytest.skip("no add-on zip in dist/ (python build_addon.py)")
    zip_path = tmp_path / zips[-1].name  # the chroot sees the host's /tmp
    shutil.copy(zips[-1], zip_path)
    user = tmp_path / "blender-user"
    env = {"BLENDER_USER_RESOURCES": str(user), "BLENDER_USER_CONFIG": str(user / "config"),
           "BLENDER_USER_SCRIPTS": str(user / "scripts"), "BMCP_CHROOT_BINDS": str(ROOT)}
    started = time.time()
    proc = run_setup(tmp_path, "--install-addon", "--blender", blender, "--zip", str(zip_path), extra_env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "installed and enabled" in proc.stdout
    # Checked by its own Blender run, not only by what setup printed.
    probe = subprocess.run([*shlex.split(blender), "-b", "--python-expr",
                            "import bpy; print('KEYS', sorted(bpy.context.preferences.addons.keys()))"],
                           capture_output=True, text=True, timeout=180, env={**os.environ, **env})
    keys = next(line for line in probe.stdout.splitlines() if line.startswith("KEYS"))
    assert ("'blender_mcp'" in keys) if "3.4" in proc.stdout.split("\n")[0] else ("bl_ext.user_default.blender_mcp" in keys)
    assert any(user.rglob("blender_manifest.toml")), "the add-on is not in the tmp user folder"
    real = Path.home() / ".config" / "blender"
    assert not [p for p in real.rglob("*") if p.stat().st_mtime >= started], "the real user config was touched"


# --- the wheel, outside a checkout ------------------------------------------------------------------------

def _local_index_env() -> dict[str, str] | None:
    """pip's sources limited to the machine's local (file://) indexes: the isolated build env's setuptools
    comes from there, never from the network."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    urls = [u for line in out.splitlines() if "index-url" in line
            for u in line.split("=", 1)[1].strip().strip("'\"").split() if u.startswith("file://")]
    if not urls:
        return None
    return {"PIP_INDEX_URL": urls[0], "PIP_EXTRA_INDEX_URL": " ".join(urls[1:]), "PIP_FIND_LINKS": ""}


def _copy_source(dest: Path) -> None:
    """The project as an sdist would hold it, with dist/'s zip for this machine only."""
    keep = ["pyproject.toml", "README.md", "MANIFEST.in", "build_backend", "blender_mcp_addon", "server"]
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.zip", "*.egg-info")
    for name in keep:
        src = ROOT / name
        (shutil.copytree(src, dest / name, ignore=ignore) if src.is_dir() else shutil.copy(src, dest / name))
    (dest / "dist").mkdir()
    for z in (ROOT / "dist").glob("blender_mcp-*-linux_x64.zip"):
        shutil.copy(z, dest / "dist" / z.name)


@pytest.mark.anyio
async def test_the_wheel_serves_and_sets_up_from_a_clean_venv(tmp_path):
    index = _local_index_env()
    if index is None:
        pytest.skip("no local package index: building the wheel would need the network")
    if not list((ROOT / "dist").glob("blender_mcp-*-linux_x64.zip")):
        pytest.skip("no add-on zip in dist/ (python build_addon.py)")
    src, out, venv, outside = tmp_path / "src", tmp_path / "wheels", tmp_path / "venv", tmp_path / "elsewhere"
    src.mkdir()
    outside.mkdir()
    _copy_source(src)
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "-w", str(out)],
                           capture_output=True, text=True, timeout=300, env={**clean, **index})
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    wheel = next(out.glob("blender_mcp_bus-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, timeout=300, env=clean)
    # The dependencies: this interpreter's site-packages, as a plain path (its .pth files, among them a
    # checkout's editable install, are not run from there).
    import site
    purelib = next(Path(p) for p in (venv / "lib").glob("python3*/site-packages"))
    (purelib / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    exe = venv / "bin" / "blender-mcp-server"
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import blender_mcp_server, blender_mcp_addon; "
                            "print(blender_mcp_server.__file__, blender_mcp_addon.__file__)"],
                           capture_output=True, text=True, env=clean, cwd=outside, check=True).stdout
    assert where.count(str(venv)) == 2, where

    port = free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen([str(exe), "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
                              stdout=log, stderr=subprocess.STDOUT, env=clean, cwd=outside)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "the wheel's server did not start"
            time.sleep(0.1)
        assert httpx.post(f"{base}/auth/login", json={"username": "demo", "password": "demo"}).status_code == 200

        m = make_home(tmp_path / "home")
        env = {**clean, "BLENDER_MCP_PASSWORD": "demo"}
        dry = subprocess.run([str(exe), "setup", "--home", str(m.home), "--server", base, "--dry-run"],
                             capture_output=True, text=True, env=env, cwd=outside, timeout=120)
        assert dry.returncode == 0, dry.stderr
        assert all(f"--- {c}" in dry.stdout for c in FIXTURES) and f'"command": "{exe}"' in dry.stdout
        assert all(config_path(c, m).read_text() == t for c, t in FIXTURES.items())

        carried = subprocess.run([str(venv / "bin" / "python"), "-c", "from blender_mcp_server.setup_clients."
                                  "blender import find_zip; print(find_zip(None))"],
                                 capture_output=True, text=True, env=clean, cwd=outside, check=True).stdout.strip()
        assert carried.startswith(str(purelib)) and carried.endswith("linux_x64.zip"), carried
        if os.access("/usr/bin/blender", os.X_OK):  # the carried zip into a real Blender, from the wheel
            user = tmp_path / "blender-user"
            blender_env = {**env, "BLENDER_USER_RESOURCES": str(user), "BLENDER_USER_CONFIG": str(user / "config"),
                           "BLENDER_USER_SCRIPTS": str(user / "scripts")}
            addon = subprocess.run([str(exe), "setup", "--install-addon", "--blender", "/usr/bin/blender"],
                                   capture_output=True, text=True, env=blender_env, cwd=outside, timeout=300)
            assert addon.returncode == 0 and "installed and enabled" in addon.stdout, addon.stdout + addon.stderr

        wrote = subprocess.run([str(exe), "setup", "--home", str(m.home), "--server", base, "--yes",
                                "--clients", "claude-desktop"], capture_output=True, text=True, env=env,
                               cwd=outside, timeout=120)
        assert wrote.returncode == 0, wrote.stderr
        desktop = blender_entry("claude-desktop", config_path("claude-desktop", m).read_text())
        assert desktop["command"] == str(exe)
        async with Client(StdioTransport(command=desktop["command"], args=desktop["args"], env=desktop["env"],
                                         cwd=str(outside)), timeout=60) as client_:
            listing = read_answer(await client_.call_tool("blender_list_available_clients", {}))
            assert set(listing) == {"persistent", "ephemeral"}
    finally:
        server.terminate()
        server.wait(15)
        log.close()
