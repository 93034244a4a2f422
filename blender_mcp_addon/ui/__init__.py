"""The UI: preferences, operators and the sidebar panel, registered in that order and removed in reverse."""

from __future__ import annotations

import bpy

from . import operators, panel, preferences

_CLASSES = (*preferences.CLASSES, *operators.CLASSES, *panel.CLASSES)


def register() -> None:
    for cls in _CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    from . import connection

    connection.teardown()
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
