"""One flat `blender_<command>` tool per catalog entry, so any MCP client drives Blender in one call."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastmcp import FastMCP
from fastmcp.server.dependencies import get_context
from fastmcp.tools import Tool
from fastmcp.tools.base import ToolResult
from mcp.types import ImageContent, TextContent, ToolAnnotations
from pydantic import ConfigDict

from blender_mcp_addon.protocol.answers import dispatch_answer
from blender_mcp_addon.protocol.catalog import COMMANDS, CommandSpec

from ..bus.caller import Caller
from ..bus.service import Bus
from .context import caller_of
from .dispatch import ProgressFn, dispatch

MAX_IMAGE_BYTES = 4 * 1024 * 1024

# What the catalog's flags do not say. Files written at a caller-given path, overwriting what is there:
OVERWRITES_FILES = frozenset({"save_blend", "export_scene"})
# Changes that only add (an imported object, a checkpoint file beside the .blend) and replace nothing:
ADDS_ONLY = frozenset({"import_generated_asset", "download_sketchfab_model", "checkpoint", "import_generated_model"})
# Scene changes that leave the same scene when repeated with the same arguments:
IDEMPOTENT_CHANGES = frozenset({"set_texture", "restore_checkpoint"})
# Commands that take the service as a param (so the catalog names no single integration) but still talk to one:
MULTI_SERVICE = frozenset({"generate_3d", "generation_status", "import_generated_model", "search_assets",
                           "import_asset", "import_generated_asset"})
_TITLE_WORDS = {"polyhaven": "Poly Haven", "hyper3d": "Hyper3D", "sketchfab": "Sketchfab", "rodin": "Rodin",
                "blend": ".blend", "api": "API", "3d": "3D"}


def annotations_for(spec: CommandSpec) -> ToolAnnotations:
    """MCP hints for a dispatch tool, so a client can let reads run and ask before the rest.

    Read-only means neither the open scene, nor a file, nor a remote account changes: a command flagged
    `changes_scene`, one that writes files, and an integration's `exec` command (it starts a paid remote
    generation) are not. Destructive means it can replace or discard what is there (code execution,
    overwriting a file, a new world or material, undo); open world means it talks to an outside service."""
    remote = spec.integration is not None or spec.name in MULTI_SERVICE
    starts_remote_job = remote and spec.timeout_class == "exec"
    writes = spec.name in OVERWRITES_FILES or spec.name in ADDS_ONLY
    read_only = not (spec.changes_scene or writes or starts_remote_job)
    destructive = (spec.changes_scene or spec.name in OVERWRITES_FILES) and spec.name not in ADDS_ONLY
    idempotent = read_only or spec.name in OVERWRITES_FILES or spec.name in IDEMPOTENT_CHANGES
    words = [_TITLE_WORDS.get(w, w) for w in spec.name.split("_")]
    return ToolAnnotations(title=" ".join([words[0].capitalize(), *words[1:]]), readOnlyHint=read_only,
                           destructiveHint=destructive, idempotentHint=idempotent,
                           openWorldHint=remote)


class DispatchTool(Tool):
    """A tool whose schema comes from the command catalog (its `_timeout` param is no Python identifier
    pydantic would accept as a field, hence a Tool subclass rather than a decorated function)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    spec: Any = None
    bus: Any = None

    @classmethod
    def build(cls, spec: CommandSpec, bus: Bus) -> DispatchTool:
        schema = spec.json_schema()
        schema["properties"] = {
            **schema.get("properties", {}),
            "target_uuid": {"type": ["string", "null"], "default": None,
                            "description": "which Blender; optional when exactly one is connected"},
            "_timeout": {"type": ["number", "null"], "default": None, "exclusiveMinimum": 0,
                         "description": f"seconds to wait (default {spec.timeout:g})"},
        }
        schema["additionalProperties"] = False
        return cls(name=spec.tool_name, description=f"{spec.description} Returns JSON "
                   '{"status","command","target_uuid","job_id","result","error"}.',
                   parameters=schema, annotations=annotations_for(spec), spec=spec, bus=bus)

    async def run(self, arguments: dict[str, Any]) -> ToolResult:
        ctx = get_context()
        # Captured now: the update that reports progress arrives inside the worker's own request.
        token = ctx.request_context.meta.progressToken if ctx.request_context and ctx.request_context.meta else None
        session, request_id = ctx.session, ctx.request_id

        async def progress(fraction: float, message: str | None) -> None:
            await session.send_progress_notification(progress_token=token, progress=fraction, total=1.0,
                                                     message=message, related_request_id=request_id)

        return await self.call(caller_of(ctx), arguments, progress if token is not None else None)

    async def call(self, caller: Caller, arguments: dict[str, Any], progress: ProgressFn | None = None) -> ToolResult:
        """The tool's whole work for `caller`, outside any request context: what `run` does on the SDK's
        way and tools/fast_calls.py on its own; `progress` reports the job's progress to the caller."""
        spec: CommandSpec = self.spec
        args = dict(arguments)
        target_uuid = args.pop("target_uuid", None)
        timeout = args.pop("_timeout", None)
        if timeout is not None and (not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0):
            return _json(dispatch_answer("invalid_arguments", spec.name, target_uuid, error="_timeout must be a number > 0"))
        if target_uuid is not None and not isinstance(target_uuid, str):
            return _json(dispatch_answer("invalid_arguments", spec.name, None, error="target_uuid must be a string"))
        try:
            params = spec.validate(args)
        except ValueError as exc:
            return _json(dispatch_answer("invalid_arguments", spec.name, target_uuid, error=str(exc)))
        answer = await dispatch(self.bus, caller, spec.name, params, target_uuid=target_uuid,
                                timeout=float(timeout or spec.timeout), progress=progress)
        return _image_result(answer) if spec.returns_image else _json(answer)


def _json(answer: dict[str, Any]) -> ToolResult:
    return ToolResult(content=[TextContent(type="text", text=json.dumps(answer))], structured_content=answer)


def _image_result(answer: dict[str, Any]) -> ToolResult:
    """Renders come back as MCP image content beside the JSON, whose result keeps only the metadata.

    A result with `images` (a list of {image_base64, mime_type}: search thumbnails) becomes that many image
    contents, in order, under the same 4 MiB cap in total; otherwise `image_base64` is the one image."""
    raw = answer.get("result")
    if answer.get("status") != "completed" or not isinstance(raw, str):
        return _json(answer)
    try:
        info = json.loads(raw)
        if isinstance(info.get("images"), list):
            images = [(base64.b64decode(i["image_base64"], validate=True), str(i.get("mime_type", "image/png")))
                      for i in info.pop("images")]
        else:
            images = [(base64.b64decode(info.pop("image_base64"), validate=True),
                       str(info.get("mime_type", "image/png")))]
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        return _json({**answer, "status": "error", "result": None, "error": "Blender returned no valid image"})
    if sum(len(data) for data, _ in images) > MAX_IMAGE_BYTES:
        return _json({**answer, "status": "error", "result": None, "error": "image over the 4 MiB cap"})
    meta = {**answer, "result": json.dumps(info)}
    return ToolResult(content=[TextContent(type="text", text=json.dumps(meta)),
                               *(ImageContent(type="image", data=base64.b64encode(data).decode(), mimeType=mime)
                                 for data, mime in images)],
                      structured_content=meta)


def add_dispatch_tools(mcp: FastMCP, bus: Bus) -> None:
    for spec in COMMANDS:
        mcp.add_tool(DispatchTool.build(spec, bus))
