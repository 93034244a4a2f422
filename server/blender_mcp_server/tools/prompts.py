"""Prompts that teach a model the loop that works on a live Blender: inspect, change, look, checkpoint.

Models left alone tend to write one long script, run it blind and report
success. The loop below keeps each change small, checks it with a picture and
keeps a way back, which is what makes edits on someone's open scene safe.
"""

from __future__ import annotations

from fastmcp import FastMCP

LOOP = """\
Work in this loop, one small step at a time:
1. Inspect. Read blender://scene (or call blender_get_scene_info) and, for what you will touch,
   blender://object/<name>, blender://material/<name>, blender://collection/<name> (or
   blender_get_object_info / blender_get_material_info / blender_get_collection_info). Use real names;
   never guess them.
2. Checkpoint. Before the first change call blender_checkpoint, so the user's scene can be got back.
3. Change. One focused edit per call: blender_execute_code with a short script, or a dedicated tool
   (blender_set_texture, blender_download_polyhaven_asset ...). Before writing bpy code you are not sure
   of, call blender_describe_api for the type or operator instead of guessing attribute names; Blender's
   API changes between versions (check blender_version in the scene summary).
4. Look. Call blender_look and judge the picture against what was asked. A script that ran without an
   error is not proof it did the right thing.
5. Keep or go back. If the step is right, call blender_checkpoint again and go on. If it is wrong, call
   blender_undo for the last step (only in a Blender window: a headless Blender has no undo steps) or
   blender_restore_checkpoint (names from blender_list_checkpoints) for the last good state, then retry
   differently.
Every blender_* tool answers JSON with status; anything other than "completed" says why in error and hint
(no_client: no Blender is connected; ambiguous_target: pass target_uuid, one of candidates).
Save (blender_save_blend) or export (blender_export_scene) only when the user asks: both write files."""


def add_prompts(mcp: FastMCP) -> None:
    @mcp.prompt(name="blender_edit_scene", title="Edit the Blender scene safely",
                description="The inspect -> checkpoint -> change -> look -> keep or undo loop for one task.")
    def edit_scene(task: str) -> str:
        return f"Task for the open Blender scene: {task}\n\n{LOOP}"

    @mcp.prompt(name="blender_inspect_scene", title="Get to know the Blender scene",
                description="Read the scene, the file and what you will work on before changing anything.")
    def inspect_scene(focus: str = "") -> str:
        what = f" Pay most attention to: {focus}." if focus else ""
        return ("Before changing anything, find out what is in the open Blender and report it briefly." + what + "\n"
                "- blender://clients (or blender_list_available_clients): which Blenders are online; with more "
                "than one, pick one and pass its uuid as target_uuid (tools) or ?target=<uuid> (resources).\n"
                "- blender://scene: objects, collections, frame range, render settings, Blender version.\n"
                "- blender://file: where the file is, whether it has unsaved changes, missing textures or "
                "libraries.\n"
                "- blender://object/<name>, blender://material/<name>, blender://collection/<name> for the "
                "parts that matter; blender_list_names lists names of a kind.\n"
                "- blender_look for how it looks now.\n"
                "Change nothing in this step. Summarise the scene and any problems (missing files, hidden "
                "collections, objects without materials).")

    @mcp.prompt(name="blender_recover", title="Recover from a bad change",
                description="Get the scene back to a good state after an edit went wrong.")
    def recover(problem: str = "") -> str:
        said = f"What went wrong: {problem}\n" if problem else ""
        return (said + "Get the open Blender scene back to a good state:\n"
                "1. blender_look to see the current state, and blender://scene to read it.\n"
                "2. If only the last step is wrong, blender_undo (a Blender window only). If more went wrong, "
                "you are unsure, or Blender is headless, blender_list_checkpoints and blender_restore_checkpoint "
                "to the last one that was right (restoring checkpoints the current state first).\n"
                "3. blender_look again to confirm, then say what was undone.\n"
                "Do not try to repair a broken state with more scripts on top of it, and do not save the file "
                "unless the user asks.\n\n" + LOOP)
