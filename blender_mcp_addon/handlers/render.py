"""Pictures of the scene: `render_image` and `get_viewport_screenshot` (a quick render when headless).

Every render goes through `render_png`, which checks this Blender's render bounds (limits.py) first."""

from __future__ import annotations

import base64
import os
import tempfile
import time
from typing import Any

from ..session import current_limits
from . import CommandError, command

ENGINES = {"cycles": ("CYCLES",), "eevee": ("BLENDER_EEVEE_NEXT", "BLENDER_EEVEE"), "workbench": ("BLENDER_WORKBENCH",)}


def _set_engine(render: Any, engine: str) -> None:
    """Engine ids differ between Blender versions and the enum is dynamic: try each known id."""
    for candidate in ENGINES.get(engine, ()):
        try:
            render.engine = candidate
            return
        except TypeError:
            continue
    raise CommandError(f"render engine {engine!r} is not available in this Blender")


def _cycles_can_denoise() -> bool:
    """Distribution builds may lack OpenImageDenoise (Debian's 4.3), and Cycles then refuses to render a scene
    with denoising on, which the default scene has."""
    try:
        import _cycles
    except ImportError:
        return True
    return bool(getattr(_cycles, "with_openimagedenoise", True))


def _png_reply(path: str, **meta: Any) -> dict[str, Any]:
    with open(path, "rb") as fh:
        data = fh.read()
    return {"image_base64": base64.b64encode(data).decode(), "mime_type": "image/png", "bytes": len(data), **meta}


def render_png(engine: str = "cycles", resolution_x: int = 512, resolution_y: int = 512, samples: int = 16,
               max_size: int = 1024, command: str = "render_image") -> dict[str, Any]:
    import bpy

    current_limits().check_render(command, resolution_x, resolution_y, samples)  # before any memory is spent
    scene = bpy.context.scene
    if scene.camera is None:
        raise CommandError("the scene has no active camera to render from")
    render = scene.render
    scale = min(1.0, max_size / max(resolution_x, resolution_y))
    width, height = max(16, round(resolution_x * scale)), max(16, round(resolution_y * scale))
    saved = (render.engine, render.resolution_x, render.resolution_y, render.resolution_percentage, render.filepath,
             render.image_settings.file_format)
    fd, path = tempfile.mkstemp(suffix=".png", prefix="blender_mcp_")
    os.close(fd)
    started = time.perf_counter()
    restore_denoising = False
    try:
        _set_engine(render, engine)
        render.resolution_x, render.resolution_y, render.resolution_percentage = width, height, 100
        render.image_settings.file_format = "PNG"
        render.filepath = path
        if render.engine == "CYCLES":
            scene.cycles.samples = samples
            scene.cycles.device = "CPU"
            if scene.cycles.use_denoising and not _cycles_can_denoise():
                scene.cycles.use_denoising = False
                restore_denoising = True
        elif hasattr(scene, "eevee") and hasattr(scene.eevee, "taa_render_samples"):
            scene.eevee.taa_render_samples = samples
        bpy.ops.render.render(write_still=True)
        return _png_reply(path, width=width, height=height, engine=render.engine,
                          seconds=round(time.perf_counter() - started, 3))
    finally:
        (render.engine, render.resolution_x, render.resolution_y, render.resolution_percentage, render.filepath,
         render.image_settings.file_format) = saved
        if restore_denoising:
            scene.cycles.use_denoising = True
        os.unlink(path)


@command("render_image")
def render_image(engine: str = "cycles", resolution_x: int = 512, resolution_y: int = 512, samples: int = 16,
                 max_size: int = 1024) -> dict[str, Any]:
    return render_png(engine, resolution_x, resolution_y, samples, max_size)


@command("get_viewport_screenshot")
def get_viewport_screenshot(max_size: int = 800) -> dict[str, Any]:
    import bpy

    area = None
    if not bpy.app.background:
        for window in bpy.context.window_manager.windows:
            area = next((a for a in window.screen.areas if a.type == "VIEW_3D"), None)
            if area is not None:
                break
    if area is None:
        # No window to grab (blender -b): a quick render from the scene camera stands in for the viewport.
        return {**render_png("cycles", max_size, max_size, 4, max_size, command="get_viewport_screenshot"),
                "source": "render"}
    fd, path = tempfile.mkstemp(suffix=".png", prefix="blender_mcp_shot_")
    os.close(fd)
    try:
        with bpy.context.temp_override(window=window, area=area):
            bpy.ops.screen.screenshot_area(filepath=path)
        image = bpy.data.images.load(path)
        try:
            w, h = image.size
            if max(w, h) > max_size:
                s = max_size / max(w, h)
                image.scale(max(1, int(w * s)), max(1, int(h * s)))
                image.save_render(path)  # writes the scaled pixels as PNG
            w, h = image.size
        finally:
            bpy.data.images.remove(image)
        return {**_png_reply(path, width=w, height=h), "source": "viewport"}
    finally:
        os.unlink(path)
