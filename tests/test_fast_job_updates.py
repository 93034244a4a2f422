"""The fast path for blender_job_updates (tools/fast_job_updates.py): the SDK's answer, byte for byte, for
the calls it takes; the SDK's own answer for everything it must leave alone.

Each request is the one the Blender extension sends (direct_call.request_body) on a real session, posted
raw so the whole HTTP answer can be compared. The server's `bmcp_fast_tool_calls_total` says which way a
call went."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from blender_mcp_addon.client.direct_call import ACCEPT, request_body, sdk_session_parts
from tests.helpers import ServerProcess, bus_client, fast_and_sdk_pair, fast_tool_calls, login

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Any:
    """Two servers alike but for fast_job_updates."""
    with fast_and_sdk_pair(tmp_path_factory.mktemp("fast"), "BLENDER_MCP_FAST_JOB_UPDATES") as servers:
        yield servers


fast_calls = functools.partial(fast_tool_calls, kind="job_updates")


class RawSession:
    """A registered bus client's MCP session, posting raw requests on it as the extension does."""

    def __init__(self, server: ServerProcess, client: Any, token: str) -> None:
        self.url = f"{server.url}/mcp"
        self.client = client
        self.token = token

    async def post(self, body: bytes | None = None, *, name: str = "blender_job_updates",
                   arguments: dict[str, Any] | None = None, **header_changes: str | None) -> httpx.Response:
        session, session_id, protocol = sdk_session_parts(self.client)  # type: ignore[misc]
        if body is None:
            request_id = session._request_id
            session._request_id += 1
            body = request_body(request_id, name, arguments if arguments is not None else {"updates": []})
        headers = {"accept": ACCEPT, "content-type": "application/json", "mcp-session-id": session_id,
                   "mcp-protocol-version": protocol, "authorization": f"Bearer {self.token}"}
        for key, value in header_changes.items():
            headers.pop(key.replace("_", "-"), None)
            if value is not None:
                headers[key.replace("_", "-")] = value
        async with httpx.AsyncClient(timeout=10) as http:
            return await http.post(self.url, content=body, headers=headers)


@asynccontextmanager
async def raw_session(server: ServerProcess, username: str = "demo", password: str = "demo",
                      uuid: str = "fast-worker") -> AsyncIterator[RawSession]:
    token = login(server.url, username, password)["access_token"]
    async with bus_client(server.url, token=token, uuid=uuid, client_type="blender") as client:
        yield RawSession(server, client, token)


def comparable(response: httpx.Response) -> tuple[int, dict[str, str], str]:
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "mcp-session-id")}
    return response.status_code, headers, response.text


UPDATES: list[dict[str, Any]] = [
    {"updates": []},
    # answered without a job in the store: deterministic answers (a job's fallback routing names fresh ids)
    {"updates": [{"job_id": " ", "status": "running"}]},
    {"updates": [{"job_id": "x" * 300, "status": "completed", "result": {"text": "naïve ☃ \u2028", "n": 1.5e300}}]},
    {"updates": [{"job_id": "", "status": "error", "error": "boom", "progress": 0.5, "message": "ça",
                  "details": {"a": [1, None, True]}, "from_uuid": "fast-worker"}] * 3},
]


@pytest.mark.parametrize("arguments", UPDATES, ids=["none", "bad-id", "unicode-and-floats", "every-field"])
async def test_the_fast_answer_is_the_sdks_byte_for_byte(pair, arguments: dict[str, Any]) -> None:
    fast, slow = pair
    answers = []
    for server in (fast, slow):
        before = fast_calls(server)
        async with raw_session(server) as raw:
            answers.append(comparable(await raw.post(arguments=arguments)))
        answers.append(fast_calls(server) - before)
    assert answers[1] == 1 and answers[3] == 0, "the fast path was not taken on one and only one server"
    assert answers[0] == answers[2]
    assert answers[0][0] == 200 and json.loads(answers[0][2])["result"]["isError"] is False  # JSON: post_answers.py


async def test_a_real_job_reply_takes_the_fast_path(pair) -> None:
    """A Style A caller waits on a job; the update that answers it arrives on the fast path."""
    fast, _ = pair
    async with raw_session(fast, uuid="fast-blender") as raw:
        async with bus_client(fast.url, uuid="fast-caller") as caller:
            call = asyncio.ensure_future(caller.call_tool("blender_get_scene_info",
                                                          {"target_uuid": "fast-blender", "_timeout": 10}))
            for _ in range(200):
                records = [m for m in raw.client.collector.records if m.get("payload", {}).get("job_id")]
                if records:
                    break
                await asyncio.sleep(0.05)
            job_id = records[0]["payload"]["job_id"]
            before = fast_calls(fast)
            answer = await raw.post(arguments={"updates": [{"job_id": job_id, "status": "completed",
                                                            "result": {"name": "Scene"}}]})
            assert answer.status_code == 200 and '\\"status\\":\\"delivered\\"' in answer.text
            assert fast_calls(fast) - before == 1
            result = json.loads((await call).content[0].text)
            assert result["status"] == "completed" and json.loads(result["result"]) == {"name": "Scene"}


async def test_what_the_fast_path_leaves_is_answered_by_the_sdk(pair) -> None:
    fast, slow = pair
    cases: list[tuple[str, dict[str, Any]]] = [
        ("not a list", {"arguments": {"updates": "[]"}}),
        ("a refused update", {"arguments": {"updates": [{"job_id": "j", "status": "done", "colour": "red"}]}}),
        ("too many", {"arguments": {"updates": [{"job_id": "j", "status": "running"}] * 257}}),
        ("another key", {"arguments": {"updates": [], "extra": 1}}),
        ("the single tool", {"name": "blender_job_update", "arguments": {"job_id": " ", "status": "running"}}),
        ("no accept", {"accept": "application/json"}),
        ("a protocol the SDK does not speak", {"mcp_protocol_version": "1999-01-01"}),
        ("an unknown session", {"mcp_session_id": "0" * 32}),
        ("no session", {"mcp_session_id": None}),
    ]
    for what, change in cases:
        answers = []
        for server in (fast, slow):
            async with raw_session(server) as raw:
                before = fast_calls(server)
                answers.append(comparable(await raw.post(**change)))
                assert fast_calls(server) == before, what
        assert answers[0] == answers[1], what
    batch = json.dumps([json.loads(request_body(900, "blender_job_updates", {"updates": []}))]).encode()
    async with raw_session(fast) as raw:
        before = fast_calls(fast)
        assert (await raw.post(batch)).status_code >= 400
        assert fast_calls(fast) == before


async def test_another_users_token_cannot_use_a_session_on_the_fast_path(pair) -> None:
    fast, _ = pair
    alice = login(fast.url, "alice", "alice-pw")["access_token"]
    async with raw_session(fast) as raw:
        before = fast_calls(fast)
        refused = await raw.post(authorization=f"Bearer {alice}")
        assert refused.status_code == 404 and fast_calls(fast) == before  # as the SDK answers: no such session
        assert (await raw.post()).status_code == 200 and fast_calls(fast) == before + 1

