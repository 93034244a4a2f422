"""Add-on preferences. Passwords are never stored; a refresh token only when the user asks to be remembered."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from ..limits import DEFAULT_MAX_RENDER_SAMPLES, DEFAULT_MAX_RENDER_SIZE
from ..session import addon_package

POLICY_ITEMS = [
    ("allow", "Allow", "Run code that jobs send without asking"),
    ("safe", "Safe", "Read each script first: run it when it stays inside the scene and the output folder, "
                     "refuse it with the reason when it reaches for files, the network, other programs or "
                     "Blender itself"),
    ("ask", "Ask", "Show each script in the panel's approval inbox first"),
    ("deny", "Deny", "Refuse every code-execution job"),
]


class BlenderMCPPreferences(bpy.types.AddonPreferences):
    bl_idname = addon_package()

    server_url: StringProperty(name="Server URL", default="http://127.0.0.1:8000")
    username: StringProperty(name="Username", default="demo")
    client_uuid: StringProperty(name="Client UUID", description="Empty: this install's stable uuid")
    label: StringProperty(name="Label", description="How other clients see this Blender (empty: host name)")
    group_id: StringProperty(name="Group", description="e.g. render-cluster; empty for none")
    capabilities: StringProperty(name="Capabilities", default="scene,code,render,polyhaven")
    auto_connect: BoolProperty(name="Connect at startup", description="Needs a remembered login", default=False)
    execution_policy: EnumProperty(name="Code execution", items=POLICY_ITEMS, default="ask")
    checkpoint_before_code: BoolProperty(name="Checkpoint before each script", default=False,
                                         description="Save a checkpoint of the open file before a job's script "
                                                     "runs, so restore_checkpoint can take a bad one back")
    remember_login: BoolProperty(name="Remember login", default=False,
                                 description="Keep a refresh token in the preferences (never the password)")
    refresh_token: StringProperty(name="Refresh token", subtype="PASSWORD", options={"HIDDEN"})

    # The same bounds a headless worker takes as flags (limits.py); the catalog allows up to 8192 and 4096.
    max_render_size: IntProperty(name="Max render size", default=DEFAULT_MAX_RENDER_SIZE, min=16, max=8192,
                                 subtype="PIXEL", description="Refuse jobs that ask to render a longer side")
    max_render_samples: IntProperty(name="Max render samples", default=DEFAULT_MAX_RENDER_SAMPLES, min=1, max=4096,
                                    description="Refuse jobs that ask to render with more samples")
    output_folder: StringProperty(name="Output folder", subtype="DIR_PATH",
                                  description="Where jobs' relative save/export paths land (empty: they must "
                                              "give absolute paths, or ~/blender-mcp-output when writes are "
                                              "limited to the output folder)")
    write_only_in_output: BoolProperty(name="Write only in the output folder", default=False,
                                       description="Refuse save_blend and export_scene paths outside the output "
                                                   "folder (saving the open file in place stays allowed)")

    polyhaven_enabled: BoolProperty(name="Poly Haven", default=True)
    polyhaven_api_url: StringProperty(name="Poly Haven API", default="https://api.polyhaven.com")
    rodin_enabled: BoolProperty(name="Hyper3D Rodin", default=False)
    rodin_api_url: StringProperty(name="Rodin API", default="https://hyperhuman.deemos.com/api")
    rodin_api_key: StringProperty(name="Rodin API key", subtype="PASSWORD")
    sketchfab_enabled: BoolProperty(name="Sketchfab", default=False)
    sketchfab_api_url: StringProperty(name="Sketchfab API", default="https://api.sketchfab.com/v3")
    sketchfab_api_key: StringProperty(name="Sketchfab API key", subtype="PASSWORD")
    hunyuan3d_enabled: BoolProperty(name="Hunyuan3D", default=False)
    hunyuan3d_api_url: StringProperty(name="Hunyuan3D API", default="https://ai3d.tencentcloudapi.com")
    hunyuan3d_secret_id: StringProperty(name="Tencent Cloud SecretId", subtype="PASSWORD")
    hunyuan3d_secret_key: StringProperty(name="Tencent Cloud SecretKey", subtype="PASSWORD")
    hunyuan3d_region: StringProperty(name="Tencent Cloud region", default="ap-guangzhou")
    tripo_enabled: BoolProperty(name="Tripo", default=False)
    tripo_api_url: StringProperty(name="Tripo API", default="https://api.tripo3d.ai/v2/openapi")
    tripo_api_key: StringProperty(name="Tripo API key", subtype="PASSWORD")
    meshy_enabled: BoolProperty(name="Meshy", default=False)
    meshy_api_url: StringProperty(name="Meshy API", default="https://api.meshy.ai")
    meshy_api_key: StringProperty(name="Meshy API key", subtype="PASSWORD")
    polypizza_enabled: BoolProperty(name="Poly Pizza", default=False)
    polypizza_api_url: StringProperty(name="Poly Pizza API", default="https://api.poly.pizza/v1.1")
    polypizza_api_key: StringProperty(name="Poly Pizza API key", subtype="PASSWORD")
    ambientcg_enabled: BoolProperty(name="ambientCG", default=True)
    ambientcg_api_url: StringProperty(name="ambientCG API", default="https://ambientcg.com/api/v2")
    max_download_mb: IntProperty(name="Max download size (MB)", default=2048, min=1,
                                 description="Refuse any single downloaded file larger than this")

    def draw(self, context):
        layout = self.layout
        col = layout.column(heading="Server")
        col.prop(self, "server_url")
        col.prop(self, "username")
        col.prop(self, "remember_login")
        col.prop(self, "auto_connect")
        col = layout.column(heading="This client")
        col.prop(self, "client_uuid")
        col.prop(self, "label")
        col.prop(self, "group_id")
        col.prop(self, "capabilities")
        col.prop(self, "execution_policy")
        col.prop(self, "checkpoint_before_code")
        col = layout.column(heading="Limits")
        col.prop(self, "max_render_size")
        col.prop(self, "max_render_samples")
        col.prop(self, "output_folder")
        col.prop(self, "write_only_in_output")
        col = layout.column(heading="Integrations")
        col.prop(self, "polyhaven_enabled")
        col.prop(self, "polyhaven_api_url")
        col.prop(self, "rodin_enabled")
        col.prop(self, "rodin_api_url")
        col.prop(self, "rodin_api_key")
        col.prop(self, "sketchfab_enabled")
        col.prop(self, "sketchfab_api_url")
        col.prop(self, "sketchfab_api_key")
        for name in ("hunyuan3d_enabled", "hunyuan3d_api_url", "hunyuan3d_secret_id", "hunyuan3d_secret_key",
                     "hunyuan3d_region", "tripo_enabled", "tripo_api_url", "tripo_api_key", "meshy_enabled",
                     "meshy_api_url", "meshy_api_key", "polypizza_enabled", "polypizza_api_url", "polypizza_api_key",
                     "ambientcg_enabled", "ambientcg_api_url", "max_download_mb"):
            col.prop(self, name)


def get_prefs() -> BlenderMCPPreferences | None:
    addon = bpy.context.preferences.addons.get(addon_package())
    return addon.preferences if addon else None  # type: ignore[return-value]


CLASSES = (BlenderMCPPreferences,)
