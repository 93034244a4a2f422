"""BlenderMCP bus: turns this Blender into an authenticated client of a BlenderMCP bus server.

Importing this package must not need bpy (the server and Style B clients
import `protocol` and `client` from it); everything bpy lives behind register().
"""

from __future__ import annotations

bl_info = {  # read by Blender 3.4-4.1, which install this zip as a legacy add-on
    "name": "BlenderMCP Bus",
    "author": "BlenderMCP bus team",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "3D Viewport > Sidebar > MCP",
    "description": "Drive Blender from LLM clients through an MCP message bus",
    "category": "Development",
}

_cli_handle = None


def register() -> None:
    import bpy

    from . import legacy

    if legacy.needs_wheels():  # Blender < 4.2 installed us as a legacy add-on: make the wheels importable
        legacy.activate_wheels()
    from . import handlers, ui
    from .runtime import logfile

    logfile.start()
    handlers.load_all()
    ui.register()
    global _cli_handle
    if hasattr(bpy.utils, "register_cli_command"):  # Blender 4.2+
        from . import worker

        _cli_handle = bpy.utils.register_cli_command("mcp_worker", worker.cli_command)
    _auto_connect()


def unregister() -> None:
    import bpy

    from . import ui
    from .runtime import logfile

    global _cli_handle
    if _cli_handle is not None:
        bpy.utils.unregister_cli_command(_cli_handle)
        _cli_handle = None
    ui.unregister()
    logfile.stop()


def _auto_connect() -> None:
    """Connect at startup when the user asked for it and a login is remembered (GUI only)."""
    import bpy

    if bpy.app.background:
        return
    from .ui.preferences import get_prefs

    prefs = get_prefs()
    if prefs and prefs.auto_connect and prefs.refresh_token:
        from .ui import connection

        bpy.app.timers.register(lambda: connection.connect() and None, first_interval=1.0)
