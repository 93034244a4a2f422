"""Test helpers: a real server process on 127.0.0.1, and plain fastmcp clients that collect bus records."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from blender_mcp_addon.protocol.answers import read_answer

ROOT = Path(__file__).resolve().parent.parent
MESSAGE_BUS_LOGGER = "_message_bus"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    data_dir: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    log_name: str = "server.log"  # replicas sharing a data folder keep a log each

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        env = {**os.environ, "BLENDER_MCP_PING_INTERVAL": "2", "BLENDER_MCP_PING_TIMEOUT": "2", **self.env}
        log = open(self.data_dir / self.log_name, "ab")  # noqa: SIM115 - kept open for the process's life
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "blender_mcp_server.cli", "serve", "--port", str(self.port),
             "--data-dir", str(self.data_dir)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {(self.data_dir / self.log_name).read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "blender_mcp_server.cli", *args, "--data-dir", str(self.data_dir)],
                              capture_output=True, text=True, input=input, cwd=ROOT, timeout=60)


def start_fresh(folder: Path, **env: str) -> ServerProcess:
    """A started server of its own (for tests that restart, stop or configure it), data under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    return ServerProcess(folder, free_port(), env=env).start()


@contextmanager
def fast_and_sdk_pair(folder: Path, switch: str, **env: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two started servers alike but for the setting `switch` (false on the second), each with a second user
    alice (password alice-pw): for comparing a fast path's answers with the SDK's."""
    pair = (start_fresh(folder / "fast", **env), start_fresh(folder / "slow", **env, **{switch: "false"}))
    try:
        for server in pair:
            server.cli("user", "add", "alice", "--password", "alice-pw")
        yield pair
    finally:
        for server in pair:
            server.stop()


def fast_tool_calls(server: ServerProcess, kind: str) -> float:
    """The server's count of tool calls it answered beside the SDK (tools/fast_calls.py), of one kind."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    found = re.search(rf'^bmcp_fast_tool_calls_total\{{kind="{kind}"\}} (\S+)$', text, re.M)
    assert found is not None, "no bmcp_fast_tool_calls_total{kind} in /metrics"
    return float(found.group(1))


def login(base: str, username: str = "demo", password: str = "demo") -> dict[str, Any]:
    r = httpx.post(f"{base}/auth/login", json={"username": username, "password": password}, timeout=10)
    r.raise_for_status()
    return r.json()


def tool_json(result: Any) -> dict[str, Any]:
    """The JSON answer of a tool call, read as every client of this project reads it."""
    return read_answer(result)


class Collector:
    """A message_handler that keeps bus records (logger `_message_bus`) with their level."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.levels: list[str] = []
        self._event = asyncio.Event()

    async def __call__(self, message: Any) -> None:
        inner = getattr(message, "root", message)
        if getattr(inner, "method", None) != "notifications/message":
            return
        params = inner.params
        if params.logger != MESSAGE_BUS_LOGGER:
            return
        data = params.data if not isinstance(params.data, str) else json.loads(params.data)
        self.records.append(data)
        self.levels.append(params.level)
        self._event.set()

    async def wait_for(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.records) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"got {len(self.records)} of {n} records: {self.records[-3:]}")
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), remaining)
            except TimeoutError:
                pass
        return self.records


async def _quiet(_message: Any) -> None:
    """Bus records are collected by the message handler; skip fastmcp's default log line per record."""


@asynccontextmanager
async def bus_client(base: str, *, token: str | None = None, username: str = "demo", password: str = "demo",
                     uuid: str | None = None, client_type: str = "llm", persistent: bool = False,
                     group_id: str | None = None, level: str | None = "debug", capabilities: list[str] | None = None):
    """A spec Style B client: logged in, subscribed, registered (when `uuid` is given)."""
    token = token or login(base, username, password)["access_token"]
    collector = Collector()
    transport = StreamableHttpTransport(url=f"{base}/mcp", headers={"Authorization": f"Bearer {token}"})
    async with Client(transport, message_handler=collector, log_handler=_quiet, timeout=30) as client:
        if level:
            await client.set_logging_level(level)
        client.collector = collector  # type: ignore[attr-defined]
        client.registration = None  # type: ignore[attr-defined]
        if uuid:
            client.registration = tool_json(await client.call_tool("blender_register_client", {  # type: ignore[attr-defined]
                "client_uuid": uuid, "client_type": client_type, "is_persistent": persistent,
                "capabilities": capabilities or [], "group_id": group_id}))
            await wait_online(client, uuid)
        yield client


async def wait_online(client: Client, uuid: str, online: bool = True, timeout: float = 10.0) -> dict[str, Any]:
    """Registration and the event stream race; wait until the bus lists `uuid` as (off)line."""
    deadline = time.monotonic() + timeout
    while True:
        listing = tool_json(await client.call_tool("blender_list_available_clients", {}))
        for entry in listing["persistent"] + listing["ephemeral"]:
            if entry["uuid"] == uuid and entry["online"] == online:
                return entry
        if time.monotonic() > deadline:
            raise TimeoutError(f"{uuid} not online={online}: {listing}")
        await asyncio.sleep(0.05)


async def send(client: Client, **args: Any) -> dict[str, Any]:
    return tool_json(await client.call_tool("blender_send_message", args))
