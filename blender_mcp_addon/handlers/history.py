"""Taking work back: named checkpoints of the open file, and Blender's own undo and redo.

A checkpoint is a copy of the open file saved beside it (`<name>_checkpoints/`)
or, for a file never saved, in the add-on's own folder. The folder keeps at
most `BLENDER_MCP_MAX_CHECKPOINTS` (20) copies and `BLENDER_MCP_CHECKPOINT_MAX_BYTES`
(2 GiB) between them; the oldest go first. Restoring first checkpoints the
current state when it has unsaved changes, so a restore never loses work.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import bpy

from ..session import note_file_saved, unsaved_changes
from . import CommandError, command

_SUFFIX = ".blend"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HOLDER = "_checkpoints"


def _limit(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


def max_checkpoints() -> int:
    return _limit("BLENDER_MCP_MAX_CHECKPOINTS", 20)


def max_checkpoint_bytes() -> int:
    return _limit("BLENDER_MCP_CHECKPOINT_MAX_BYTES", 2 * 1024 ** 3)


def _own_folder() -> Path:
    """Where checkpoints of a never-saved file go: the add-on's folder in Blender's user resources."""
    return Path(bpy.utils.user_resource("CONFIG", path="blender_mcp_checkpoints", create=True))


def checkpoint_folder() -> Path:
    """Beside the open file; for a file restored from a checkpoint, that checkpoint's own folder."""
    if not bpy.data.filepath:
        return _own_folder()
    current = Path(bpy.data.filepath)
    if current.parent.name.endswith(_HOLDER) or current.parent == _own_folder():
        return current.parent
    return current.parent / f"{current.stem}{_HOLDER}"


def _listing(folder: Path) -> list[dict[str, Any]]:
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob(f"*{_SUFFIX}"):
        stat = path.stat()
        found.append({"name": path.stem, "path": str(path), "bytes": stat.st_size, "created": stat.st_mtime})
    return sorted(found, key=lambda c: c["created"])


def _prune(folder: Path, keep: set[str]) -> list[str]:
    """Drop the oldest checkpoints past the count and size bounds, never those in `keep`."""
    removed = []
    entries = _listing(folder)
    while entries and (len(entries) > max_checkpoints()
                       or sum(e["bytes"] for e in entries) > max_checkpoint_bytes()):
        oldest = next((e for e in entries if e["name"] not in keep), None)
        if oldest is None:
            break
        Path(oldest["path"]).unlink(missing_ok=True)
        entries.remove(oldest)
        removed.append(oldest["name"])
    return removed


def save_checkpoint(name: str | None = None, protect: str | None = None) -> dict[str, Any]:
    """Save a copy of the open file as checkpoint `name` (default: the time); the open file is unchanged.
    The bounds then drop the oldest others, but never `protect` (the one a restore is about to open)."""
    name = name or time.strftime("cp-%Y%m%d-%H%M%S")
    if not _NAME.match(name):
        raise CommandError("a checkpoint name is 1-64 letters, digits, '.', '_' or '-', starting with a letter "
                           "or digit")
    folder = checkpoint_folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}{_SUFFIX}"
    bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True, check_existing=False)
    size = path.stat().st_size
    if size > max_checkpoint_bytes():
        path.unlink(missing_ok=True)
        raise CommandError(f"the file is {size} bytes, over the checkpoint bound of {max_checkpoint_bytes()} bytes "
                           "(BLENDER_MCP_CHECKPOINT_MAX_BYTES); nothing was kept")
    removed = _prune(folder, keep={name, protect or name})
    return {"name": name, "path": str(path), "bytes": size, "removed": removed,
            "limits": {"count": max_checkpoints(), "bytes": max_checkpoint_bytes()}}


@command("checkpoint")
def checkpoint(name: str | None = None) -> dict[str, Any]:
    return save_checkpoint(name)


@command("list_checkpoints")
def list_checkpoints() -> dict[str, Any]:
    folder = checkpoint_folder()
    return {"folder": str(folder), "file": bpy.data.filepath or None, "checkpoints": _listing(folder),
            "limits": {"count": max_checkpoints(), "bytes": max_checkpoint_bytes()}}


@command("restore_checkpoint")
def restore_checkpoint(name: str) -> dict[str, Any]:
    folder = checkpoint_folder()
    path = folder / f"{name}{_SUFFIX}"
    if not _NAME.match(name or "") or not path.is_file():
        known = ", ".join(c["name"] for c in _listing(folder)) or "none"
        raise CommandError(f"no checkpoint {name!r} in {folder} (checkpoints: {known})")
    original = bpy.data.filepath
    saved_first = (save_checkpoint(f"before-restore-{time.strftime('%H%M%S')}", protect=name)["name"]
                   if unsaved_changes(bpy.data.is_dirty) else None)
    bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False)
    if original and not Path(original).parent.name.endswith(_HOLDER):
        # Keep working on the artist's own file: the restored state is saved over it (the state it replaced
        # is the checkpoint just taken, or what that file already held).
        bpy.ops.wm.save_as_mainfile(filepath=original, check_existing=False)
    note_file_saved()
    return {"restored": name, "file": bpy.data.filepath, "saved_current_as": saved_first}


def _in_window(call: Any) -> Any:
    """Run `call()` in the window's context. Timers already run there; only without a window in the context
    is one lent. Not always: Blender 3.4 crashed (segfault) on undo_push inside temp_override while another
    Python thread (the bus client's) was running."""
    if bpy.context.window is not None:
        return call()
    wm = bpy.context.window_manager
    with bpy.context.temp_override(window=wm.windows[0], screen=wm.windows[0].screen):
        return call()


def _step(operator: Any, what: str, steps: int) -> dict[str, Any]:
    if bpy.app.background:
        raise CommandError("undo and redo need a Blender window: a headless Blender keeps no undo steps. "
                           "Use checkpoint / restore_checkpoint instead.")
    if not bpy.context.window_manager.windows:
        raise CommandError("no Blender window is open")

    def run() -> int:
        done = 0
        for _ in range(steps):
            if not operator.poll() or "FINISHED" not in operator():
                break
            done += 1
        return done

    done = _in_window(run)
    if done == 0:
        raise CommandError(f"nothing to {what}")
    return {what: done, "asked": steps}


@command("undo")
def undo(steps: int = 1) -> dict[str, Any]:
    return _step(bpy.ops.ed.undo, "undo", steps)


@command("redo")
def redo(steps: int = 1) -> dict[str, Any]:
    return _step(bpy.ops.ed.redo, "redo", steps)


def push_undo_step(message: str) -> bool:
    """In a window: make what a job just did one step of Blender's undo stack, named `message`."""
    if bpy.app.background or not bpy.context.window_manager.windows:
        return False
    return "FINISHED" in _in_window(lambda: bpy.ops.ed.undo_push(message=message[:63]))
