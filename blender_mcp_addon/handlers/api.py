"""`describe_api`: help about this Blender's Python API, read from RNA introspection, never from bundled docs.

What a model needs before it writes a script: which properties a type really
has in this version (types, ranges, enum items, defaults), an operator's
parameters and whether it can run here, and where a word lives in the API.
Data paths are resolved by walking attributes and literal subscripts from
`bpy`; nothing is evaluated, so a path can never run code.
"""

from __future__ import annotations

import ast
import re
from typing import Any

import bpy

from . import CommandError, command

_MAX_ITEMS = 200  # enum items, collection keys: what one answer lists at most


def _value(value: Any) -> Any:
    """A JSON-able, short form of a property's value."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value if not isinstance(value, str) or len(value) <= 200 else value[:200] + "..."
    if isinstance(value, bpy.types.ID):
        return {"id": type(value).__name__, "name": value.name}
    if isinstance(value, bpy.types.bpy_struct):
        return {"struct": value.bl_rna.identifier}
    try:
        items = list(value)
    except TypeError:
        return repr(value)[:200]
    if len(items) <= 32 and all(isinstance(i, bool | int | float) for i in items):
        return items
    return f"<{len(items)} items>"


def _property(prop: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"identifier": prop.identifier, "name": prop.name, "type": prop.type,
                            "description": prop.description}
    if prop.subtype not in ("NONE", ""):
        info["subtype"] = prop.subtype
    if prop.is_readonly:
        info["readonly"] = True
    if prop.type in ("INT", "FLOAT"):
        info.update(min=prop.hard_min, max=prop.hard_max, soft_min=prop.soft_min, soft_max=prop.soft_max)
        if prop.array_length:
            info["array_length"] = prop.array_length
            info["default"] = list(prop.default_array)
        else:
            info["default"] = prop.default
    elif prop.type == "BOOLEAN":
        info["default"] = list(prop.default_array) if prop.array_length else prop.default
    elif prop.type == "STRING":
        info["default"] = prop.default
        if prop.length_max:
            info["max_length"] = prop.length_max
    elif prop.type == "ENUM":
        info["items"] = [{"identifier": i.identifier, "name": i.name, "description": i.description}
                         for i in list(prop.enum_items)[:_MAX_ITEMS]]
        info["default"] = sorted(prop.default_flag) if prop.is_enum_flag else prop.default
        if prop.is_enum_flag:
            info["flag"] = True
    elif prop.type in ("POINTER", "COLLECTION") and prop.fixed_type is not None:
        info["fixed_type"] = prop.fixed_type.identifier
    return info


def _struct(rna: Any, instance: Any = None) -> dict[str, Any]:
    props = [p for p in rna.properties if p.identifier != "rna_type"]
    info: dict[str, Any] = {"kind": "type", "path": f"bpy.types.{rna.identifier}", "name": rna.name,
                            "description": rna.description,
                            "base": rna.base.identifier if rna.base else None,
                            "properties": [_property(p) for p in props],
                            "functions": [{"identifier": f.identifier, "description": f.description,
                                           "parameters": [p.identifier for p in f.parameters]}
                                          for f in rna.functions]}
    if instance is not None:
        values = {}
        for p in props:
            if p.type != "COLLECTION":
                try:
                    values[p.identifier] = _value(getattr(instance, p.identifier))
                except Exception:  # some getters need a context this job does not have
                    continue
        info["values"] = values
    return info


def _operator(module: str, name: str) -> dict[str, Any]:
    op = getattr(getattr(bpy.ops, module), name)
    try:
        rna = op.get_rna_type()
    except (KeyError, AttributeError):
        raise CommandError(f"no operator bpy.ops.{module}.{name} in Blender {bpy.app.version_string}") from None
    info: dict[str, Any] = {"kind": "operator", "path": f"bpy.ops.{module}.{name}", "idname": op.idname(),
                            "name": rna.name, "description": rna.description,
                            "parameters": [_property(p) for p in rna.properties if p.identifier != "rna_type"]}
    can_run = bool(op.poll())
    info["poll"] = can_run
    if not can_run:
        # With its poll failing the operator cannot run, so calling it only returns the poll's message.
        try:
            op()
        except RuntimeError as exc:
            info["poll_message"] = str(exc).split("\n")[0]
        except Exception as exc:  # noqa: BLE001 - whatever the poll says is the message
            info["poll_message"] = str(exc)
        info["poll_context"] = ("headless Blender: no window, area or region" if bpy.app.background
                                else "the add-on's timer: no area or region unless the operator gets one")
    return info


def _resolve(path: str) -> Any:
    """Walk `bpy.a.b["key"][0]...` from bpy: attributes and literal subscripts only, nothing called."""
    try:
        node = ast.parse(path.strip(), mode="eval").body
    except SyntaxError:
        raise CommandError(f"not a data path: {path!r}") from None
    steps: list[tuple[str, Any]] = []
    while not isinstance(node, ast.Name):
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                raise CommandError(f"private names are not part of the API: {node.attr!r}")
            steps.append(("attr", node.attr))
            node = node.value
        elif isinstance(node, ast.Subscript):
            key = node.slice
            if not isinstance(key, ast.Constant) or not isinstance(key.value, str | int):
                raise CommandError("subscripts must be literal names or indices, such as [\"Cube\"] or [0]")
            steps.append(("item", key.value))
            node = node.value
        else:
            raise CommandError(f"a data path has only names, attributes and literal subscripts: {path!r}")
    if node.id != "bpy":
        raise CommandError(f"data paths start at bpy, such as bpy.data.objects[\"Cube\"]: {path!r}")
    value: Any = bpy
    walked = "bpy"
    for kind, step in reversed(steps):
        try:
            value = getattr(value, step) if kind == "attr" else value[step]
        except (AttributeError, KeyError, IndexError, TypeError):
            raise CommandError(f"{walked} has no {'.' + step if kind == 'attr' else repr([step])}") from None
        walked += f".{step}" if kind == "attr" else f"[{step!r}]"
    return value


def _describe_path(path: str) -> dict[str, Any]:
    parts = path.strip().split(".")
    if parts[:2] == ["bpy", "ops"] and 3 <= len(parts) <= 4:
        if len(parts) == 4:
            return _operator(parts[2], parts[3])
        module = getattr(bpy.ops, parts[2], None)
        names = sorted(n for n in dir(module) if not n.startswith("_")) if module is not None else []
        if not names:
            raise CommandError(f"no operator module bpy.ops.{parts[2]}")
        return {"kind": "operator_module", "path": path, "operators": names[:_MAX_ITEMS], "count": len(names)}
    if parts[:2] == ["bpy", "types"] or len(parts) == 1:
        type_name = parts[2] if parts[:2] == ["bpy", "types"] else parts[0]
        rna_type = getattr(bpy.types, type_name, None) if re.fullmatch(r"\w+", type_name or "") else None
        if rna_type is None or not hasattr(rna_type, "bl_rna"):
            raise CommandError(f"no type bpy.types.{type_name} in Blender {bpy.app.version_string}; "
                               "search for it with describe_api(search=...)")
        if len(parts) == 4:
            prop = rna_type.bl_rna.properties.get(parts[3])
            if prop is None:
                raise CommandError(f"bpy.types.{type_name} has no property {parts[3]!r}")
            return {"kind": "property", "path": path, "owner": type_name, **_property(prop)}
        return _struct(rna_type.bl_rna)
    value = _resolve(path)
    if isinstance(value, bpy.types.bpy_prop_collection):
        keys = value.keys() if hasattr(value, "keys") else []
        rna = getattr(value, "bl_rna", None)
        item_type = None
        try:
            item_type = value.rna_type.identifier if rna is None else rna.identifier
        except AttributeError:
            pass
        return {"kind": "collection", "path": path, "length": len(value), "keys": list(keys)[:_MAX_ITEMS],
                "item_type": item_type or (type(value[0]).__name__ if len(value) else None)}
    if isinstance(value, bpy.types.bpy_struct):
        return {**_struct(value.bl_rna, value), "path": path, "type": f"bpy.types.{value.bl_rna.identifier}"}
    return {"kind": "value", "path": path, "value": _value(value), "python_type": type(value).__name__}


def _search(words: list[str], limit: int) -> list[dict[str, Any]]:
    """Types, properties and operators whose identifier, name or description holds every word."""
    found: list[tuple[int, dict[str, Any]]] = []

    def score(identifier: str, name: str, description: str, owner: str = "") -> int | None:
        text = f"{identifier} {name} {description} {owner}".lower()
        if not all(w in text for w in words):
            return None
        ident = f"{identifier} {name}".lower()
        return sum(2 if w in ident else 1 for w in words)

    for type_name in dir(bpy.types):
        rna_type = getattr(bpy.types, type_name, None)
        rna = getattr(rna_type, "bl_rna", None)
        if rna is None or rna.identifier != type_name:
            continue
        if (s := score(rna.identifier, rna.name, rna.description)) is not None:
            found.append((s + 1, {"kind": "type", "path": f"bpy.types.{type_name}", "description": rna.description}))
        owner = f"{rna.identifier} {rna.name}"  # "levels" of a "subdivision modifier" is found by both words
        for prop in rna.properties:
            if prop.identifier != "rna_type" and (
                    s := score(prop.identifier, prop.name, prop.description, owner)) is not None:
                found.append((s, {"kind": "property", "path": f"bpy.types.{type_name}.{prop.identifier}",
                                  "type": prop.type, "description": prop.description}))
    for module_name in dir(bpy.ops):
        module = getattr(bpy.ops, module_name, None)
        for op_name in dir(module) if module_name.isidentifier() and not module_name.startswith("_") else ():
            if op_name.startswith("_"):
                continue
            try:
                rna = getattr(module, op_name).get_rna_type()
            except Exception:  # noqa: BLE001 - some registered names have no RNA type in this build
                continue
            if (s := score(f"{module_name}.{op_name}", rna.name, rna.description)) is not None:
                found.append((s + 1, {"kind": "operator", "path": f"bpy.ops.{module_name}.{op_name}",
                                      "description": rna.description}))
    found.sort(key=lambda item: (-item[0], item[1]["path"]))
    return [entry for _score, entry in found[:limit]]


@command("describe_api")
def describe_api(path: str | None = None, search: str | None = None, limit: int = 30) -> dict[str, Any]:
    if bool(path) == bool(search):
        raise CommandError("pass path (bpy.types.Object, bpy.ops.mesh.primitive_cube_add, "
                           "bpy.data.objects[\"Cube\"].modifiers) or search (words), not both")
    answer: dict[str, Any] = {"blender": bpy.app.version_string}
    if path:
        answer.update(_describe_path(path))
    else:
        words = [w for w in re.split(r"\W+", str(search).lower()) if w]
        if not words:
            raise CommandError("search needs at least one word")
        answer.update(kind="search", search=search, matches=_search(words, limit))
    return answer
