"""This Blender process's shared state: its one Runtime, the logged-in user's tokens, the add-on's folders.

It sits beside `runtime`, not in it, so the handlers, the integrations and the UI can all read it without
importing `runtime` (which imports the handlers): the package has no import cycle.
"""

from __future__ import annotations

import platform
import socket
import time
import uuid as uuid_mod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .limits import Limits
from .protocol.versions import PROTOCOL_VERSION, RELEASE

if TYPE_CHECKING:
    from .runtime import Runtime

_runtime: Runtime | None = None
_keeper = None  # the TokenKeeper of the logged-in user, in memory only


# Jobs that changed the scene since it was last saved or opened here. A headless Blender (the bpy module
# above all) does not always set bpy.data.is_dirty for changes made from Python, so "unsaved changes" is
# either; it may say yes after a script saved the file itself, never no after a change.
_changed_since_save = False


def note_scene_changed() -> None:
    global _changed_since_save
    _changed_since_save = True


def note_file_saved() -> None:
    """The open file and the one on disk agree again (saved, or just opened)."""
    global _changed_since_save
    _changed_since_save = False


def unsaved_changes(is_dirty: bool) -> bool:
    return is_dirty or _changed_since_save


# When the sidebar panel last drew itself (time.monotonic()): the bus's client list is fetched only while
# someone may be looking at it.
PANEL_LOOKED_AT_SECONDS = 15.0
_panel_drawn_at = float("-inf")


def note_panel_drawn() -> None:
    global _panel_drawn_at
    _panel_drawn_at = time.monotonic()


def panel_recently_drawn() -> bool:
    """Any thread: whether the panel drew itself in the last PANEL_LOOKED_AT_SECONDS."""
    return time.monotonic() - _panel_drawn_at < PANEL_LOOKED_AT_SECONDS


def get_runtime() -> Runtime | None:
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def current_limits() -> Limits:
    """The bounds the handlers enforce: the runtime's (worker flags or preferences), else the defaults."""
    return _runtime.limits if _runtime is not None else Limits()


def get_keeper():
    return _keeper


def set_keeper(keeper) -> None:
    global _keeper
    _keeper = keeper


def addon_package() -> str:
    """`bl_ext.user_default.blender_mcp` as an extension, `blender_mcp` as a legacy add-on."""
    return __package__  # this module lives at the add-on's top


def user_folder() -> Path:
    """A folder of this add-on's own in the Blender user folder (extension path on 4.2+)."""
    import bpy

    if hasattr(bpy.utils, "extension_path_user"):
        try:
            return Path(bpy.utils.extension_path_user(addon_package(), create=True))
        except (ValueError, TypeError):
            pass
    path = Path(bpy.utils.user_resource("CONFIG", path="blender_mcp", create=True))
    path.mkdir(parents=True, exist_ok=True)
    return path


def stable_uuid() -> str:
    """This install's client uuid, made once and kept in the user folder."""
    path = user_folder() / "client_uuid.txt"
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = f"blender-{uuid_mod.uuid4().hex[:12]}"
    path.write_text(value)
    return value


def default_label() -> str:
    return f"Blender on {socket.gethostname()}"


def client_versions() -> dict[str, Any]:
    """What this Blender tells the server when it registers (protocol/versions.py)."""
    import bpy

    return {"addon": RELEASE, "blender": bpy.app.version_string, "python": platform.python_version(),
            "protocol": PROTOCOL_VERSION}
