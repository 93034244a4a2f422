"""The command catalog: every Style A command once, bpy-free.

The server builds one `blender_<name>` dispatch tool per entry (schema,
description, default timeout); the addon's handlers implement the same names
and a test checks the two agree. Timeouts follow the spec: status probes
15 s, reads 30 s, code execution and model generation 60 s, downloads and
imports 180 s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

TIMEOUTS = {"status": 15.0, "read": 30.0, "exec": 60.0, "download": 180.0}
_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool,
                          "object": dict[str, Any], "array": list[str],
                          "numbers": list[float],
                          "views": list[str | list[float]]}
REQUIRED = object()


@dataclass(frozen=True)
class Param:
    name: str
    type: str = "string"
    default: Any = REQUIRED
    description: str = ""
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class CommandSpec:
    name: str
    timeout_class: str
    description: str
    params: tuple[Param, ...] = ()
    integration: str | None = None
    returns_image: bool = False
    # Whether the command can change the open scene: in a window each such job is one undo step, and the
    # dispatch tool is not marked read-only.
    changes_scene: bool = False
    _model: list[type[BaseModel]] = field(default_factory=list, compare=False, repr=False)

    @property
    def tool_name(self) -> str:
        return f"blender_{self.name}"

    @property
    def timeout(self) -> float:
        return TIMEOUTS[self.timeout_class]

    def model(self) -> type[BaseModel]:
        if not self._model:
            fields: dict[str, Any] = {}
            for p in self.params:
                annotation: Any = Literal[p.enum] if p.enum else _TYPES[p.type]  # type: ignore[valid-type]
                if p.default is None:
                    annotation = annotation | None
                info = Field(... if p.default is REQUIRED else p.default, description=p.description or None,
                             ge=p.minimum, le=p.maximum)
                fields[p.name] = (annotation, info)
            self._model.append(create_model(f"{self.name}_params", __config__=ConfigDict(extra="forbid", strict=False),
                                            **fields))
        return self._model[0]

    def json_schema(self) -> dict[str, Any]:
        schema = self.model().model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return schema

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Checked params for the handler, or ValueError with every problem in one sentence."""
        try:
            return self.model().model_validate(arguments).model_dump()
        except ValidationError as exc:
            problems = [f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors()]
            raise ValueError("; ".join(problems)) from None


P = Param
_ASSET_TYPES = ("hdris", "textures", "models")

COMMANDS: tuple[CommandSpec, ...] = (
    # -- scene and objects ---------------------------------------------------------------------------
    CommandSpec("get_scene_info", "read",
                "The open scene: objects (paged) with type, transforms, materials and collections; "
                "collections, frame range and render settings.",
                (P("offset", "integer", 0, "first object (sorted by name)", minimum=0),
                 P("limit", "integer", 100, "objects per page", minimum=1, maximum=1000))),
    CommandSpec("get_object_info", "read", "One object in detail: transforms, bounds, modifiers, mesh stats.",
                (P("name", "string", description="the object's name"),)),
    CommandSpec("get_material_info", "read",
                "One material: base color, metallic, roughness and alpha from its Principled BSDF (or the "
                "viewport color), the node tree (nodes, links, image textures and whether their files exist) "
                "and the objects using it.",
                (P("name", "string", description="the material's name"),)),
    CommandSpec("get_collection_info", "read",
                "One collection: its objects, child and parent collections, and visibility (viewport, render, "
                "selectable, excluded or hidden in the view layer).",
                (P("name", "string", description="the collection's name ('Scene Collection' for the scene's root)"),)),
    CommandSpec("get_file_info", "read",
                "The open .blend file: path, unsaved changes, linked libraries, and the images, libraries and "
                "other external files whose paths do not exist."),
    CommandSpec("list_names", "read", "Names of one kind of data block, sorted, optionally by prefix.",
                (P("kind", "string", "objects", enum=("objects", "materials", "collections", "meshes", "images",
                                                      "node_groups", "cameras", "lights", "worlds", "scenes")),
                 P("prefix", "string", "", "only names starting with this (case-insensitive)"),
                 P("limit", "integer", 100, minimum=1, maximum=1000))),
    CommandSpec("execute_code", "exec",
                "Run Python in Blender (bpy is imported). result is stdout; details has stderr and the value "
                "of the last expression; an exception returns status error with the traceback.",
                (P("code", "string", description="Python source"),), changes_scene=True),
    CommandSpec("get_viewport_screenshot", "exec",
                "A PNG of the 3D viewport (in a headless Blender: a quick render from the scene camera).",
                (P("max_size", "integer", 800, "longest side in pixels", minimum=64, maximum=4096),),
                returns_image=True),
    CommandSpec("look", "exec",
                "One quick image of the scene to check your work. mode viewport: what the artist's 3D view "
                "shows (headless: the scene camera, or an auto-framed three-quarter view without one); camera: "
                "through the scene camera; angles: 1-6 auto-framed views as one labelled contact sheet; "
                "frames: 2-12 animation frames as one labelled grid. Solid, wireframe and xray are fast "
                "Workbench renders; material is EEVEE; rendered is the scene's engine at few samples.",
                (P("mode", "string", "viewport", enum=("viewport", "camera", "angles", "frames")),
                 P("shading", "string", "solid", enum=("solid", "material", "rendered", "wireframe", "xray")),
                 P("views", "views", None, "angles: 1-6 of front, back, left, right, top, three_quarter, or a "
                   "direction [x, y, z] from the target towards the camera (default front, right, top, "
                   "three_quarter)"),
                 P("target", "array", None, "object names to frame (default: every visible object)"),
                 P("frames", "numbers", None, "frames: 2-12 frame numbers (default: frame_count frames spread "
                   "over the frame range)"),
                 P("frame_count", "integer", 6, "frames: how many, when frames is not given", minimum=2, maximum=12),
                 P("max_size", "integer", 768, "longest side of the image in pixels", minimum=64, maximum=2048)),
                returns_image=True),
    CommandSpec("render_image", "exec", "Render the scene camera and return the PNG.",
                (P("engine", "string", "cycles", "render engine", enum=("cycles", "eevee", "workbench")),
                 P("resolution_x", "integer", 512, minimum=16, maximum=8192),
                 P("resolution_y", "integer", 512, minimum=16, maximum=8192),
                 P("samples", "integer", 16, "Cycles/EEVEE samples", minimum=1, maximum=4096),
                 P("max_size", "integer", 1024, "longest side of the returned image", minimum=64, maximum=4096)),
                returns_image=True),
    CommandSpec("save_blend", "exec", "Save the .blend file (to filepath, or where it was opened from).",
                (P("filepath", "string", None, "absolute path ending in .blend"),)),
    CommandSpec("export_scene", "download", "Export the scene (or the selection) to glTF, OBJ, FBX or USD.",
                (P("filepath", "string", description="absolute output path"),
                 P("format", "string", "glb", enum=("glb", "gltf", "obj", "fbx", "usd")),
                 P("selected_only", "boolean", False))),
    # -- the running Blender's API, checkpoints and undo ---------------------------------------------
    CommandSpec("describe_api", "read",
                "Help about this Blender's own Python API, from RNA introspection: a type (bpy.types.Object), "
                "a property (bpy.types.Object.location), an operator's parameters and whether it can run now "
                "(bpy.ops.mesh.primitive_cube_add), a data path's type and values (bpy.data.objects[\"Cube\"]."
                "modifiers), or a search by words. Pass path or search.",
                (P("path", "string", None, "bpy.types..., bpy.ops..., or a data path from bpy"),
                 P("search", "string", None, "words that must all match"),
                 P("limit", "integer", 30, "search matches at most", minimum=1, maximum=200))),
    CommandSpec("checkpoint", "exec",
                "Save a named snapshot of the open file (a copy beside it; the open file is unchanged). "
                "Take one before a risky change.",
                (P("name", "string", None, "letters, digits, . _ -; default: the time"),)),
    CommandSpec("list_checkpoints", "read", "The checkpoints of the open file, oldest first."),
    CommandSpec("restore_checkpoint", "exec",
                "Go back to a checkpoint. Unsaved changes are checkpointed first, so nothing is lost.",
                (P("name", "string", description="a name from list_checkpoints"),), changes_scene=True),
    CommandSpec("undo", "exec", "Step back in Blender's undo stack (in a window; headless Blender has none).",
                (P("steps", "integer", 1, minimum=1, maximum=100),), changes_scene=True),
    CommandSpec("redo", "exec", "Step forward again in Blender's undo stack (in a window).",
                (P("steps", "integer", 1, minimum=1, maximum=100),), changes_scene=True),
    # -- Poly Haven ----------------------------------------------------------------------------------
    CommandSpec("get_polyhaven_status", "status", "Whether the Poly Haven integration is enabled.",
                integration=None),
    CommandSpec("get_polyhaven_categories", "read", "Poly Haven categories with asset counts.",
                (P("asset_type", "string", "hdris", enum=(*_ASSET_TYPES, "all")),), integration="polyhaven"),
    CommandSpec("search_polyhaven_assets", "read", "Search Poly Haven assets by type and categories.",
                (P("asset_type", "string", "all", enum=(*_ASSET_TYPES, "all")),
                 P("categories", "string", None, "comma-separated categories"),
                 P("limit", "integer", 20, minimum=1, maximum=100),
                 P("offset", "integer", 0, minimum=0)), integration="polyhaven"),
    CommandSpec("download_polyhaven_asset", "download",
                "Download a Poly Haven asset into the scene: an HDRI becomes the world, a texture set a "
                "material, a model is imported.",
                (P("asset_id", "string"), P("asset_type", "string", enum=_ASSET_TYPES),
                 P("resolution", "string", "1k", "1k, 2k, 4k ..."),
                 P("file_format", "string", None, "hdr/exr for HDRIs, jpg/png for textures, gltf/fbx/blend for models")),
                integration="polyhaven", changes_scene=True),
    CommandSpec("set_texture", "download", "Apply a downloaded Poly Haven texture set to an object.",
                (P("object_name", "string"), P("texture_id", "string")), integration="polyhaven", changes_scene=True),
)

COMMANDS += (
    # -- Hyper3D Rodin -------------------------------------------------------------------------------
    CommandSpec("get_hyper3d_status", "status", "Whether Hyper3D Rodin is enabled and has an API key."),
    CommandSpec("generate_hyper3d_model_via_text", "exec",
                "Start generating a 3D model from a text prompt; returns task_uuid and subscription_key.",
                (P("text_prompt", "string"),
                 P("bbox_condition", "numbers", None, "optional [x, y, z] proportions")), integration="rodin"),
    CommandSpec("generate_hyper3d_model_via_images", "exec",
                "Start generating a 3D model from images on the Blender machine.",
                (P("input_image_paths", "array", None, "image files on the Blender machine"),
                 P("input_image_urls", "array", None, "not supported: pass paths"),
                 P("bbox_condition", "numbers", None)), integration="rodin"),
    CommandSpec("poll_rodin_job_status", "status", "The state of a Rodin generation; done when every job is Done.",
                (P("subscription_key", "string"),), integration="rodin"),
    CommandSpec("import_generated_asset", "download",
                "Download a finished generated model and import it under a name: a Rodin task_uuid, or a "
                "generate_3d handle (any provider; the pair of generation_status).",
                (P("task_uuid", "string", description="a Rodin task uuid, or a generate_3d handle"),
                 P("name", "string", description="the new object's name")), changes_scene=True),
    # -- Sketchfab -----------------------------------------------------------------------------------
    CommandSpec("get_sketchfab_status", "status", "Whether Sketchfab is enabled, and whose API key it uses."),
    CommandSpec("search_sketchfab_models", "read", "Search Sketchfab models.",
                (P("query", "string"), P("categories", "string", None),
                 P("count", "integer", 20, minimum=1, maximum=100), P("downloadable", "boolean", True)),
                integration="sketchfab"),
    CommandSpec("get_sketchfab_model_preview", "read", "The preview image of a Sketchfab model.",
                (P("uid", "string"),), integration="sketchfab", returns_image=True),
    CommandSpec("download_sketchfab_model", "download",
                "Download a Sketchfab model (glTF) into the scene, optionally scaled to target_size metres.",
                (P("uid", "string"), P("target_size", "number", None, minimum=0.0001)), integration="sketchfab", changes_scene=True),
)

_PROVIDERS = ("rodin", "hunyuan3d", "tripo", "meshy")
_HANDLE = P("handle", "string", description="the job handle from generate_3d (provider:task id); it stays valid "
            "across calls, sessions and restarts for as long as the provider keeps the task")

COMMANDS += (
    # -- 3D generation, any provider -----------------------------------------------------------------
    # integration=None: the provider is a param, so each handler checks that provider's own toggle.
    CommandSpec("generate_3d", "exec",
                "Start generating a 3D model from a text prompt or image files with Hyper3D Rodin, Hunyuan3D, "
                "Tripo or Meshy; returns a job handle. wait_seconds polls (with progress) before returning.",
                (P("provider", "string", enum=_PROVIDERS),
                 P("prompt", "string", None, "what to generate"),
                 P("image_paths", "array", None, "reference image files on the Blender machine (one for "
                   "Hunyuan3D, Tripo and Meshy)"),
                 P("wait_seconds", "number", 0, "poll this long before returning", minimum=0, maximum=50))),
    CommandSpec("generation_status", "read",
                "The state of a generation (queued, running, done, failed) and its progress, from its handle.",
                (_HANDLE, P("wait_seconds", "number", 0, "poll until done or this long", minimum=0, maximum=25))),
    CommandSpec("import_generated_model", "download",
                "Download a finished generation (once; later imports reuse the file) and import it, its top "
                "object renamed to name and optionally scaled to target_size metres.",
                (_HANDLE, P("name", "string", description="the new object's name"),
                 P("target_size", "number", None, minimum=0.0001)), changes_scene=True),
)

_SOURCES = ("polyhaven", "sketchfab", "polypizza", "ambientcg")

COMMANDS += (
    # -- asset libraries, any source -----------------------------------------------------------------
    # integration=None: the source is a param, so each handler checks that source's own toggle.
    CommandSpec("search_assets", "read",
                "Search Poly Haven, Sketchfab, Poly Pizza or ambientCG in one shape (id, name, type, author, "
                "license, tags); each hit's thumbnail comes back as an image, numbered by its thumbnail field.",
                (P("source", "string", enum=_SOURCES),
                 P("query", "string", "", "words to match (empty: the most popular)"),
                 P("type", "string", "all", enum=("all", *_ASSET_TYPES)),
                 P("limit", "integer", 6, "hits (and thumbnails) per page", minimum=1, maximum=12),
                 P("offset", "integer", 0, minimum=0),
                 P("thumbnails", "boolean", True, "fetch the thumbnails as images")),
                returns_image=True),
    CommandSpec("import_asset", "download",
                "Download an asset from search_assets into the scene: an HDRI becomes the world, a texture set "
                "a material, a model is imported (optionally scaled to target_size metres). Downloads are "
                "cached by asset and resolution, resumed when cut off, and checked against the library's "
                "checksum or size when it gives one.",
                (P("source", "string", enum=_SOURCES), P("id", "string", description="the asset's id"),
                 P("type", "string", None, "Poly Haven: hdris, textures or models (default: looked up)",
                   enum=_ASSET_TYPES),
                 P("resolution", "string", "1k", "1k, 2k, 4k ... (Poly Haven, ambientCG)"),
                 P("file_format", "string", None, "e.g. hdr/exr, jpg/png, gltf/fbx"),
                 P("target_size", "number", None, minimum=0.0001)), changes_scene=True),
)

CATALOG: dict[str, CommandSpec] = {c.name: c for c in COMMANDS}
