"""Routing: which clients of one user's bus a message goes to (spec: routing-modes).

Precedence is strict: target_uuid > group_id > client_type > broadcast; the
first field set wins and the rest are ignored. Broadcast alone excludes the
sender. Only the caller's own bus is ever searched.
"""

from __future__ import annotations

from blender_mcp_addon.protocol import Routing
from blender_mcp_addon.protocol.answers import ErrorCode

from .directory import ClientEntry, Registry, RegistryError


def choose_routing(target_uuid: str | None, group_id: str | None, client_type: str | None) -> Routing:
    if target_uuid:
        return Routing(type="direct", target_uuid=target_uuid)
    if group_id:
        return Routing(type="group", group_id=group_id)
    if client_type:
        return Routing(type="type_filter", client_type=client_type)
    return Routing(type="broadcast")


def resolve(registry: Registry, user_id: str, routing: Routing, from_uuid: str | None) -> list[ClientEntry]:
    """The recipients: online clients, and persistent offline ones (their records wait in their outbox).

    An offline ephemeral client is in its short grace period before removal; only a direct send
    still reaches it (its stream may come back), fan-out skips it.
    """
    if routing.type == "direct":
        entry = registry.get(user_id, routing.target_uuid or "")
        if entry is None:
            raise RegistryError(ErrorCode.UNKNOWN_TARGET, f"no client {routing.target_uuid!r} on your bus")
        return [entry]
    clients = [c for c in registry.clients(user_id) if c.online or c.is_persistent]
    if routing.type == "group":
        return [c for c in clients if c.group_id == routing.group_id]
    if routing.type == "type_filter":
        return [c for c in clients if c.client_type == routing.client_type]
    return [c for c in clients if c.uuid != from_uuid]
