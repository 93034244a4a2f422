"""Operators: log in/out, connect/disconnect, approve/reject scripts."""

from __future__ import annotations

import threading

import bpy
from bpy.props import StringProperty

from ..client import AuthError, TokenKeeper
from ..protocol.client_config import claude_code_command
from ..session import get_keeper, get_runtime, set_keeper
from . import connection
from .preferences import get_prefs


class BLENDER_MCP_OT_login(bpy.types.Operator):
    """Log in to the BlenderMCP bus server (the password is not stored)"""

    bl_idname = "blender_mcp.login"
    bl_label = "Log In"

    username: StringProperty(name="Username")
    password: StringProperty(name="Password", subtype="PASSWORD", options={"SKIP_SAVE"})

    def invoke(self, context, event):
        prefs = get_prefs()
        self.username = prefs.username if prefs else ""
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        prefs = get_prefs()
        keeper = TokenKeeper(prefs.server_url, username=self.username)
        try:
            keeper.login_blocking(self.username, self.password)
        except AuthError as exc:
            self.report({"ERROR"}, f"Login refused: {exc}")
            return {"CANCELLED"}
        except Exception as exc:
            self.report({"ERROR"}, f"Cannot reach {keeper.base}: {exc}")
            return {"CANCELLED"}
        finally:
            self.password = ""
        set_keeper(keeper)
        prefs.username = self.username
        prefs.refresh_token = (keeper.refresh_token or "") if prefs.remember_login else ""
        error = connection.connect()
        if error:
            self.report({"WARNING"}, error)
        self.report({"INFO"}, f"Logged in as {self.username}")
        return {"FINISHED"}


class BLENDER_MCP_OT_logout(bpy.types.Operator):
    """Disconnect, revoke the refresh token on the server and forget the login"""

    bl_idname = "blender_mcp.logout"
    bl_label = "Log Out"

    def execute(self, context):
        connection.disconnect()
        keeper = get_keeper()
        set_keeper(None)
        prefs = get_prefs()
        if prefs:
            prefs.refresh_token = ""
        if keeper is not None:
            threading.Thread(target=keeper.logout_blocking, daemon=True).start()  # network off the main thread
        return {"FINISHED"}


class BLENDER_MCP_OT_connect(bpy.types.Operator):
    """Connect this Blender to the bus"""

    bl_idname = "blender_mcp.connect"
    bl_label = "Connect"

    def execute(self, context):
        error = connection.connect()
        if error:
            self.report({"ERROR"}, error)
            return {"CANCELLED"}
        return {"FINISHED"}


class BLENDER_MCP_OT_disconnect(bpy.types.Operator):
    """Leave the bus (queued jobs stay on the server for this client)"""

    bl_idname = "blender_mcp.disconnect"
    bl_label = "Disconnect"

    def execute(self, context):
        connection.disconnect()
        return {"FINISHED"}


class _ApprovalOperator:
    job_id: StringProperty()

    def _runtime(self):
        runtime = get_runtime()
        if runtime is None or self.job_id not in runtime.approvals:
            self.report({"WARNING"}, "That job is no longer waiting")
            return None
        return runtime


class BLENDER_MCP_OT_approve(_ApprovalOperator, bpy.types.Operator):
    """Run this script now"""

    bl_idname = "blender_mcp.approve"
    bl_label = "Approve"

    def execute(self, context):
        runtime = self._runtime()
        if runtime is None:
            return {"CANCELLED"}
        runtime.approve(self.job_id)
        return {"FINISHED"}


class BLENDER_MCP_OT_reject(_ApprovalOperator, bpy.types.Operator):
    """Refuse this script; the caller gets an error"""

    bl_idname = "blender_mcp.reject"
    bl_label = "Reject"

    def execute(self, context):
        runtime = self._runtime()
        if runtime is None:
            return {"CANCELLED"}
        runtime.reject(self.job_id)
        return {"FINISHED"}


class BLENDER_MCP_OT_show_script(_ApprovalOperator, bpy.types.Operator):
    """Open the pending script in a text block to read it in full"""

    bl_idname = "blender_mcp.show_script"
    bl_label = "Show Script"

    def execute(self, context):
        runtime = self._runtime()
        if runtime is None:
            return {"CANCELLED"}
        item = runtime.approvals[self.job_id]
        text = bpy.data.texts.get(f"mcp_{self.job_id}") or bpy.data.texts.new(f"mcp_{self.job_id}")
        text.from_string(item.payload.get("script") or item.payload.get("params", {}).get("code", ""))
        self.report({"INFO"}, f"Script in the text block {text.name}")
        return {"FINISHED"}


class BLENDER_MCP_OT_copy_claude_config(bpy.types.Operator):
    """Mint an API token and copy a ready `claude mcp add` command to the clipboard"""

    bl_idname = "blender_mcp.copy_claude_config"
    bl_label = "Copy Claude Code Config"

    def execute(self, context):
        keeper = get_keeper()
        if keeper is None or not keeper.access_token:
            self.report({"ERROR"}, "Log in first")
            return {"CANCELLED"}
        try:
            token = mint_api_token(keeper, "Claude Code (from Blender)")
        except Exception as exc:
            self.report({"ERROR"}, f"Could not mint a token: {exc}")
            return {"CANCELLED"}
        context.window_manager.clipboard = claude_code_command(keeper.base, token)
        self.report({"INFO"}, "Copied a `claude mcp add` command with a new API token")
        return {"FINISHED"}


class BLENDER_MCP_OT_open_log(bpy.types.Operator):
    """Open the add-on's log file"""

    bl_idname = "blender_mcp.open_log"
    bl_label = "Open Logs"

    def execute(self, context):
        from ..runtime import logfile

        path = logfile.start()
        path.touch(exist_ok=True)
        bpy.ops.wm.path_open(filepath=str(path))
        return {"FINISHED"}


def mint_api_token(keeper: TokenKeeper, name: str) -> str:
    """POST /auth/tokens with the current login: the same revocable API tokens the server CLI makes."""
    import httpx

    r = httpx.post(f"{keeper.base}/auth/tokens", json={"name": name},
                   headers={"Authorization": f"Bearer {keeper.access_token}"}, timeout=10)
    if r.status_code != 200:
        raise AuthError(r.json().get("message", f"HTTP {r.status_code}"))
    return r.json()["token"]


CLASSES = (BLENDER_MCP_OT_login, BLENDER_MCP_OT_logout, BLENDER_MCP_OT_connect, BLENDER_MCP_OT_disconnect,
           BLENDER_MCP_OT_approve, BLENDER_MCP_OT_reject, BLENDER_MCP_OT_show_script,
           BLENDER_MCP_OT_copy_claude_config, BLENDER_MCP_OT_open_log)
