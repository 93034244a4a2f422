"""A tool call answered at once leaves as one JSON response in one socket write (post_answers.py holds and
turns it into JSON, write_coalescing.py joins the writes); one with anything before its answer stays SSE."""

from __future__ import annotations

import asyncio

import pytest
from blender_mcp_server.delivery.encoding import EVENT_HEAD, EVENT_TAIL
from blender_mcp_server.transport import post_answers
from blender_mcp_server.transport.post_answers import _Held
from blender_mcp_server.transport.write_coalescing import CoalescingTransport

pytestmark = pytest.mark.anyio

START = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
ANSWER = b'event: message\r\ndata: {"jsonrpc":"2.0","id":7,"result":{"content":[]}}\r\n\r\n'
PROGRESS = b'event: message\r\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\r\n\r\n'
ASKING = b'event: message\r\ndata: {"jsonrpc":"2.0","id":"s-1","method":"sampling/createMessage"}\r\n\r\n'


def body(data: bytes, more: bool = True) -> dict:
    return {"type": "http.response.body", "body": data, "more_body": more}


async def run(*messages: dict) -> list[dict]:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    held = _Held(send)
    for message in messages:
        await held(message)
    return sent


def as_json(answer: bytes) -> list[dict]:
    message = answer[len(EVENT_HEAD):-len(EVENT_TAIL)]
    return [{"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(message)).encode())]},
        body(message, False)]


async def test_an_answer_with_nothing_before_it_goes_out_as_json():
    assert await run(START, body(ANSWER), body(b"", False)) == as_json(ANSWER)
    assert await run(START, body(ANSWER, False)) == as_json(ANSWER)  # the answer and the end in one message
    error = b'event: message\r\ndata: {"jsonrpc":"2.0","id":"a-1","error":{"code":-32602,"message":"x"}}\r\n\r\n'
    assert await run(START, body(error), body(b"", False)) == as_json(error)


async def test_the_sdks_other_headers_stay_and_its_answer_reads_the_same():
    import json

    start = {**START, "headers": [(b"cache-control", b"no-cache, no-transform"), (b"mcp-session-id", b"abc"),
                                  (b"content-type", b"text/event-stream; charset=utf-8")]}
    sent = await run(start, body(ANSWER), body(b"", False))
    assert sent[0]["headers"][:2] == start["headers"][:2]
    assert json.loads(sent[1]["body"]) == json.loads(ANSWER.split(b"data: ", 1)[1])


async def test_a_stream_that_is_not_one_answer_stays_sse():
    two = ANSWER + PROGRESS
    assert await run(START, body(two), body(b"", False)) == [START, body(two, False)]


async def test_a_progress_notification_or_a_request_to_the_client_is_not_held():
    sent = await run(START, body(PROGRESS), body(ANSWER), body(b"", False))
    assert sent == [START, body(PROGRESS), body(ANSWER, False)]
    assert await run(START, body(ASKING)) == [START, body(ASKING)]


async def test_nothing_waits_longer_than_the_hold(monkeypatch):
    monkeypatch.setattr(post_answers, "HOLD_SECONDS", 0.01)
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    held = _Held(send)
    await held(START)  # a long tool call: its head still goes out
    await asyncio.sleep(0.05)
    assert sent == [START]
    await held(body(ANSWER))
    await asyncio.sleep(0.05)
    assert sent == [START, body(ANSWER)]
    await held(body(b"", False))
    assert sent[-1] == body(b"", False)


async def test_writes_of_one_loop_turn_leave_as_one():
    class Socket:
        def __init__(self) -> None:
            self.writes: list[bytes] = []
            self.closed = False

        def write(self, data: bytes) -> None:
            self.writes.append(data)

        def is_closing(self) -> bool:
            return self.closed

        def close(self) -> None:
            self.closed = True

    socket = Socket()
    transport = CoalescingTransport(socket, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.write(b"a\r\n0123456789\r\n0\r\n\r\n")
    assert socket.writes == []
    await asyncio.sleep(0)
    assert socket.writes == [b"HTTP/1.1 200 OK\r\n\r\na\r\n0123456789\r\n0\r\n\r\n"]
    transport.write(b"bye")
    transport.close()  # what is buffered goes out before the close
    assert socket.writes[-1] == b"bye" and socket.closed
    assert transport.is_closing()


async def test_a_stock_clients_tool_calls_share_one_connection(server):
    """The SDK's client stops reading an SSE answer at its response, so each call cost a new connection;
    a JSON answer is read to its end and the connection goes back to the pool."""
    from fastmcp import Client
    from fastmcp.client.transports import StreamableHttpTransport

    from tests.helpers import login
    from tests.tcp_proxy import CuttableProxy

    proxy = await CuttableProxy(server.port).start()
    try:
        token = login(server.url)["access_token"]
        transport = StreamableHttpTransport(url=f"{proxy.url}/mcp", headers={"Authorization": f"Bearer {token}"})
        async with Client(transport) as client:
            before = proxy.connections
            for _ in range(20):
                await client.call_tool("blender_list_available_clients", {})
            assert proxy.connections - before <= 2, f"{proxy.connections - before} new connections for 20 calls"
    finally:
        await proxy.stop()
