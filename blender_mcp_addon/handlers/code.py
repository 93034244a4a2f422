"""Running Python in Blender: `job_dispatch` scripts (Style B) and the `execute_code` command (Style A)."""

from __future__ import annotations

import ast
import contextlib
import io
import traceback
from typing import Any

from ..session import current_limits
from . import CommandError, Reply, command

MAX_OUTPUT = 256 * 1024  # stdout/stderr kept per job; more is cut with a note, so a chatty script cannot flood the bus


class ScriptFailed(Exception):
    def __init__(self, traceback_text: str, stdout: str, stderr: str):
        super().__init__(traceback_text.strip().splitlines()[-1] if traceback_text.strip() else "script failed")
        self.traceback = traceback_text
        self.stdout = stdout
        self.stderr = stderr


def _cut(text: str) -> str:
    return text if len(text) <= MAX_OUTPUT else text[:MAX_OUTPUT] + f"\n... [{len(text) - MAX_OUTPUT} characters cut]"


def run_script(code: str) -> Reply:
    """Run `code` like the Python console: stdout and stderr captured, the last expression's value kept."""
    import bpy

    if not isinstance(code, str):
        raise CommandError("code must be a string")
    out, err = io.StringIO(), io.StringIO()
    # OUTPUT_DIR: the folder this Blender may write in (None when it has none), the way the safe policy
    # lets a script name its output paths.
    namespace: dict[str, Any] = {"bpy": bpy, "__name__": "__blender_mcp__", "OUTPUT_DIR": current_limits().output_dir}
    value: Any = None
    try:
        tree = ast.parse(code, filename="<job>", mode="exec")
        last_expr = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last_expr = ast.Expression(tree.body.pop().value)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            exec(compile(tree, "<job>", "exec"), namespace)
            if last_expr is not None:
                value = eval(compile(last_expr, "<job>", "eval"), namespace)
    except BaseException as exc:  # SystemExit from a script must not end Blender's job loop either
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ScriptFailed(traceback.format_exc(), _cut(out.getvalue()), _cut(err.getvalue())) from None
    return Reply(_cut(out.getvalue()), {"stderr": _cut(err.getvalue()),
                                        "value": None if value is None else _cut(repr(value))})


@command("execute_code", needs_code_policy=True)
def execute_code(code: str) -> Reply:
    """result: stdout (as the spec's example prints it); details: stderr and the last expression's value."""
    return run_script(code)
