"""`blender://` resources: the caller's Blender read through the same dispatch path as the Style A tools.

Each read dispatches one catalog command to the caller's one online Blender,
or to `?target=<uuid>`, exactly as `blender_<command>` would. A completed read
is the command's JSON result (with `command`, `target_uuid` and `job_id` in
the content's `_meta`). Anything else (no Blender, two of them, an unknown
target or name, a timeout) is an MCP error: code -32002 when there is nothing
to read at that URI, -32603 when the read itself failed, and in both cases the
full Style A dispatch answer as the error's `data`, so a client tells the cases
apart the way it does for tools (`status`, `hint`, `candidates`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import ResourceError
from fastmcp.resources import ResourceContent, ResourceResult
from fastmcp.server.context import Context
from fastmcp.server.dependencies import get_context
from mcp import McpError, types

from blender_mcp_addon.protocol.answers import dispatch_answer
from blender_mcp_addon.protocol.catalog import CATALOG

from ..bus.service import Bus
from ..transport.sdk_shims import set_completion_handler
from .context import caller_of
from .dispatch import dispatch

JSON = "application/json"
RESOURCE_NOT_FOUND = -32002  # the MCP spec's code for a resource that cannot be found
INTERNAL_ERROR = -32603
# Statuses that mean the URI names nothing readable right now (rather than a read that broke).
NOT_FOUND_STATUSES = frozenset({"error", "no_client", "ambiguous_target", "unknown_target", "target_offline",
                                "invalid_arguments"})
COMPLETION_TIMEOUT = 5.0  # a client asks while the user types: an empty list beats a long wait
MAX_COMPLETIONS = 100  # the MCP spec's cap per completion answer

# Template -> (catalog command, list_names kind for completing its `name`).
TEMPLATES: dict[str, tuple[str, str | None]] = {
    "blender://object/{name}{?target}": ("get_object_info", "objects"),
    "blender://material/{name}{?target}": ("get_material_info", "materials"),
    "blender://collection/{name}{?target}": ("get_collection_info", "collections"),
    "blender://scene{?target}": ("get_scene_info", None),
    "blender://file{?target}": ("get_file_info", None),
}


class ResourceUnavailable(ResourceError, McpError):
    """A failed read carrying its dispatch answer.

    An McpError, so the SDK sends its ErrorData (with `data`) as the JSON-RPC error instead of a bare
    message; a fastmcp ResourceError, so fastmcp logs it (with a traceback) only at debug level (no
    Blender connected is an answer, not a server fault)."""

    def __init__(self, uri: str, answer: dict[str, Any]) -> None:
        status = answer.get("status", "error")
        message = f"{uri}: {status}: {answer.get('error') or 'no answer'}"
        if answer.get("hint"):
            message += f" ({answer['hint']})"
        code = RESOURCE_NOT_FOUND if status in NOT_FOUND_STATUSES else INTERNAL_ERROR
        Exception.__init__(self, message)
        self.error = types.ErrorData(code=code, message=message, data=answer)
        self.log_level = logging.DEBUG
        self.answer = answer


async def read_command(bus: Bus, uri: str, command: str, params: dict[str, Any],
                       target: str | None) -> ResourceResult:
    """Dispatch `command` as its Style A tool would, and turn the answer into resource content or an error."""
    spec = CATALOG[command]
    caller = caller_of(get_context())
    try:
        checked = spec.validate(params)
    except ValueError as exc:
        raise ResourceUnavailable(uri, dispatch_answer("invalid_arguments", command, target, error=str(exc))) from None
    answer = await dispatch(bus, caller, command, checked, target_uuid=target or None, timeout=spec.timeout)
    if answer["status"] != "completed":
        raise ResourceUnavailable(uri, answer)
    result = answer["result"]
    text = result if isinstance(result, str) else json.dumps(result)
    meta = {"command": command, "target_uuid": answer["target_uuid"], "job_id": answer["job_id"]}
    return ResourceResult([ResourceContent(text, mime_type=JSON, meta=meta)])


def _uri(base: str, target: str | None) -> str:
    return f"{base}?target={target}" if target else base


def add_resources(mcp: FastMCP, bus: Bus) -> None:
    target_note = " Add ?target=<uuid> to read another of your Blenders than the one connected."

    @mcp.resource("blender://scene", name="scene", title="Blender scene", mime_type=JSON,
                  description="The open scene: objects (first 100, by name) with transforms, materials and "
                              "collections; collections, frame range, render settings.")
    async def scene() -> ResourceResult:
        return await read_command(bus, "blender://scene", "get_scene_info", {}, None)

    @mcp.resource("blender://scene{?target}", name="scene_of", title="Blender scene (of a target)", mime_type=JSON,
                  description="blender://scene of the Blender named by ?target=<uuid>.")
    async def scene_of(target: str | None = None) -> ResourceResult:
        return await read_command(bus, _uri("blender://scene", target), "get_scene_info", {}, target)

    @mcp.resource("blender://file", name="file", title="Blender file", mime_type=JSON,
                  description="The open .blend: path, unsaved changes (is_dirty), linked libraries, and "
                              "missing_files (images, libraries and other external files whose path does not "
                              "exist).")
    async def file() -> ResourceResult:
        return await read_command(bus, "blender://file", "get_file_info", {}, None)

    @mcp.resource("blender://file{?target}", name="file_of", title="Blender file (of a target)", mime_type=JSON,
                  description="blender://file of the Blender named by ?target=<uuid>.")
    async def file_of(target: str | None = None) -> ResourceResult:
        return await read_command(bus, _uri("blender://file", target), "get_file_info", {}, target)

    @mcp.resource("blender://clients", name="clients", title="Clients on your bus", mime_type=JSON,
                  description="The clients on your bus, as blender_list_available_clients lists them: "
                              '{"persistent": [...], "ephemeral": [...]} with uuid, client_type, online ...')
    async def clients() -> str:
        return json.dumps(await bus.list_clients(caller_of(get_context())))

    @mcp.resource("blender://object/{name}{?target}", name="object", title="Blender object", mime_type=JSON,
                  description="One object in detail: transforms, bounds, modifiers, mesh stats." + target_note)
    async def obj(name: str, target: str | None = None) -> ResourceResult:
        return await read_command(bus, _uri(f"blender://object/{name}", target), "get_object_info",
                                  {"name": name}, target)

    @mcp.resource("blender://material/{name}{?target}", name="material", title="Blender material", mime_type=JSON,
                  description="One material: base color, metallic, roughness, its node tree and image "
                              "textures, the objects using it." + target_note)
    async def material(name: str, target: str | None = None) -> ResourceResult:
        return await read_command(bus, _uri(f"blender://material/{name}", target), "get_material_info",
                                  {"name": name}, target)

    @mcp.resource("blender://collection/{name}{?target}", name="collection", title="Blender collection",
                  mime_type=JSON, description="One collection: objects, children, parents and visibility."
                                              + target_note)
    async def collection(name: str, target: str | None = None) -> ResourceResult:
        return await read_command(bus, _uri(f"blender://collection/{name}", target), "get_collection_info",
                                  {"name": name}, target)

    set_completion_handler(mcp, completer(mcp, bus))


def completer(mcp: FastMCP, bus: Bus) -> Callable[..., Awaitable[types.Completion | None]]:
    """Complete a template's `name` from the running Blender (list_names), and `target` from the bus."""

    async def complete(ref: types.PromptReference | types.ResourceTemplateReference, argument: types.CompletionArgument,
                       context: types.CompletionContext | None) -> types.Completion | None:
        if not isinstance(ref, types.ResourceTemplateReference) or ref.uri not in TEMPLATES:
            return None
        caller = caller_of(Context(fastmcp=mcp))  # the request's own identity, as a tool call would have it
        if argument.name == "target":
            uuids = sorted(c.uuid for c in await bus.everyone(caller.user_id)
                           if c.client_type == "blender" and c.online and c.uuid.startswith(argument.value))
            return types.Completion(values=uuids[:MAX_COMPLETIONS], total=len(uuids),
                                    hasMore=len(uuids) > MAX_COMPLETIONS)
        kind = TEMPLATES[ref.uri][1]
        if argument.name != "name" or kind is None:
            return None
        target = (context.arguments or {}).get("target") if context else None
        answer = await dispatch(bus, caller, "list_names", {"kind": kind, "prefix": argument.value,
                                                           "limit": MAX_COMPLETIONS},
                                target_uuid=target or None, timeout=COMPLETION_TIMEOUT)
        if answer["status"] != "completed":  # no Blender to ask: nothing to offer, which is no error
            return types.Completion(values=[], total=0, hasMore=False)
        found = json.loads(answer["result"])
        return types.Completion(values=found["names"], total=found["total"],
                                hasMore=found["total"] > len(found["names"]))

    return complete
