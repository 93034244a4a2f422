"""The delivery channel: how an outbox hands one record to one client, whatever the transport.

An outbox (outbox.py) owns the order, the bounds and the retries; a channel only knows its one
connection. Today's channel is the Streamable HTTP session's standing GET stream (transport/); a
transport without a standing stream (records riding a long-running call) is another implementation
of the same two methods, and the bus does not change.
"""

from __future__ import annotations

from typing import Protocol

from blender_mcp_addon.protocol import Priority

from .encoding import SharedRecord


class ChannelGone(Exception):
    """The channel has ended (its stream closed, its client went away): the record was not written."""


class Channel(Protocol):
    def wants(self, level: Priority) -> bool:
        """Whether the receiver asked for records at `level` (its MCP log level lets them through)."""
        ...

    async def write(self, record: SharedRecord, level: Priority, target_uuid: str) -> None:
        """Hand over one record for `target_uuid`; raises `ChannelGone` when there is no one to take it."""
        ...
