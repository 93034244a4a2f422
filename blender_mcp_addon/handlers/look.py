"""`look`: one quick picture of the scene for a model checking its own work.

Every view is a small render (Workbench for solid / wireframe / xray, so it is fast and needs no
lights), labelled with Blender's render stamp and composed with numpy into one contact sheet. Every
setting the renders touch is put back and every temporary datablock removed, even on error: looking
must not change the artist's file.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from . import CommandError, command
from .render import _cycles_can_denoise, _png_reply, _set_engine, get_viewport_screenshot

# A direction points from the target towards the camera (Blender's front view looks along +Y).
VIEWS: dict[str, tuple[float, float, float]] = {
    "front": (0.0, -1.0, 0.0), "back": (0.0, 1.0, 0.0), "left": (-1.0, 0.0, 0.0), "right": (1.0, 0.0, 0.0),
    "top": (0.0, 0.0, 1.0), "three_quarter": (1.0, -1.0, 0.75),
}
DEFAULT_VIEWS = ("front", "right", "top", "three_quarter")
# Axis views are orthographic, as Blender's numpad views are: sizes compare and lines stay parallel.
ORTHO_VIEWS = {"front", "back", "left", "right", "top"}
GEOMETRY = {"MESH", "CURVE", "SURFACE", "META", "FONT", "CURVES", "POINTCLOUD", "VOLUME", "GPENCIL", "GREASEPENCIL"}
WIRE_TYPES = {"MESH", "CURVE", "SURFACE", "META", "FONT"}  # what Object.to_mesh() can turn into edges
VIEWPORT_SHADING = {"solid": ("SOLID", False), "xray": ("SOLID", True), "wireframe": ("WIREFRAME", None),
                    "material": ("MATERIAL", None), "rendered": ("RENDERED", None)}
MAX_WIRE_SAMPLES = 6_000_000  # pixels drawn for wireframe edges, so a huge mesh cannot stall Blender
GAP = 2  # pixels between the cells of a contact sheet
_eevee_failed: list[str] = []  # why EEVEE could not render in this process: not retried for every view


class _Settings:
    """Set attributes and remember the first value each had, to put back in reverse order.

    `keep` snapshots attributes before anything changes, for those whose setters change others
    (in Blender 5 setting `media_type` resets `file_format`)."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []
        self._seen: set[tuple[int, str]] = set()

    def keep(self, owner: Any, *attrs: str) -> None:
        for attr in attrs:
            key = (owner.as_pointer(), attr)
            if key in self._seen or not hasattr(owner, attr):
                continue
            value = getattr(owner, attr)
            if hasattr(value, "__len__") and not isinstance(value, str):
                value = tuple(value)  # a bpy_prop_array is a live view of the setting
            self._seen.add(key)
            self._saved.append((owner, attr, value))

    def set(self, owner: Any, attr: str, value: Any) -> bool:
        """False when this Blender has no such setting or refuses the value (they differ by version)."""
        if not hasattr(owner, attr):
            return False
        self.keep(owner, attr)
        try:
            setattr(owner, attr, value)
        except (TypeError, ValueError, AttributeError):
            return False
        return True

    def restore(self) -> None:
        for owner, attr, value in reversed(self._saved):
            try:
                setattr(owner, attr, value)
            except (TypeError, ValueError, AttributeError, ReferenceError):
                pass  # an enum item that only existed with another engine: nothing better to put back
        self._saved.clear()
        self._seen.clear()


def _grid(n: int) -> tuple[int, int]:
    cols = n if n <= 3 else math.ceil(math.sqrt(n))
    return cols, math.ceil(n / cols)


def _cell_size(n: int, aspect: float, max_size: int) -> tuple[int, int]:
    """The size of one view so that the whole sheet's longest side is at most max_size."""
    cols, rows = _grid(n)
    usable_w, usable_h = max_size - GAP * (cols - 1), max_size - GAP * (rows - 1)
    scale = min(usable_w / (cols * aspect), usable_h / rows)
    return max(16, math.floor(scale * aspect + 1e-6)), max(16, math.floor(scale + 1e-6))  # 144 * 16/9 is 256


def _direction(view: Any) -> tuple[str, tuple[float, float, float]]:
    if isinstance(view, str):
        if view not in VIEWS:
            raise CommandError(f"unknown view {view!r}: use one of {', '.join(VIEWS)} or a direction [x, y, z]")
        return view, VIEWS[view]
    if not isinstance(view, (list, tuple)) or len(view) != 3:
        raise CommandError(f"a view direction is [x, y, z], not {view!r}")
    x, y, z = (float(v) for v in view)
    if math.sqrt(x * x + y * y + z * z) < 1e-9:
        raise CommandError("a view direction cannot be [0, 0, 0]")
    return f"[{x:g}, {y:g}, {z:g}]", (x, y, z)


def _objects(scene: Any, view_layer: Any, names: Sequence[str] | None) -> list[Any]:
    if names:
        missing = [n for n in names if scene.objects.get(n) is None]
        if missing:
            raise CommandError(f"no object named {', '.join(map(repr, missing))} in scene {scene.name!r}")
        return [scene.objects[n] for n in names]
    return [ob for ob in scene.objects if ob.type in GEOMETRY and not ob.hide_render and ob.visible_get(view_layer=view_layer)]


def _corners(objects: Sequence[Any], depsgraph: Any) -> list[Any]:
    """World-space bounding-box corners of the evaluated objects (modifiers, animation, constraints)."""
    from mathutils import Vector

    corners = []
    for ob in objects:
        evaluated = ob.evaluated_get(depsgraph)
        mw = evaluated.matrix_world
        corners += [mw @ Vector(c) for c in evaluated.bound_box]
    return corners


def _framing_camera(scene: Any, settings: _Settings, created: list[Any]) -> Any:
    import bpy

    data = bpy.data.cameras.new("blender_mcp_look")
    created.append(data)
    cam = bpy.data.objects.new("blender_mcp_look", data)
    created.insert(0, cam)  # the object goes before its data
    scene.collection.objects.link(cam)
    settings.set(scene, "camera", cam)
    return cam


def _aim(cam: Any, name: str, direction: tuple[float, float, float], corners: list[Any], depsgraph: Any) -> None:
    """Point the camera along -direction and fit it on the corners (with a margin)."""
    from mathutils import Euler, Vector

    d = Vector(direction).normalized()
    if abs(d.z) > 0.9999:  # looking straight down or up: keep +Y up in the picture, as the numpad does
        cam.rotation_euler = Euler((0.0 if d.z > 0 else math.pi, 0.0, 0.0))
    else:
        cam.rotation_euler = (-d).to_track_quat("-Z", "Y").to_euler()
    center = sum(corners, Vector()) / len(corners)
    radius = max(max((c - center).length for c in corners), 1e-3)
    padded = [center + (c - center) * 1.15 for c in corners]
    flat = [v for c in padded for v in c]
    ortho = name in ORTHO_VIEWS
    cam.data.type = "ORTHO" if ortho else "PERSP"
    cam.data.lens = 50.0
    cam.location = center + d * radius * 3
    depsgraph.update()
    location, scale = cam.camera_fit_coords(depsgraph, flat)
    location = Vector(location)
    if ortho:
        # the fit puts an orthographic camera inside the box; back it off so nothing is clipped
        cam.data.ortho_scale = max(scale, 1e-3)
        location = location + d * radius * 3
    cam.location = location
    distance = (location - center).length
    cam.data.clip_start = max(1e-4, (distance - radius) * 0.5) if distance > radius * 1.01 else max(1e-4, radius * 1e-3)
    cam.data.clip_end = distance + radius * 2


def _load(path: str) -> Any:
    """The rendered PNG as a (height, width, 4) float array, bottom row first as Blender stores it."""
    import bpy
    import numpy as np

    image = bpy.data.images.load(path, check_existing=False)
    try:
        width, height = image.size
        buf = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(buf)
    finally:
        bpy.data.images.remove(image)
    return buf.reshape(height, width, 4)


def _save(pixels: Any, path: str) -> None:
    import bpy

    height, width = pixels.shape[:2]
    image = bpy.data.images.new("blender_mcp_look_sheet", width, height, alpha=False)
    try:
        image.pixels.foreach_set(pixels.ravel())
        image.filepath_raw = path
        image.file_format = "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)


def _draw_wire(pixels: Any, scene: Any, depsgraph: Any, color: tuple[float, float, float]) -> int:
    """Draw every edge of the evaluated geometry seen by the scene camera; returns the edge count.

    Workbench renders have no wireframe mode (it is a viewport overlay), so the edges are projected
    with the camera's own matrix and drawn with numpy on the CPU."""
    import numpy as np

    height, width = pixels.shape[:2]
    cam = scene.camera.evaluated_get(depsgraph)
    r = scene.render
    proj = cam.calc_matrix_camera(depsgraph, x=width, y=height, scale_x=r.pixel_aspect_x, scale_y=r.pixel_aspect_y)
    to_clip = np.array(proj @ cam.matrix_world.inverted(), dtype=np.float64)
    starts, ends, edge_count = [], [], 0
    for inst in depsgraph.object_instances:
        ob = inst.object
        if ob.type not in WIRE_TYPES or not inst.show_self:
            continue
        try:
            mesh = ob.to_mesh()
        except RuntimeError:
            continue
        try:
            n_verts, n_edges = len(mesh.vertices), len(mesh.edges)
            if not n_edges:
                continue
            co = np.empty(n_verts * 3, dtype=np.float64)
            mesh.vertices.foreach_get("co", co)
            idx = np.empty(n_edges * 2, dtype=np.int64)
            mesh.edges.foreach_get("vertices", idx)
        finally:
            ob.to_mesh_clear()
        world = np.array(inst.matrix_world, dtype=np.float64)
        hom = np.c_[co.reshape(-1, 3), np.ones(n_verts)] @ (to_clip @ world).T
        w = hom[:, 3]
        front = w > 1e-6
        xy = hom[:, :2] / np.where(front, w, 1.0)[:, None]
        px = np.c_[(xy[:, 0] * 0.5 + 0.5) * width, (xy[:, 1] * 0.5 + 0.5) * height]
        edges = idx.reshape(-1, 2)
        a, b = px[edges[:, 0]], px[edges[:, 1]]
        # both ends in front of the camera and not absurdly far off-screen (that would be a huge line)
        ok = front[edges].all(axis=1) & (np.abs(xy[edges]).max(axis=(1, 2)) < 8)
        starts.append(a[ok])
        ends.append(b[ok])
        edge_count += int(ok.sum())
    if not edge_count:
        return 0
    a, b = np.concatenate(starts), np.concatenate(ends)
    steps = np.ceil(np.abs(b - a).max(axis=1)).astype(np.int64) + 1
    if steps.sum() > MAX_WIRE_SAMPLES:
        steps = np.maximum(2, (steps * (MAX_WIRE_SAMPLES / steps.sum())).astype(np.int64))
    which = np.repeat(np.arange(len(steps)), steps)
    first = np.cumsum(steps) - steps
    t = (np.arange(len(which)) - first[which]) / np.maximum(steps[which] - 1, 1)
    points = a[which] + (b - a)[which] * t[:, None]
    x, y = np.floor(points[:, 0]).astype(np.int64), np.floor(points[:, 1]).astype(np.int64)
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    pixels[y[inside], x[inside], :3] = color
    return edge_count


@contextmanager
def _render_setup(scene: Any, shading: str, width: int, height: int, notes: list[str]) -> Iterator[dict[str, Any]]:
    """Configure the scene for quick renders of one shading; everything goes back on exit."""
    import bpy

    settings = _Settings()
    r = scene.render
    # snapshot first: the setters below change each other (media_type resets file_format)
    settings.keep(r.image_settings, "color_mode", "color_depth", "compression", "file_format", "media_type")
    settings.keep(r, "engine")
    state: dict[str, Any] = {"settings": settings, "engine": None}
    had_render_result = any(i.type == "RENDER_RESULT" for i in bpy.data.images)
    try:
        settings.set(r.image_settings, "media_type", "IMAGE")
        settings.set(r.image_settings, "file_format", "PNG")
        settings.set(r.image_settings, "color_mode", "RGB")
        settings.set(r.image_settings, "color_depth", "8")
        settings.set(r.image_settings, "compression", 15)
        for attr, value in (("resolution_x", width), ("resolution_y", height), ("resolution_percentage", 100),
                            ("use_border", False), ("film_transparent", False), ("use_sequencer", False),
                            ("use_stamp", True), ("use_stamp_note", True), ("use_stamp_labels", False),
                            ("stamp_font_size", max(10, min(24, height // 18)))):
            settings.set(r, attr, value)
        for prop in r.bl_rna.properties:  # every other stamp field off: only our label goes on the image
            if prop.identifier.startswith("use_stamp_") and prop.identifier not in ("use_stamp_note", "use_stamp_labels"):
                settings.set(r, prop.identifier, False)
        settings.keep(r, "stamp_note_text", "filepath")
        settings.keep(scene, "camera")
        _configure_engine(scene, shading, settings, state, notes)
        yield state
    finally:
        settings.restore()
        if not had_render_result:  # the first render of a file makes this image; the file had none
            for image in [i for i in bpy.data.images if i.type == "RENDER_RESULT"]:
                bpy.data.images.remove(image)


def _workbench(scene: Any, settings: _Settings, color_type: str = "MATERIAL", xray: bool = False,
               xray_alpha: float = 0.5) -> None:
    _set_engine(scene.render, "workbench")
    shading = scene.display.shading
    settings.set(scene.display, "render_aa", "FXAA")
    for attr, value in (("light", "STUDIO"), ("color_type", color_type), ("show_xray", xray),
                        ("xray_alpha", xray_alpha), ("show_shadows", False), ("show_cavity", False),
                        ("show_object_outline", False), ("use_dof", False)):
        settings.set(shading, attr, value)
    # the viewport shows solid shading with the Standard view, not the scene's Filmic/AgX
    view = scene.view_settings
    for attr, value in (("view_transform", "Standard"), ("look", "None"), ("exposure", 0.0), ("gamma", 1.0),
                        ("use_curve_mapping", False)):
        settings.set(view, attr, value)


def _configure_engine(scene: Any, shading: str, settings: _Settings, state: dict[str, Any], notes: list[str]) -> None:
    if shading == "solid":
        _workbench(scene, settings)
    elif shading == "xray":
        _workbench(scene, settings, xray=True)
    elif shading == "wireframe":
        _workbench(scene, settings, xray=True, xray_alpha=0.0)  # background and label; edges drawn after
        state["wire"] = True
        notes.append("wireframe: mesh edges drawn over a Workbench background (Workbench renders have no wireframe)")
    elif shading == "material":
        if _eevee_failed or not _try_eevee(scene, settings):
            _workbench(scene, settings, color_type="TEXTURE")
            state["fallback"] = "workbench"
            notes.append("material: EEVEE cannot render here" + (f" ({_eevee_failed[0]})" if _eevee_failed else "")
                         + "; Workbench with material colours and image textures instead")
        else:
            # material preview is about colours: shadows and ray tracing only cost time on a software GPU
            # not use_bloom / use_gtao: deprecated in EEVEE Next, and 4.2.0's use_bloom setter clears other flags
            for attr in ("use_shadows", "use_raytracing", "use_volumetric_shadows"):
                settings.set(scene.eevee, attr, False)
            settings.set(scene.eevee, "taa_render_samples", 2)
            state["eevee"] = True
            notes.append("material: EEVEE render with the scene's lights and world (the studio light of material "
                         "preview is viewport-only)")
    else:  # rendered: the scene's own engine, at few samples
        engine = scene.render.engine
        if engine == "CYCLES":
            _cycles(scene, settings)
        elif engine.startswith("BLENDER_EEVEE"):
            if _eevee_failed:
                _set_engine(scene.render, "cycles")
                _cycles(scene, settings)
                notes.append(f"rendered: EEVEE cannot render here ({_eevee_failed[0]}); Cycles instead")
            else:
                settings.set(scene.eevee, "taa_render_samples", 4)
                state["eevee"] = True
        # Workbench and add-on engines render as the scene has them


def _try_eevee(scene: Any, settings: _Settings) -> bool:
    try:
        _set_engine(scene.render, "eevee")
    except CommandError as exc:
        _eevee_failed.append(str(exc))
        return False
    return True


def _cycles(scene: Any, settings: _Settings) -> None:
    settings.keep(scene.cycles, "samples", "device", "use_denoising", "use_adaptive_sampling")
    settings.set(scene.cycles, "samples", 8)
    settings.set(scene.cycles, "device", "CPU")
    if not _cycles_can_denoise():
        settings.set(scene.cycles, "use_denoising", False)


def _render_view(scene: Any, state: dict[str, Any], label: str, path: str, notes: list[str]) -> Any:
    import bpy

    r = scene.render
    r.stamp_note_text = label
    r.filepath = path
    try:
        bpy.ops.render.render(write_still=True)
    except RuntimeError as exc:
        if not state.get("eevee"):
            raise CommandError(f"rendering the {label} view failed: {exc}") from None
        # EEVEE needs a GPU context that a headless Blender may lack: remember, and do this view (and the
        # rest) with the fallback
        _eevee_failed.append(str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else "render failed")
        state["eevee"] = False
        _configure_engine(scene, "material" if state.get("material") else "rendered", state["settings"], state, notes)
        bpy.ops.render.render(write_still=True)
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        raise CommandError(f"Blender wrote no image for the {label} view")
    pixels = _load(path)
    os.unlink(path)
    if state.get("wire"):
        state["edges"] = _draw_wire(pixels, scene, bpy.context.evaluated_depsgraph_get(), (0.9, 0.9, 0.9))
    return pixels


def _compose(cells: list[Any], cw: int, ch: int) -> Any:
    import numpy as np

    cols, rows = _grid(len(cells))
    sheet = np.full((rows * ch + GAP * (rows - 1), cols * cw + GAP * (cols - 1), 4), 0.1, dtype=np.float32)
    sheet[..., 3] = 1.0
    height = sheet.shape[0]
    for i, cell in enumerate(cells):
        row, col = divmod(i, cols)
        top = height - row * (ch + GAP)  # Blender's rows run bottom-up: the first row is at the top
        h, w = min(ch, cell.shape[0]), min(cw, cell.shape[1])
        sheet[top - h:top, col * (cw + GAP):col * (cw + GAP) + w] = cell[cell.shape[0] - h:, :w]
    return sheet


def _frame_list(scene: Any, frames: Sequence[float] | None, frame_count: int) -> list[int]:
    if frames:
        if not 2 <= len(frames) <= 12:
            raise CommandError(f"frames takes 2 to 12 frame numbers, not {len(frames)}")
        return [round(f) for f in frames]
    start, end = scene.frame_start, scene.frame_end
    picked = [round(start + i * (end - start) / (frame_count - 1)) for i in range(frame_count)]
    return list(dict.fromkeys(picked))


def _window_view3d() -> tuple[Any, Any] | None:
    """The 3D view that get_viewport_screenshot grabs (the first one of the first window that has one)."""
    import bpy

    if bpy.app.background:
        return None
    for window in bpy.context.window_manager.windows:
        area = next((a for a in window.screen.areas if a.type == "VIEW_3D"), None)
        if area is not None:
            return window, area
    return None


def _viewport_shot(window: Any, area: Any, shading: str, max_size: int, started: float) -> dict[str, Any]:
    import bpy

    space = area.spaces.active
    kind, xray = VIEWPORT_SHADING[shading]
    settings = _Settings()
    try:
        settings.set(space.shading, "type", kind)
        if xray is not None:
            settings.set(space.shading, "show_xray", xray)
        # the grab reads what is on screen: draw the area with the new shading first; EEVEE and Cycles
        # refine over several redraws
        rounds = 1 if kind in ("SOLID", "WIREFRAME") else 12
        with bpy.context.temp_override(window=window, area=area):
            for _ in range(rounds):
                bpy.ops.wm.redraw_timer(type="DRAW_WIN_SWAP", iterations=1)
                if rounds > 1:
                    time.sleep(0.1)
        shot = get_viewport_screenshot(max_size)
    finally:
        settings.restore()
        area.tag_redraw()
    return {**shot, "mode": "viewport", "shading": shading, "engine": f"viewport {kind}",
            "views": [{"label": "viewport", "direction": None, "size": [shot["width"], shot["height"]]}],
            "seconds": round(time.perf_counter() - started, 3)}


@command("look")
def look(mode: str = "viewport", shading: str = "solid", views: list[Any] | None = None, target: list[str] | None = None,
         frames: list[float] | None = None, frame_count: int = 6, max_size: int = 768) -> dict[str, Any]:
    import bpy

    started = time.perf_counter()
    scene = bpy.context.scene
    view_layer = bpy.context.view_layer
    objects = _objects(scene, view_layer, target)  # unknown names fail before anything changes
    if mode == "viewport" and (found := _window_view3d()) is not None:
        return _viewport_shot(*found, shading, max_size, started)
    if mode == "camera" and scene.camera is None:
        raise CommandError("the scene has no camera: add one and make it active, or use mode 'viewport' or 'angles'")

    # what to render: (label, direction or None for the scene camera, frame or None)
    plan: list[tuple[str, tuple[float, float, float] | None, str | None, int | None]] = []
    use_scene_camera = mode == "camera" or (mode in ("viewport", "frames") and scene.camera is not None and not target)
    if mode == "angles":
        chosen = list(views or DEFAULT_VIEWS)
        if not 1 <= len(chosen) <= 6:
            raise CommandError(f"angles takes 1 to 6 views, not {len(chosen)}")
        for view in chosen:
            label, direction = _direction(view)
            plan.append((label, direction, label, None))
    elif mode == "frames":
        for f in _frame_list(scene, frames, frame_count):
            plan.append((f"frame {f}", None if use_scene_camera else VIEWS["three_quarter"], "three_quarter", f))
    elif use_scene_camera:
        plan.append((scene.camera.name if mode == "camera" else "camera", None, None, None))
    else:
        plan.append(("three_quarter", VIEWS["three_quarter"], "three_quarter", None))

    r = scene.render
    if mode == "angles":
        aspect = 1.0  # auto-framed views: square cells compare best side by side
    else:
        aspect = (r.resolution_x * r.pixel_aspect_x) / max(1e-6, r.resolution_y * r.pixel_aspect_y)
        aspect = min(4.0, max(0.25, aspect))
    cw, ch = _cell_size(len(plan), aspect, max_size)
    notes: list[str] = []
    created: list[Any] = []
    frame_before = (scene.frame_current, scene.frame_subframe)
    fd, path = tempfile.mkstemp(suffix=".png", prefix="blender_mcp_look_")
    os.close(fd)
    cells: list[Any] = []
    listed: list[dict[str, Any]] = []
    try:
        with _render_setup(scene, shading, cw, ch, notes) as state:
            state["material"] = shading == "material"
            cam = None
            corners: list[Any] = []
            if any(direction is not None for _, direction, _, _ in plan):
                cam = _framing_camera(scene, state["settings"], created)
                wanted = [f for *_, f in plan if f is not None] or [None]
                for f in wanted:  # one fixed camera that fits every frame, so the motion shows
                    if f is not None:
                        scene.frame_set(f)
                    corners += _corners(objects, bpy.context.evaluated_depsgraph_get())
                if not corners:
                    from mathutils import Vector

                    notes.append("nothing visible to frame: looking at the 2 m around the origin")
                    corners = [Vector((x, y, z)) for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]
            for label, direction, name, f in plan:
                if f is not None:
                    scene.frame_set(f)
                if cam is not None and direction is not None:
                    _aim(cam, name or "", direction, corners, bpy.context.evaluated_depsgraph_get())
                cells.append(_render_view(scene, state, label, path, notes))
                listed.append({"label": label, "direction": list(direction) if direction else None,
                               "camera": scene.camera.name if direction is None else "auto-framed",
                               "size": [cells[-1].shape[1], cells[-1].shape[0]],
                               **({"frame": f} if f is not None else {})})
            engine = scene.render.engine
            fallback = state.get("fallback")
            edges = state.get("edges")
    finally:
        if (scene.frame_current, scene.frame_subframe) != frame_before:
            scene.frame_set(frame_before[0], subframe=frame_before[1])
        for block in created:  # the object first: removing a camera still in use by an object fails
            collection = bpy.data.objects if block.__class__.__name__ == "Object" else bpy.data.cameras
            collection.remove(block)
    try:
        _save(_compose(cells, cw, ch) if len(cells) > 1 else cells[0], path)
        sheet_h, sheet_w = (_compose_shape(len(cells), cw, ch) if len(cells) > 1 else cells[0].shape[:2])
        meta: dict[str, Any] = {"mode": mode, "shading": shading, "engine": engine, "width": sheet_w,
                                "height": sheet_h, "grid": list(_grid(len(cells))), "views": listed,
                                "seconds": round(time.perf_counter() - started, 3)}
        if notes:
            meta["notes"] = notes
        if fallback:
            meta["fallback"] = fallback
        if edges is not None:
            meta["edges"] = edges
        return _png_reply(path, **meta)
    finally:
        os.unlink(path)


def _compose_shape(n: int, cw: int, ch: int) -> tuple[int, int]:
    cols, rows = _grid(n)
    return rows * ch + GAP * (rows - 1), cols * cw + GAP * (cols - 1)
