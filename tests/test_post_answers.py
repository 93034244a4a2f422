"""A tool call's SSE answer leaves in one socket write: post_answers.py holds, write_coalescing.py joins."""

from __future__ import annotations

import asyncio

import pytest
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


async def test_the_head_the_answer_and_the_end_go_out_together():
    assert await run(START, body(ANSWER), body(b"", False)) == [START, body(ANSWER, False)]


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
