"""The `safe` code policy on a corpus of scripts: what a model writes for modelling must pass, what reaches
outside the scene must be refused with a reason (read, never run: no Blender needed)."""

from __future__ import annotations

import pytest

from blender_mcp_addon.code_policy import check_script

OUT = "/srv/mcp-output"

MUST_PASS = {
    "modelling": """
import bpy, bmesh
from mathutils import Vector, Matrix
bpy.ops.mesh.primitive_cube_add(size=2, location=(0, 0, 1))
obj = bpy.context.active_object
mod = obj.modifiers.new("Bevel", "BEVEL")
mod.width = 0.1
bm = bmesh.new()
bm.from_mesh(obj.data)
bmesh.ops.subdivide_edges(bm, edges=bm.edges[:], cuts=2)
bm.to_mesh(obj.data)
bm.free()
obj.location += Vector((1, 0, 0))
""",
    "materials": """
import bpy
mat = bpy.data.materials.new("Red")
mat.use_nodes = True
bsdf = mat.node_tree.nodes["Principled BSDF"]
bsdf.inputs["Base Color"].default_value = (1, 0, 0, 1)
for attr in ("metallic", "roughness"):
    setattr(mat, attr, 0.5)
bpy.data.objects["Cube"].data.materials.append(mat)
""",
    "animation and maths": """
import bpy, math, random
from collections import defaultdict
obj = bpy.data.objects["Cube"]
for frame in range(1, 50, 10):
    obj.rotation_euler.z = math.radians(frame * 3 + random.random())
    obj.keyframe_insert("rotation_euler", frame=frame)
counts = defaultdict(int)
print(sum(counts.values()))
""",
    "render into the output folder": """
import bpy
scene = bpy.context.scene
scene.render.filepath = OUTPUT_DIR + "/frame.png"
bpy.ops.render.render(write_still=True)
""",
    "export and import inside it": f"""
import bpy
bpy.ops.export_scene.gltf(filepath=f"{{OUTPUT_DIR}}/model.glb")
bpy.ops.import_scene.gltf(filepath="{OUT}/other.glb")
bpy.ops.wm.obj_export(filepath=OUTPUT_DIR + "/model.obj")
""",
    "numpy and json": """
import json
import numpy as np
verts = np.zeros((8, 3))
print(json.dumps({"n": len(verts)}))
""",
}

MUST_REFUSE = {
    "os": ("import os\nos.system('rm -rf ~')", "imports 'os'"),
    "subprocess": ("import subprocess\nsubprocess.run(['ls'])", "imports 'subprocess'"),
    "socket": ("import socket", "imports 'socket'"),
    "from urllib": ("from urllib.request import urlopen", "imports 'urllib.request'"),
    "requests": ("import requests\nrequests.get('http://example.com')", "imports 'requests'"),
    "pathlib": ("from pathlib import Path\nPath('/etc/passwd').read_text()", "imports 'pathlib'"),
    "shutil": ("import shutil", "imports 'shutil'"),
    "eval": ("eval('1+1')", "eval"),
    "exec": ("exec('import os')", "exec"),
    "compile": ("compile('1', 'x', 'eval')", "compile"),
    "__import__": ("__import__('os').system('id')", "__import__"),
    "open": ("open('/etc/passwd').read()", "open"),
    "subclasses": ("().__class__.__bases__[0].__subclasses__()", "dunder attributes"),
    "globals via string": ("getattr(print, '__globals__')", "dunder names"),
    "builtins": ("__builtins__['open']", "__builtins__"),
    "handler": ("import bpy\nbpy.app.handlers.frame_change_post.append(lambda s: None)", "bpy.app.handlers"),
    "handler alias": ("from bpy.app import handlers\nhandlers.load_post.append(print)", "bpy.app.handlers"),
    "timer": ("import bpy\nbpy.app.timers.register(lambda: 1.0)", "bpy.app.timers"),
    "timer via getattr": ("import bpy\ngetattr(bpy.app, 'timers').register(print)", "bpy.app.timers"),
    "register class": ("import bpy\nclass Op(bpy.types.Operator):\n    bl_idname='x.y'\nbpy.utils.register_class(Op)",
                       "bpy.utils.register_class"),
    "draw handler": ("import bpy\nbpy.types.SpaceView3D.draw_handler_add(print, (), 'WINDOW', 'POST_VIEW')",
                     "draw_handler_add"),
    "msgbus": ("import bpy\nbpy.msgbus.subscribe_rna(key=None, owner=None, args=(), notify=print)", "bpy.msgbus"),
    "driver namespace": ("import bpy\nbpy.app.driver_namespace['f'] = print", "driver namespace"),
    "quit": ("import bpy\nbpy.ops.wm.quit_blender()", "quits Blender"),
    "preferences": ("import bpy\nbpy.ops.preferences.addon_enable(module='x')", "preferences"),
    "text as module": ("import bpy\nbpy.data.texts['t'].as_module()", "as_module"),
    "save outside": ("import bpy\nbpy.ops.wm.save_as_mainfile(filepath='/home/artist/scene.blend')",
                     "outside the output folder"),
    "export outside": ("import bpy\nbpy.ops.export_scene.gltf(filepath='/tmp/x.glb')", "outside the output folder"),
    "escape with ..": ("import bpy\nbpy.ops.export_scene.gltf(filepath=OUTPUT_DIR + '/../../etc/x.glb')",
                       "outside the output folder"),
    "literal escape": (f"import bpy\nbpy.ops.export_scene.gltf(filepath='{OUT}/../x.glb')", "outside the output folder"),
    "computed path": ("import bpy\np = '/tmp/' + 'x.png'\nbpy.data.images['i'].save_render(p)",
                      "outside the output folder"),
    "render path": ("import bpy\nbpy.context.scene.render.filepath = '/var/www/x.png'", "outside the output folder"),
    "relative blend path": ("import bpy\nbpy.context.scene.render.filepath = '//x.png'", "outside the output folder"),
    "syntax error": ("def (:", "syntax error"),
}


@pytest.mark.parametrize("name", sorted(MUST_PASS))
def test_ordinary_scripts_pass(name):
    assert check_script(MUST_PASS[name], [OUT]) == []


@pytest.mark.parametrize("name", sorted(MUST_REFUSE))
def test_reaching_outside_the_scene_is_refused_with_the_line_and_reason(name):
    source, why = MUST_REFUSE[name]
    refusals = check_script(source, [OUT])
    assert refusals, f"{name} passed"
    assert any(why in r.reason for r in refusals), [str(r) for r in refusals]
    assert all(r.line >= 1 for r in refusals)


def test_without_an_output_folder_no_path_passes():
    refusals = check_script("import bpy\nbpy.ops.export_scene.gltf(filepath=OUTPUT_DIR + '/x.glb')", [])
    assert refusals == [] or "no folder" in refusals[0].reason
    literal = check_script(f"import bpy\nbpy.ops.export_scene.gltf(filepath='{OUT}/x.glb')", [])
    assert literal and "no folder" in literal[0].reason
