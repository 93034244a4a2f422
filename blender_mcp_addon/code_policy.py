"""The `safe` code policy: a script is read (parsed, never run) and refused when it reaches outside the scene.

Between `allow` (run anything) and `ask` (a person approves each script).
Normal modelling, materials, animation, rendering and import/export inside the
output folder pass. Refused, each with the line and a reason the caller can act on:

- modules other than Blender's and Python's computational ones (no os,
  subprocess, socket, network or file libraries);
- `eval`, `exec`, `compile`, `__import__`, `open`, `globals`, `breakpoint`, ...;
  and dunder attributes or dunder strings (the way out of any Python sandbox);
- what outlives the script: app handlers, timers, registered classes,
  draw handlers, msgbus subscriptions, the driver namespace;
- operators that leave the scene (quit, preferences, extensions, scripts, URLs);
- file paths (`filepath=`, `.filepath = `, `save_render(...)`) that are not
  inside the output folder. A path passes when it is a literal inside an
  allowed folder, or an expression that starts with the name `OUTPUT_DIR`
  (which the script is given) and has no `..` in it.

This is a policy, not a sandbox: Python cannot be made safe by reading it, and a
determined script can hide what it does. It keeps a model's ordinary mistakes
and reaches away from the machine; `ask` or `deny` are for code nobody trusts.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass

# Module roots a safe script may import.
ALLOWED_MODULES = frozenset({
    "bpy", "bmesh", "mathutils", "bpy_extras", "gpu_extras", "math", "cmath", "random", "statistics", "itertools",
    "functools", "operator", "collections", "heapq", "bisect", "json", "re", "string", "textwrap", "time",
    "datetime", "typing", "dataclasses", "enum", "copy", "colorsys", "decimal", "fractions", "numpy", "array",
})
_FORBIDDEN_CALLS = {
    "eval": "runs code from a string", "exec": "runs code from a string", "compile": "builds code from a string",
    "__import__": "imports modules by name", "open": "opens files (use Blender's operators into OUTPUT_DIR)",
    "globals": "reaches the interpreter's globals", "locals": "reaches the interpreter's frames",
    "vars": "reaches objects' internals", "breakpoint": "stops Blender in a debugger",
    "input": "waits for a keyboard", "exit": "ends Blender", "quit": "ends Blender", "help": "waits for a keyboard",
    "memoryview": "reaches raw memory",
}
# Attribute chains (dotted, as written) that outlive the script or leave the scene.
_FORBIDDEN_CHAINS = {
    "bpy.app.handlers": "registers a handler that outlives the script",
    "bpy.app.timers": "registers a timer that outlives the script",
    "bpy.app.driver_namespace": "puts code in the driver namespace, which outlives the script",
    "bpy.utils.register_class": "registers a class (operator, panel ...) that outlives the script",
    "bpy.utils.register_module": "registers classes that outlive the script",
    "bpy.utils.register_tool": "registers a tool that outlives the script",
    "bpy.utils.execfile": "runs a Python file",
    "bpy.utils.load_scripts": "runs Python files",
    "bpy.msgbus": "subscribes to changes beyond the script",
    "bpy.ops.wm.quit_blender": "quits Blender",
    "bpy.ops.wm.url_open": "opens a web address",
    "bpy.ops.wm.path_open": "opens a file in another program",
    "bpy.ops.wm.read_factory_settings": "resets Blender's settings",
    "bpy.ops.wm.read_homefile": "replaces the open file",
    "bpy.ops.wm.open_mainfile": "replaces the open file (use restore_checkpoint)",
    "bpy.ops.preferences": "changes Blender's preferences",
    "bpy.ops.extensions": "installs or removes extensions",
    "bpy.ops.script": "runs or reloads scripts",
    "bpy.ops.text.run_script": "runs a text block as a script",
}
_FORBIDDEN_METHODS = {
    "draw_handler_add": "adds a draw handler that outlives the script",
    "as_module": "runs a text block as a module",
    "register": "registers something that outlives the script",
}
_PATH_KEYWORDS = {"filepath", "filename", "directory", "filepath_raw"}
_PATH_ATTRIBUTES = {"filepath", "filepath_raw", "directory"}
_PATH_METHODS = {"save_render", "save_as_mainfile"}  # first positional argument is a path
OUTPUT_NAME = "OUTPUT_DIR"


@dataclass(frozen=True)
class Refusal:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


class _Checker(ast.NodeVisitor):
    def __init__(self, output_dirs: list[str]):
        self.roots = [os.path.realpath(d) for d in output_dirs if d]
        self.refusals: list[Refusal] = []
        self.aliases: dict[str, str] = {}  # `import bpy.app.handlers as h` -> h: bpy.app.handlers

    def refuse(self, node: ast.AST, reason: str) -> None:
        self.refusals.append(Refusal(getattr(node, "lineno", 0), reason))

    # -- imports --------------------------------------------------------------------------------------
    def _module(self, node: ast.AST, name: str) -> None:
        root = name.split(".")[0]
        if root not in ALLOWED_MODULES:
            self.refuse(node, f"imports {name!r}; the safe policy allows {', '.join(sorted(ALLOWED_MODULES))}")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._module(node, alias.name)
            self.aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else \
                alias.name.split(".")[0]
            self._chain(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            self.refuse(node, "relative imports reach outside the script")
            return
        self._module(node, node.module or "")
        for alias in node.names:
            full = f"{node.module}.{alias.name}"
            self.aliases[alias.asname or alias.name] = full
            self._chain(node, full)

    # -- names, attributes, strings -------------------------------------------------------------------
    def _expand(self, dotted: str) -> str:
        head, _, rest = dotted.partition(".")
        base = self.aliases.get(head, head)
        return f"{base}.{rest}" if rest else base

    def _chain(self, node: ast.AST, dotted: str) -> bool:
        """Refuse a forbidden attribute chain; True when it was one."""
        full = self._expand(dotted)
        for chain, reason in _FORBIDDEN_CHAINS.items():
            if full == chain or full.startswith(chain + "."):
                self.refuse(node, f"{full}: {reason}")
                return True
        return False

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in _FORBIDDEN_CALLS or node.id == "__builtins__":
            self.refuse(node, f"{node.id}: {_FORBIDDEN_CALLS.get(node.id, 'reaches the interpreter')}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = _dotted(node)
        named = dotted is not None and self._chain(node, dotted)  # one reason per chain: the most telling
        inner: ast.AST = node
        while isinstance(inner, ast.Attribute):  # a.b.c is one chain: check each name once, from the outside
            if inner.attr.startswith("__") and inner.attr.endswith("__"):
                self.refuse(inner, f".{inner.attr}: dunder attributes reach Python's internals")
            elif inner.attr in _FORBIDDEN_METHODS and not named:
                self.refuse(inner, f".{inner.attr}: {_FORBIDDEN_METHODS[inner.attr]}")
            inner = inner.value
        self.visit(inner)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and "__" in node.value and any(
                part.startswith("__") for part in node.value.split(".")):
            self.refuse(node, f"{node.value!r}: dunder names reach Python's internals")

    # -- paths ----------------------------------------------------------------------------------------
    def _path_ok(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            path = node.value
            if path.startswith("//") or not os.path.isabs(path):
                return False
            real = os.path.realpath(path)
            return any(real == root or real.startswith(root + os.sep) for root in self.roots)
        first: ast.AST | None = None
        literals: list[str] = []
        if isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0].value if isinstance(node.values[0], ast.FormattedValue) else None
            literals = [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left = node
            while isinstance(left, ast.BinOp):
                if isinstance(left.right, ast.Constant) and isinstance(left.right.value, str):
                    literals.append(left.right.value)
                elif not isinstance(left.right, ast.Name | ast.FormattedValue | ast.JoinedStr):
                    return False
                left = left.left
            first = left
        if not (isinstance(first, ast.Name) and first.id == OUTPUT_NAME):
            return False
        return not any(".." in part for part in literals)

    def _check_path(self, node: ast.AST, value: ast.AST, what: str) -> None:
        if not self._path_ok(value):
            where = " or ".join(self.roots) or "no folder (none is configured)"
            self.refuse(node, f"{what} is outside the output folder: write and read inside {where}, "
                              f"e.g. {OUTPUT_NAME} + \"/model.glb\"")

    def visit_Call(self, node: ast.Call) -> None:
        if (isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
                and isinstance(node.args[1].value, str) and (owner := _dotted(node.args[0])) is not None):
            self._chain(node, f"{owner}.{node.args[1].value}")  # getattr(bpy.app, "timers") is bpy.app.timers
        for keyword in node.keywords:
            if keyword.arg in _PATH_KEYWORDS:
                self._check_path(node, keyword.value, f"{keyword.arg}=")
        if isinstance(node.func, ast.Attribute) and node.func.attr in _PATH_METHODS and node.args:
            self._check_path(node, node.args[0], f".{node.func.attr}(...)")
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Attribute) and target.attr in _PATH_ATTRIBUTES:
                self._check_path(node, node.value, f".{target.attr} =")
        self.generic_visit(node)


def check_script(source: str, output_dirs: list[str]) -> list[Refusal]:
    """Why the safe policy refuses `source` (empty when it passes). `output_dirs`: the folders it may
    read and write files in."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [Refusal(exc.lineno or 0, f"syntax error: {exc.msg}")]
    checker = _Checker(output_dirs)
    checker.visit(tree)
    return sorted(set(checker.refusals), key=lambda r: (r.line, r.reason))
