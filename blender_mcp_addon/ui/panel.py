"""The sidebar panel (3D Viewport > Sidebar > MCP): connection, clients, queue, jobs, approvals."""

from __future__ import annotations

import textwrap
import time

import bpy

from ..session import get_keeper, get_runtime, note_panel_drawn

STATUS_ICONS = {"connected": "CHECKMARK", "connecting": "SORTTIME", "reconnecting": "FILE_REFRESH",
                "error": "ERROR", "disconnected": "UNLINKED"}
JOB_ICONS = {"completed": "CHECKMARK", "error": "ERROR", "running": "PLAY", "queued": "SORTTIME",
             "cancelled": "CANCEL"}


class VIEW3D_PT_blender_mcp(bpy.types.Panel):
    bl_label = "BlenderMCP Bus"
    bl_idname = "VIEW3D_PT_blender_mcp"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "MCP"

    def draw(self, context):
        note_panel_drawn()  # the client list is refreshed only while the panel is drawn (session.py)
        layout = self.layout
        runtime = get_runtime()
        keeper = get_keeper()
        state = runtime.state if runtime else None
        status = state.status if state else "disconnected"

        box = layout.box()
        col = box.column(align=True)
        col.alert = status == "error"  # drawn red
        headline = status
        if status == "reconnecting" and state and state.retry_at:
            headline = f"reconnecting in {max(0, round(state.retry_at - time.time()))} s"
        col.label(text=headline, icon=STATUS_ICONS.get(status, "QUESTION"))
        if state and state.reason:  # the reason in plain words, wrapped to the sidebar's width
            width = max(16, int(context.region.width / (7 * context.preferences.system.ui_scale)) - 4)
            for line in textwrap.wrap(state.reason, width)[:4]:
                col.label(text=line)
        if keeper is not None and keeper.username:
            box.label(text=f"User: {keeper.username}", icon="USER")
        if state and state.server.get("version") and status == "connected":
            box.label(text=f"Server {state.server['version']}, bus protocol {state.server.get('protocol', '?')}",
                      icon="INFO")
        row = box.row(align=True)
        if keeper is None:
            row.operator("blender_mcp.login", icon="KEYINGSET")
        else:
            if status in ("connected", "connecting", "reconnecting"):
                row.operator("blender_mcp.disconnect", icon="UNLINKED")
            else:
                row.operator("blender_mcp.connect", icon="LINKED")
            row.operator("blender_mcp.logout", icon="X")
        row = layout.row(align=True)
        if keeper is not None:
            row.operator("blender_mcp.copy_claude_config", text="Copy Claude Config", icon="COPYDOWN")
        row.operator("blender_mcp.open_log", text="Logs", icon="TEXT")
        if runtime is None:
            return

        col = layout.column(align=True)
        col.label(text=f"Queue: {len(runtime.pump)} waiting", icon="PRESET")
        if runtime.client is not None and runtime.client.pending_updates():
            col.label(text=f"{runtime.client.pending_updates()} replies waiting to be sent", icon="EXPORT")

        if runtime.approvals:
            box = layout.box()
            box.label(text=f"Waiting for approval ({len(runtime.approvals)})", icon="QUESTION")
            for job_id, item in list(runtime.approvals.items())[:5]:
                script = item.payload.get("script") or item.payload.get("params", {}).get("code", "")
                sub = box.column(align=True)
                sub.label(text=f"{job_id} from {item.record.get('from_uuid') or '?'}")
                for line in script.splitlines()[:4]:
                    sub.label(text=line[:60])
                row = sub.row(align=True)
                row.operator("blender_mcp.approve", icon="CHECKMARK").job_id = job_id
                row.operator("blender_mcp.reject", icon="CANCEL").job_id = job_id
                row.operator("blender_mcp.show_script", text="", icon="TEXT").job_id = job_id

        if state and state.clients:
            box = layout.box()
            box.label(text="On the bus", icon="COMMUNITY")
            for c in state.clients[:8]:
                icon = "LAYER_ACTIVE" if c.get("online") else "LAYER_USED"
                blender = (c.get("versions") or {}).get("blender")
                kind = f"Blender {blender}" if blender else c.get("client_type")
                box.label(text=f"{c.get('label') or c['uuid']} ({kind})", icon=icon)

        running = [r for r in runtime.recent if r.status == "running" and r.progress is not None]
        for record in running[-2:]:
            text = f"{record.command}: {record.message}"
            if hasattr(layout, "progress"):  # Blender 4.0+
                layout.progress(factor=record.progress, type="BAR", text=text)
            else:
                layout.label(text=f"{round(record.progress * 100)}%  {text}", icon="SORTTIME")

        if runtime.recent:
            box = layout.box()
            box.label(text="Recent jobs", icon="TIME")
            now = time.time()
            for record in list(runtime.recent)[-6:][::-1]:
                row = box.row()
                row.label(text=f"{record.command} from {record.origin[:14]}", icon=JOB_ICONS.get(record.status, "DOT"))
                age = record.duration if record.finished else now - record.started
                row.label(text=f"{record.status} {age:.2f}s")


CLASSES = (VIEW3D_PT_blender_mcp,)
