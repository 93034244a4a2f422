"""Routing: which clients of one user's bus a message goes to (spec: routing-modes).

Precedence is strict: target_uuid > group_id > client_type > broadcast; the
first field set wins and the rest are ignored. Broadcast alone excludes the
sender. Only the caller's own bus is ever searched (the caller passes its clients).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from blender_mcp_addon.protocol import Routing

from ..storage.records import ClientInfo

C = TypeVar("C", bound=ClientInfo)


def choose_routing(target_uuid: str | None, group_id: str | None, client_type: str | None) -> Routing:
    if target_uuid:
        return Routing(type="direct", target_uuid=target_uuid)
    if group_id:
        return Routing(type="group", group_id=group_id)
    if client_type:
        return Routing(type="type_filter", client_type=client_type)
    return Routing(type="broadcast")


def fan_out(clients: Iterable[C], routing: Routing, from_uuid: str | None) -> list[C]:
    """The recipients of a group, type_filter or broadcast record: online clients, and persistent offline
    ones (their records wait for them). An offline ephemeral client is in its short grace period before
    removal; only a direct send still reaches it (its stream may come back), fan-out skips it."""
    reachable = [c for c in clients if c.online or c.is_persistent]
    if routing.type == "group":
        return [c for c in reachable if c.group_id == routing.group_id]
    if routing.type == "type_filter":
        return [c for c in reachable if c.client_type == routing.client_type]
    return [c for c in reachable if c.uuid != from_uuid]
