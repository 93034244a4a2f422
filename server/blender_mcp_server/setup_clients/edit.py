"""Put the `blender` entry into a config file's text, or take it out, leaving everything else as it was.

JSON files are loaded and dumped again (key order kept, the file's own indent reused). TOML (Codex) is
edited as text: the `[mcp_servers.blender]` table and its sub-tables are cut out and the new table is
appended, so comments and the layout of the rest survive; the result is parsed again and compared
with the original, and any difference outside the entry refuses the edit. (tomlkit would keep comments
too, but the environments this runs in may lack it, and the server needs no other TOML writer.)
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

from blender_mcp_addon.protocol.client_config import SERVER_NAME


class EditError(Exception):
    """The file cannot be edited safely (unparseable, or the entry is in a shape this does not rewrite)."""


def _indent(text: str) -> int | str:
    found = re.search(r"^[{\[][ \t]*\r?\n([ \t]+)\S", text, re.M)
    if not found:
        return 2
    ws = found.group(1)
    return "\t" if ws.startswith("\t") else len(ws)


def _load_json(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EditError(f"not valid JSON (line {exc.lineno}: {exc.msg}); comments are not supported") from None
    if not isinstance(data, dict):
        raise EditError("the top level is not a JSON object")
    return data


def _container(data: dict[str, Any], key: str) -> tuple[dict[str, Any] | None, bool]:
    """The dict that holds the servers (OpenCode's newer `mcp.servers` when present), and whether it exists."""
    holder = data.get(key)
    if holder is None:
        return None, False
    if not isinstance(holder, dict):
        raise EditError(f"`{key}` is not an object")
    if key == "mcp" and isinstance(holder.get("servers"), dict):
        return holder["servers"], True
    return holder, True


def json_set(text: str, key: str, value: dict[str, Any]) -> tuple[str, bool]:
    """The new text, and whether the servers' object had to be created."""
    data = _load_json(text)
    holder, existed = _container(data, key)
    if holder is None:
        holder = data[key] = {}
    elif holder is not data[key]:
        # OpenCode's `mcp.servers` layout switches servers off with `disabled` and has no `enabled`.
        value = {k: v for k, v in value.items() if k != "enabled"}
    holder[SERVER_NAME] = value
    return json.dumps(data, indent=_indent(text), ensure_ascii=False) + "\n", not existed


def json_get(text: str, key: str) -> dict[str, Any] | None:
    holder, _ = _container(_load_json(text), key)
    found = (holder or {}).get(SERVER_NAME)
    return found if isinstance(found, dict) else None


def json_remove(text: str, key: str, drop_empty: bool) -> str:
    data = _load_json(text)
    holder, _ = _container(data, key)
    if holder is None or SERVER_NAME not in holder:
        return text
    del holder[SERVER_NAME]
    if drop_empty and not holder and data.get(key) is holder:
        del data[key]
    return json.dumps(data, indent=_indent(text), ensure_ascii=False) + "\n"


# --- TOML ---------------------------------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[")
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _is_ours(line: str) -> bool:
    """A `[mcp_servers.blender]` or `[mcp_servers.blender.<sub>]` header, in any quoting."""
    head = re.match(r"^\s*\[\s*(.*?)\s*\]\s*(#.*)?$", line)
    if not head or line.lstrip().startswith("[["):
        return False
    parts = [p.strip().strip("\"'") for p in head.group(1).split(".")]
    return parts[:2] == ["mcp_servers", SERVER_NAME]


def _toml_key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are a subset of TOML's basic strings
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _toml_load(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EditError(f"not valid TOML ({exc})") from None


def _without_ours(data: dict[str, Any]) -> dict[str, Any]:
    servers = dict(data.get("mcp_servers") or {})
    servers.pop(SERVER_NAME, None)
    rest = {k: v for k, v in data.items() if k != "mcp_servers"}
    # An `[mcp_servers.blender]` header alone makes `mcp_servers` exist: empty counts as absent.
    return {**rest, "mcp_servers": servers} if servers else rest


def _cut(text: str) -> str:
    out: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        if _HEADER.match(line):
            skipping = _is_ours(line)
        if not skipping:
            out.append(line)
    return "".join(out)


def toml_get(text: str) -> dict[str, Any] | None:
    found = (_toml_load(text).get("mcp_servers") or {}).get(SERVER_NAME)
    return found if isinstance(found, dict) else None


def toml_set(text: str, value: dict[str, Any]) -> str:
    before = _toml_load(text)
    rest = _cut(text)
    if SERVER_NAME in (_toml_load(rest).get("mcp_servers") or {}):
        raise EditError(f"mcp_servers.{SERVER_NAME} is written inline or as dotted keys; edit it by hand")
    lines = [f"[mcp_servers.{SERVER_NAME}]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()]
    rest = rest.rstrip("\n")
    new = (rest + "\n\n" if rest else "") + "\n".join(lines) + "\n"
    after = _toml_load(new)
    if _without_ours(after) != _without_ours(before) or after["mcp_servers"][SERVER_NAME] != value:
        raise EditError("the edit would change more than the blender entry; left untouched")
    return new


def toml_remove(text: str) -> str:
    before = _toml_load(text)
    if SERVER_NAME not in (before.get("mcp_servers") or {}):
        return text
    new = _cut(text)
    new = new.rstrip("\n") + "\n" if new.strip() else ""
    after = _toml_load(new)
    if SERVER_NAME in (after.get("mcp_servers") or {}):
        raise EditError(f"mcp_servers.{SERVER_NAME} is written inline or as dotted keys; remove it by hand")
    if _without_ours(after) != _without_ours(before):
        raise EditError("removing the entry would change more than it; left untouched")
    return new
