"""What the operators share: build a Runtime from the preferences, connect it, drive it with the timer."""

from __future__ import annotations

import os

import bpy

from ..client import ClientConfig, TokenKeeper
from ..limits import OUTPUT_FOLDER_NAME, Limits
from ..runtime import Runtime
from ..runtime.drivers import make_timer
from ..session import (
    client_versions,
    default_label,
    get_keeper,
    get_runtime,
    panel_recently_drawn,
    set_keeper,
    set_runtime,
    stable_uuid,
)
from .preferences import get_prefs


def _redraw_when_changed(runtime: Runtime) -> None:
    state = runtime.state
    pending = runtime.client.pending_updates() if runtime.client else 0
    # listed_at: each refresh of the client list redraws the panel, whose draw() then asks for the next one;
    # a panel nobody shows is not drawn, and the refreshes stop (session.panel_recently_drawn).
    key = (state.status, state.reason, state.listed_at, len(runtime.pump), pending)
    if not runtime.dirty and key == getattr(runtime, "_drawn_key", None):
        return
    runtime.dirty = False
    runtime._drawn_key = key  # type: ignore[attr-defined]
    # Only the sidebar (the panel's region), not the whole area with its 3D viewport.
    for window in getattr(bpy.context.window_manager, "windows", []):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                for region in area.regions:
                    if region.type == "UI":
                        region.tag_redraw()


_timer = make_timer(get_runtime, after=_redraw_when_changed)


def _integration_enabled(name: str) -> bool:
    prefs = get_prefs()
    return bool(prefs and getattr(prefs, f"{name}_enabled", False))


def _policy() -> str:
    prefs = get_prefs()
    return prefs.execution_policy if prefs else "deny"


def _checkpoint_before_code() -> bool:
    prefs = get_prefs()
    return bool(prefs and prefs.checkpoint_before_code)


def _limits() -> Limits:
    """Read for every job, so a changed preference counts from the next job on."""
    prefs = get_prefs()
    if prefs is None:
        return Limits(source="preferences")
    folder = bpy.path.abspath(prefs.output_folder) if prefs.output_folder else None
    if folder is None and prefs.write_only_in_output:
        folder = os.path.join(os.path.expanduser("~"), OUTPUT_FOLDER_NAME)
    return Limits(max_render_size=prefs.max_render_size, max_render_samples=prefs.max_render_samples,
                  output_dir=folder, write_anywhere=not prefs.write_only_in_output, source="preferences")


def _status_bar(record) -> None:
    """Long jobs (downloads) show their progress in the status bar as well as in the panel."""
    workspace = getattr(bpy.context, "workspace", None)
    if workspace is None:
        return
    if record is None:
        workspace.status_text_set(None)
    else:
        workspace.status_text_set(f"MCP {record.command}: {round((record.progress or 0) * 100)}%  {record.message}")


def ensure_runtime() -> Runtime:
    runtime = get_runtime()
    if runtime is None:
        runtime = Runtime(policy=_policy, integration_enabled=_integration_enabled, limits=_limits,
                          checkpoint_before_code=_checkpoint_before_code)
        runtime.on_progress = _status_bar
        set_runtime(runtime)
    if not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=0.0, persistent=True)
    return runtime


def keeper_from_prefs() -> TokenKeeper | None:
    """The logged-in keeper, or one from a remembered refresh token."""
    keeper = get_keeper()
    prefs = get_prefs()
    if keeper is None and prefs and prefs.refresh_token:
        keeper = TokenKeeper(prefs.server_url, username=prefs.username, refresh_token=prefs.refresh_token)
        set_keeper(keeper)
    return keeper


def config_from_prefs() -> ClientConfig:
    prefs = get_prefs()
    assert prefs is not None
    if not prefs.client_uuid:
        prefs.client_uuid = stable_uuid()
    return ClientConfig(server_url=prefs.server_url, client_uuid=prefs.client_uuid, client_type="blender",
                        is_persistent=True, label=prefs.label or default_label(), group_id=prefs.group_id or None,
                        capabilities=[c.strip() for c in prefs.capabilities.split(",") if c.strip()],
                        versions=client_versions(), list_clients=panel_recently_drawn)


def connect() -> str | None:
    """Connect with the current login; returns an error text, or None."""
    keeper = keeper_from_prefs()
    if keeper is None:
        return "log in first"
    ensure_runtime().connect(config_from_prefs(), keeper)
    return None


def disconnect() -> None:
    runtime = get_runtime()
    if runtime is not None:
        runtime.disconnect()


def teardown() -> None:
    runtime = get_runtime()
    if runtime is not None:
        runtime.shutdown("the add-on was disabled")
        set_runtime(None)
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
