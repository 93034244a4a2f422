"""Bus records are written straight onto the client's GET stream (transport/sse_channel.py): the wire stays MCP."""

from __future__ import annotations

import json

import pytest
from blender_mcp_server.delivery.encoding import SharedRecord

from tests.helpers import bus_client, login, send
from tests.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.anyio


def test_an_event_is_one_sse_message_with_a_json_rpc_log_notification():
    event = SharedRecord({"text": "caf\u00e9 \u2603 \ud800", "n": [1, None]}).event("warning", "_message_bus", "t")
    head, data = event.split(b"\r\n", 1)
    assert head == b"event: message" and data.startswith(b"data: ") and data.endswith(b"\r\n\r\n")
    line = data[len(b"data: "):-4]
    assert b"\n" not in line and b"\r" not in line and line.isascii()  # a lone surrogate cannot break the encode
    assert json.loads(line) == {"jsonrpc": "2.0", "method": "notifications/message",
                                "params": {"level": "warning", "logger": "_message_bus",
                                           "data": {"target_uuid": "t", "text": "caf\u00e9 \u2603 \ud800",
                                                    "n": [1, None]}}}


async def test_records_reach_a_fastmcp_client_through_the_direct_writer(server):
    """Through a TCP tap: the bytes on the wire are the bus's own framing, and fastmcp parses them."""
    proxy = await CuttableProxy(server.port).start()
    try:
        token = login(server.url)["access_token"]  # a blocking call: not through the proxy on this loop
        async with (bus_client(proxy.url, token=token, uuid="sw-rx") as rx, bus_client(server.url, uuid="sw-tx") as tx):
            payloads = [{"i": i, "text": "caf\u00e9 \u2603 \U0001f600", "nested": {"a": [1.5, True, None]}}
                        for i in range(50)]
            for i, payload in enumerate(payloads):
                res = await send(tx, target_uuid="sw-rx", from_uuid="sw-tx", payload=payload,
                                 priority=["info", "error", "debug"][i % 3])
                assert res["status"] == "sent", res
            records = await rx.collector.wait_for(50)
            assert [r["payload"] for r in records] == payloads
            assert proxy.downstream.count(b'event: message\r\ndata: {"jsonrpc":"2.0","method":'
                                          b'"notifications/message","params":{"level":') == 50
    finally:
        await proxy.stop()


def test_a_shared_record_frames_each_recipient_like_its_own_record():
    base = {"user_id": "u", "target_uuid": None, "payload": {"text": "\u2603", "blob": "x" * 1000}, "priority": 3}
    shared = SharedRecord(base)
    for target in ("a", "b\u00e9", "c"):
        own = dict(base, target_uuid=target)
        event = shared.event("error", "_message_bus", target)
        assert json.loads(event.split(b"data: ", 1)[1]) == {
            "jsonrpc": "2.0", "method": "notifications/message",
            "params": {"level": "error", "logger": "_message_bus", "data": own}}
    assert SharedRecord({}).event("info", "_message_bus", "t").split(b"data: ", 1)[1].endswith(
        b'"data":{"target_uuid":"t"}}}\r\n\r\n')
