"""The fast path for the callers' dispatch tools (tools/fast_calls.py): the SDK's answer, byte for byte, for
the calls it takes, and what the SDK does around a waiting call: progress, cancellation, the session's
end, keep-alive comments, no idle reap mid-call.

Two servers alike but for fast_dispatch; each case runs on both and compares the whole HTTP answers. The
caller posts raw requests on a session it opened itself (as any MCP client does); the Blender is a
stand-in registered through fastmcp that answers each job with the updates a test gives it. The
server's `bmcp_fast_tool_calls_total{kind="dispatch"}` says which way a call went."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from mcp.types import LATEST_PROTOCOL_VERSION

from tests.helpers import ServerProcess, bus_client, fast_and_sdk_pair, fast_tool_calls, login

pytestmark = pytest.mark.anyio

ACCEPT = "application/json, text/event-stream"
BLENDER = "fd-blender"


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Any:
    """Two servers alike but for fast_dispatch, quick to reap idle sessions (2 s)."""
    with fast_and_sdk_pair(tmp_path_factory.mktemp("fast-dispatch"), "BLENDER_MCP_FAST_DISPATCH",
                           BLENDER_MCP_SESSION_IDLE_TIMEOUT="2") as servers:
        yield servers


fast_dispatches = functools.partial(fast_tool_calls, kind="dispatch")


class RawCaller:
    """An MCP session opened and used with plain HTTP requests, so each whole answer can be compared."""

    def __init__(self, server: ServerProcess, token: str) -> None:
        self.url = f"{server.url}/mcp"
        self.token = token
        self.http = httpx.AsyncClient(timeout=60)
        self.session_id = ""
        self.next_id = 1
        self._stream: asyncio.Task[None] | None = None

    def headers(self, **changes: str | None) -> dict[str, str]:
        headers = {"accept": ACCEPT, "content-type": "application/json", "mcp-session-id": self.session_id,
                   "mcp-protocol-version": LATEST_PROTOCOL_VERSION, "authorization": f"Bearer {self.token}"}
        for key, value in changes.items():
            headers.pop(key.replace("_", "-"), None)
            if value is not None:
                headers[key.replace("_", "-")] = value
        return headers

    async def open(self) -> None:
        opened = await self.http.post(self.url, headers=self.headers(mcp_session_id=None), json={
            "jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": LATEST_PROTOCOL_VERSION, "capabilities": {},
                "clientInfo": {"name": "raw-caller", "version": "1"}}})
        assert opened.status_code == 200, opened.text
        self.session_id = opened.headers["mcp-session-id"]
        ready = await self.http.post(self.url, headers=self.headers(), json={
            "jsonrpc": "2.0", "method": "notifications/initialized"})
        assert ready.status_code == 202, ready.text
        await self.open_stream()

    async def open_stream(self) -> None:
        """The standing GET stream every stock client keeps (the SDK then counts the session as busy)."""
        started = asyncio.Event()

        async def listen() -> None:
            async with self.http.stream("GET", self.url, headers=self.headers()) as stream:
                started.set()
                async for _ in stream.aiter_bytes():
                    pass

        self._stream = asyncio.create_task(listen())
        await asyncio.wait_for(started.wait(), 10)

    async def close_stream(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            with contextlib.suppress(BaseException):
                await self._stream
            self._stream = None

    def body(self, name: str, arguments: Any, request_id: int | None = None, meta: Any = "token",
             **params: Any) -> tuple[int, bytes]:
        """fastmcp's client sends the request id as a progress token on every call (`meta="token"`)."""
        if request_id is None:
            request_id, self.next_id = self.next_id, self.next_id + 1
        call: dict[str, Any] = {"name": name, **({} if arguments is None else {"arguments": arguments}), **params}
        if meta == "token":
            call["_meta"] = {"progressToken": request_id}
        elif meta is not None:
            call["_meta"] = meta
        return request_id, json.dumps({"method": "tools/call", "params": call, "jsonrpc": "2.0",
                                       "id": request_id}).encode()

    async def post(self, body: bytes, **header_changes: str | None) -> httpx.Response:
        return await self.http.post(self.url, content=body, headers=self.headers(**header_changes))

    async def call(self, name: str, arguments: Any, **kwargs: Any) -> httpx.Response:
        return await self.post(self.body(name, arguments, **kwargs)[1])

    async def cancel(self, request_id: int, **header_changes: str | None) -> httpx.Response:
        return await self.post(json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled",
                                           "params": {"requestId": request_id, "reason": "enough"}}).encode(),
                               **header_changes)

    async def close(self) -> None:
        await self.close_stream()
        with contextlib.suppress(httpx.HTTPError):
            await self.http.delete(self.url, headers=self.headers())
        await self.http.aclose()


@asynccontextmanager
async def raw_caller(server: ServerProcess, username: str = "demo", password: str = "demo") -> AsyncIterator[RawCaller]:
    caller = RawCaller(server, login(server.url, username, password)["access_token"])
    await caller.open()
    try:
        yield caller
    finally:
        await caller.close()


async def next_job(blender: Any, seen: set[str], timeout: float = 10.0) -> str:
    """The id of the next command_dispatch the stand-in Blender receives."""
    for _ in range(int(timeout / 0.02)):
        for record in blender.collector.records:
            payload = record.get("payload", {})
            if payload.get("message_type") == "command_dispatch" and payload["job_id"] not in seen:
                seen.add(payload["job_id"])
                return str(payload["job_id"])
        await asyncio.sleep(0.02)
    raise TimeoutError("no command_dispatch reached the stand-in Blender")


async def answer(blender: Any, job_id: str, *updates: dict[str, Any]) -> None:
    for update in updates:
        await blender.call_tool("blender_job_updates", {"updates": [{"job_id": job_id, **update}]})


def comparable(response: httpx.Response, *job_ids: str) -> tuple[int, dict[str, str], str]:
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "mcp-session-id", "content-length")}
    text = response.text
    for job_id in job_ids:
        text = text.replace(job_id, "<job>")
    return response.status_code, headers, re.sub(r": ping - [^\r\n]*", ": ping - <when>", text)


def messages(text: str) -> list[Any]:
    """The JSON-RPC messages of an answer's body, a JSON one or an SSE stream."""
    if text.startswith("{"):
        return [json.loads(text)]
    return [json.loads(line[len("data: "):]) for line in text.split("\r\n") if line.startswith("data: ")]


async def on_both(pair: Any, case: Any) -> list[Any]:
    """`case(server)` on both servers; what each returned, and whether only the fast one took the fast path."""
    results, counts = [], []
    for server in pair:
        before = fast_dispatches(server)
        results.append(await case(server))
        counts.append(fast_dispatches(server) - before)
    return [results, counts]


NO_BLENDER = [
    ("no_client", "blender_get_scene_info", {}),
    ("no arguments at all", "blender_get_scene_info", None),
    ("unknown_target", "blender_execute_code", {"code": "x = 1", "target_uuid": "nobody"}),
    ("a bad _timeout", "blender_execute_code", {"code": "x = 1", "_timeout": -1}),
    ("a bad target_uuid", "blender_execute_code", {"code": "x = 1", "target_uuid": 5}),
    ("a param the command refuses", "blender_get_scene_info", {"limit": "ten", "colour": "red"}),
    ("a missing param", "blender_execute_code", {}),
]


@pytest.mark.parametrize(("what", "name", "arguments"), NO_BLENDER, ids=[c[0] for c in NO_BLENDER])
async def test_answers_without_a_blender_are_the_sdks_byte_for_byte(pair, what: str, name: str, arguments: Any) -> None:
    async def case(server: ServerProcess) -> Any:
        async with raw_caller(server) as caller:
            return comparable(await caller.call(name, arguments))

    (fast, slow), counts = await on_both(pair, case)
    assert counts == [1, 0], what
    assert fast == slow, what
    assert fast[0] == 200 and fast[1]["content-type"] == "application/json", what


async def run_job(server: ServerProcess, name: str, arguments: dict[str, Any], *updates: dict[str, Any],
                  meta: Any = "token") -> tuple[int, dict[str, str], str]:
    """A call answered by a stand-in Blender with `updates`, compared with its job id masked."""
    async with bus_client(server.url, uuid=BLENDER, client_type="blender") as blender, raw_caller(server) as caller:
        call = asyncio.ensure_future(caller.call(name, arguments, meta=meta))
        job_id = await next_job(blender, set())
        await answer(blender, job_id, *updates)
        return comparable(await call, job_id)


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(64))).decode()
JOBS = [
    ("completed", "blender_get_scene_info", {"limit": 3},
     [{"status": "completed", "result": {"name": "Scène", "objects": [1.5, None, True]}}]),
    ("an error", "blender_execute_code", {"code": "1/0"},
     [{"status": "error", "error": "ZeroDivisionError: division by zero", "details": {"line": 1}}]),
    ("progress first", "blender_execute_code", {"code": "x = 1"},
     [{"status": "running", "progress": 0.25, "message": "a quarter"}, {"status": "running", "message": "more"},
      {"status": "completed", "result": {"ok": True}}]),
    ("an image", "blender_get_viewport_screenshot", {"max_size": 64},
     [{"status": "completed", "result": {"image_base64": PNG, "mime_type": "image/png", "width": 8}}]),
    ("a broken image", "blender_look", {}, [{"status": "completed", "result": {"image_base64": "not base64!"}}]),
]


@pytest.mark.parametrize(("what", "name", "arguments", "updates"), JOBS, ids=[c[0] for c in JOBS])
async def test_job_answers_are_the_sdks_byte_for_byte(pair, what: str, name: str, arguments: dict[str, Any],
                                                      updates: list[dict[str, Any]]) -> None:
    async def case(server: ServerProcess) -> Any:
        return await run_job(server, name, arguments, *updates)

    (fast, slow), counts = await on_both(pair, case)
    assert counts == [1, 0], what
    assert fast == slow, what
    if what == "progress first":  # progress arrives on the answer's stream, so it stays SSE
        assert fast[1]["content-type"] == "text/event-stream" and fast[2].count("notifications/progress") == 2
        assert '"progress":0.25' in fast[2] and '"message":"a quarter"' in fast[2]


async def test_a_call_without_a_progress_token_gets_no_progress(pair) -> None:
    async def case(server: ServerProcess) -> Any:
        return await run_job(server, "blender_execute_code", {"code": "x = 1"},
                             {"status": "running", "progress": 0.5}, {"status": "completed", "result": 1}, meta=None)

    (fast, slow), counts = await on_both(pair, case)
    assert counts == [1, 0] and fast == slow
    assert fast[1]["content-type"] == "application/json" and "progress" not in fast[2]


async def test_what_the_fast_path_leaves_is_answered_by_the_sdk(pair) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("an unknown tool", {"name": "blender_no_such_command", "arguments": {}}),
        ("arguments that are no object", {"name": "blender_get_scene_info", "arguments": [1, 2]}),
        ("another params key", {"name": "blender_get_scene_info", "arguments": {}, "task": {"ttl": 1000}}),
        ("another _meta key", {"name": "blender_get_scene_info", "arguments": {}, "meta": {"fastmcp": {"version": "1"}}}),
        ("a progress token of a falsy request id", {"name": "blender_get_scene_info", "arguments": {}, "request_id": 0,
                                                    "meta": {"progressToken": 0}}),
        ("a bool progress token", {"name": "blender_get_scene_info", "arguments": {}, "meta": {"progressToken": True}}),
        ("a bus tool", {"name": "blender_list_available_clients", "arguments": {}}),
    ]
    for what, call in cases:
        async def case(server: ServerProcess, call: dict[str, Any] = call) -> Any:
            async with raw_caller(server) as caller:
                call = dict(call)
                return comparable(await caller.post(caller.body(call.pop("name"), call.pop("arguments"), **call)[1]))

        (fast, slow), counts = await on_both(pair, case)
        assert counts == [0, 0], what
        assert fast == slow, what

    headers: list[tuple[str, dict[str, str | None]]] = [
        ("no accept", {"accept": "application/json"}),
        ("a protocol the SDK does not speak", {"mcp_protocol_version": "1999-01-01"}),
        ("an unknown session", {"mcp_session_id": "0" * 32}),
        ("no session", {"mcp_session_id": None}),
    ]
    for what, change in headers:
        async def case(server: ServerProcess, change: dict[str, str | None] = change) -> Any:
            async with raw_caller(server) as caller:
                return comparable(await caller.post(caller.body("blender_get_scene_info", {})[1], **change))

        (fast, slow), counts = await on_both(pair, case)
        assert counts == [0, 0], what
        assert fast == slow, what


async def test_another_users_token_cannot_call_on_a_session(pair) -> None:
    fast, _ = pair
    alice = login(fast.url, "alice", "alice-pw")["access_token"]
    async with raw_caller(fast) as caller:
        before = fast_dispatches(fast)
        refused = await caller.post(caller.body("blender_get_scene_info", {})[1], authorization=f"Bearer {alice}")
        assert refused.status_code == 404 and fast_dispatches(fast) == before  # as the SDK answers: no such session


async def test_a_cancelled_call_is_answered_as_the_sdk_answers_it(pair) -> None:
    """notifications/cancelled for a waiting call: the SDK's "Request cancelled" error, and the notification's own
    202; another user's cancel for that session is refused and cancels nothing."""
    alice = login(pair[0].url, "alice", "alice-pw")["access_token"]

    async def case(server: ServerProcess) -> Any:
        alice_here = login(server.url, "alice", "alice-pw")["access_token"] if server is not pair[0] else alice
        async with bus_client(server.url, uuid=BLENDER, client_type="blender") as blender, \
                raw_caller(server) as caller:
            request_id, body = caller.body("blender_execute_code", {"code": "x = 1", "_timeout": 30})
            call = asyncio.ensure_future(caller.post(body))
            job_id = await next_job(blender, set())
            foreign = await caller.cancel(request_id, authorization=f"Bearer {alice_here}")
            await asyncio.sleep(0.3)
            assert not call.done()
            cancel = await caller.cancel(request_id)
            answered = await asyncio.wait_for(call, 10)
            late = await caller.cancel(request_id)  # for a call no longer in flight: ignored
            again = await caller.call("blender_get_scene_info", {"_timeout": 0.5})  # the session still serves
            return comparable(foreign), comparable(cancel), comparable(answered, job_id), comparable(late), \
                messages(again.text)[0]["result"]["isError"]

    (fast, slow), counts = await on_both(pair, case)
    assert counts == [2, 0]
    assert fast == slow
    foreign, cancel, answered, late, _ = fast
    assert foreign[0] == 404 and cancel[0] == 202 and late[0] == 202
    assert messages(answered[2]) == [{"jsonrpc": "2.0", "id": 1, "error": {"code": 0, "message": "Request cancelled"}}]


async def test_a_call_ends_with_its_session(pair) -> None:
    """A DELETE of the session while a call waits: its answer stream ends with no event, as the SDK's does."""
    async def case(server: ServerProcess) -> Any:
        async with bus_client(server.url, uuid=BLENDER, client_type="blender") as blender:
            caller = RawCaller(server, login(server.url)["access_token"])
            await caller.open()
            try:
                call = asyncio.ensure_future(caller.call("blender_execute_code", {"code": "x = 1", "_timeout": 30}))
                await next_job(blender, set())
                deleted = await caller.http.delete(caller.url, headers=caller.headers())
                answered = await asyncio.wait_for(call, 10)
            finally:
                await caller.close()
            return deleted.status_code, comparable(answered)

    (fast, slow), counts = await on_both(pair, case)
    assert counts == [1, 0]
    assert fast == slow
    assert fast[0] == 200 and fast[1][0] == 200 and fast[1][2] == ""


async def test_a_long_call_keeps_its_session_and_gets_keep_alives(pair) -> None:
    """A call that waits 16 s: sse-starlette's keep-alive comment after 15 s, as on the SDK's way, and its
    session is not reaped as idle (2 s here) though the caller's GET stream closed meanwhile. Both servers at
    once, to wait only once."""
    async def case(server: ServerProcess) -> Any:
        async with bus_client(server.url, uuid=BLENDER, client_type="blender") as blender, \
                raw_caller(server) as caller:
            call = asyncio.ensure_future(caller.call("blender_execute_code", {"code": "x = 1", "_timeout": 60}))
            job_id = await next_job(blender, set())
            await caller.close_stream()
            await asyncio.sleep(16)
            await answer(blender, job_id, {"status": "completed", "result": {"waited": 16}})
            answered = await asyncio.wait_for(call, 10)
            after = await caller.call("blender_get_scene_info", {"_timeout": 0.5})
            return comparable(answered, job_id), after.status_code

    before = [fast_dispatches(server) for server in pair]
    fast, slow = await asyncio.gather(*(case(server) for server in pair))
    # the call after it goes the SDK's way: with no GET stream left, only the SDK may restart the idle countdown
    assert [fast_dispatches(server) - then for server, then in zip(pair, before, strict=True)] == [1, 0]
    assert fast == slow
    (status, headers, text), after = fast
    assert status == 200 and headers["content-type"] == "text/event-stream" and after == 200
    assert text.startswith(": ping - <when>\r\n\r\nevent: message\r\ndata: {") and '\\"waited\\": 16' in text
