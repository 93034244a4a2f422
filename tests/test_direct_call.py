"""The SDK behaviours client/direct_call.py relies on, checked against the installed (pinned) fastmcp and MCP
SDK: the body and headers the SDK posts for a tool call, its request-id counter, where the session id and
protocol version live. A failure here means the direct job-update path no longer writes what the SDK
would; fix direct_call.py (or let the worker go the SDK's way) before upgrading."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from blender_mcp_addon.client.direct_call import (
    ACCEPT,
    DirectCaller,
    answer_of,
    request_body,
    sdk_session_parts,
)
from blender_mcp_addon.protocol.answers import read_answer
from tests.helpers import login

pytestmark = pytest.mark.anyio


def _client(base: str, token: str, seen: list[httpx.Request]) -> Any:
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport

    async def hook(request: httpx.Request) -> None:
        seen.append(request)

    def factory(headers: dict[str, str] | None = None, timeout: httpx.Timeout | None = None,
                auth: httpx.Auth | None = None, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(headers=headers, timeout=timeout, auth=auth, event_hooks={"request": [hook]},
                                 **kwargs)

    transport = StreamableHttpTransport(url=f"{base}/mcp", headers={"Authorization": f"Bearer {token}"},
                                        httpx_client_factory=factory)
    return Client(transport, timeout=30)


async def test_the_direct_body_and_headers_are_what_the_sdk_posts(server):
    token = login(server.url)["access_token"]
    seen: list[httpx.Request] = []
    async with _client(server.url, token, seen) as client:
        parts = sdk_session_parts(client)
        assert parts is not None
        session, session_id, protocol = parts
        # The SDK lists the tools before its first call of a session (their output schemas): not measured here.
        await client.call_tool("blender_job_updates", {"updates": []}, raise_on_error=False)
        next_id = session._request_id
        seen.clear()
        args = {"updates": [{"job_id": "dc-1", "status": "completed", "result": {"ü": [1, 2.5, None]}}]}
        await client.call_tool("blender_job_updates", args, raise_on_error=False)
        assert session._request_id == next_id + 1  # one id per request, from this counter
        (sent,) = [r for r in seen if r.method == "POST"]
        assert sent.content == request_body(next_id, "blender_job_updates", args)
        assert sent.headers["accept"] == ACCEPT
        assert sent.headers["content-type"] == "application/json"
        assert sent.headers["mcp-session-id"] == session_id
        assert sent.headers["mcp-protocol-version"] == protocol


async def test_a_direct_call_answers_as_the_sdk_call_and_leaves_the_session_usable(server):
    token = login(server.url)["access_token"]

    class Bearer(httpx.Auth):
        def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    direct = DirectCaller(f"{server.url}/mcp", Bearer(), 30.0)
    try:
        async with _client(server.url, token, []) as client:
            args = {"updates": [{"job_id": "dc-2", "status": "completed", "result": 1}]}
            via_sdk = read_answer(await client.call_tool("blender_job_updates", args, raise_on_error=False))
            answer = await direct.call(client, "blender_job_updates", args)
            assert answer is not None
            def shape(a: dict[str, Any]) -> Any:  # each broadcast gets its own message id
                return [{k: v for k, v in r.items() if k != "message_id"} for r in a["results"]]

            assert shape(read_answer(answer)) == shape(via_sdk)
            assert via_sdk["status"] == "ok"
            # a batch the schema refuses reads as the SDK's refusal does: an error, not "ok"
            bad = await direct.call(client, "blender_job_updates", {"updates": [{"job_id": "x", "details": 1}]})
            assert bad is not None and read_answer(bad)["status"] == "error"
            # the SDK's own next call is not confused by the ids taken for the direct ones
            assert read_answer(await client.call_tool("blender_job_updates", args))["status"] == "ok"
    finally:
        await direct.aclose()


def test_answers_are_read_from_sse_and_json_and_errors_are_left_to_the_sdk():
    result = '{"content":[{"type":"text","text":"{\\"status\\":\\"ok\\"}"}],"isError":false}'
    sse = f'event: message\r\ndata: {{"jsonrpc":"2.0","id":7,"result":{result}}}\r\n\r\n'.encode()
    assert read_answer(answer_of("text/event-stream", sse, 7)) == {"status": "ok"}
    assert answer_of("text/event-stream", sse, 8) is None  # not this request's answer
    plain = f'{{"jsonrpc":"2.0","id":7,"result":{result}}}'.encode()
    assert read_answer(answer_of("application/json", plain, 7)) == {"status": "ok"}
    error = b'event: message\r\ndata: {"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"no"}}\r\n\r\n'
    assert answer_of("text/event-stream", error, 7) is None
    assert answer_of("text/event-stream", b"data: {broken\r\n\r\n", 7) is None
