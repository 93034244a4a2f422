"""`blender_look` against a real headless Blender worker: every mode and shading, and an unchanged scene after."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

import pytest

from blender_mcp_addon.protocol.answers import read_answer
from tests.blender_worker import Worker
from tests.helpers import bus_client, wait_online
from tests.test_dispatch import style_a

np = pytest.importorskip("numpy")
pytestmark = [pytest.mark.blender, pytest.mark.anyio]
TARGET = "blender-look01"

# An artist's scene: a second object so the axis views differ, an animated cube, and render settings that
# are not the defaults, so that restoring "the defaults" would not pass for restoring the file's own.
SETUP = """
import bpy
scene = bpy.context.scene
bpy.ops.mesh.primitive_cylinder_add(radius=0.5, depth=3, location=(3, 1, 0.5))
bpy.context.active_object.name = "Pillar"
cube = bpy.data.objects["Cube"]
cube.location = (0, 0, 0)
cube.keyframe_insert("location", frame=1)
cube.location = (0, 0, 4)
cube.keyframe_insert("location", frame=40)
scene.frame_start, scene.frame_end = 1, 40
scene.frame_set(7)
r = scene.render
r.engine = "CYCLES"
r.resolution_x, r.resolution_y, r.resolution_percentage = 640, 360, 50
r.filepath = "//renders/shot_"
r.image_settings.file_format = "JPEG"
r.use_stamp_date = True
r.stamp_note_text = "artist note"
scene.display.shading.light = "FLAT"
scene.display.render_aa = "8"
scene.cycles.samples = 77
print("ok")
"""

# Everything a look could touch, as one JSON value: datablock counts, the camera, the frame, every plain
# setting of the render, output, Workbench, colour management, EEVEE and Cycles, and where objects are.
FINGERPRINT = """
import bpy, json
scene = bpy.context.scene
def plain(struct):
    out = {}
    for p in struct.bl_rna.properties:
        if p.type in {"POINTER", "COLLECTION"} or p.identifier == "rna_type":
            continue
        v = getattr(struct, p.identifier, None)
        out[p.identifier] = list(v) if hasattr(v, "__len__") and not isinstance(v, str) else v
    return out
groups = {"render": scene.render, "image": scene.render.image_settings, "display": scene.display,
          "shading": scene.display.shading, "view": scene.view_settings, "eevee": scene.eevee}
if hasattr(scene, "cycles"):
    groups["cycles"] = scene.cycles
print(json.dumps({
    "counts": {k: len(getattr(bpy.data, k)) for k in ("objects", "cameras", "meshes", "materials", "images",
               "worlds", "lights", "collections", "actions", "textures", "node_groups")},
    "scene_objects": sorted(o.name for o in scene.objects),
    "camera": scene.camera.name if scene.camera else None,
    "frame": [scene.frame_current, scene.frame_subframe],
    "settings": {k: plain(v) for k, v in groups.items()},
    "matrices": {o.name: [list(row) for row in o.matrix_world] for o in scene.objects},
}, default=str, sort_keys=True))
"""


@pytest.fixture(scope="module")
def worker(server, tmp_path_factory):
    w = Worker(server.url, tmp_path_factory.mktemp("blender-user"), TARGET)
    yield w
    w.stop()


def decode_png(data: bytes) -> Any:
    """An 8-bit RGB/RGBA PNG as a (height, width, channels) uint8 array, top row first."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), (depth, color)
    bpp = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), dtype=np.uint8).reshape(height, 1 + width * bpp)
    out = np.zeros((height, width * bpp), dtype=np.int32)
    prev = np.zeros(width * bpp, dtype=np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 0:
            row = line
        elif kind == 1:  # Sub: a running sum per channel
            row = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) % 256
        elif kind == 2:
            row = (line + prev) % 256
        else:  # Average and Paeth depend on the pixel just decoded: one byte at a time
            row = np.zeros_like(line)
            for x in range(len(line)):
                a = row[x - bpp] if x >= bpp else 0
                b = prev[x]
                c = prev[x - bpp] if x >= bpp else 0
                if kind == 3:
                    row[x] = (line[x] + (a + b) // 2) % 256
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    row[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) % 256
        out[y], prev = row, row
    return out.reshape(height, width, bpp)[..., :3].astype(np.uint8)


def busy(pixels: Any) -> float:
    """The share of pixels that are not the background (the colour of the bottom-right corner)."""
    diff = np.abs(pixels.astype(np.int32) - pixels[-1, -1].astype(np.int32)).max(axis=2)
    return float((diff > 12).mean())


def flat(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flat(item, f"{path}.{key}").items()}
    return {path: value}


def unchanged(before: str, after: str) -> None:
    """The fingerprints agree; when not, the message names each setting that changed."""
    a, b = flat(json.loads(before)), flat(json.loads(after))
    changed = {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    assert not changed, f"look changed the scene: {changed}"


async def look(client, **args: Any) -> tuple[dict[str, Any], Any, bytes]:
    """(metadata, pixels, PNG bytes) of a look that must succeed."""
    raw = await client.call_tool("blender_look", {"target_uuid": TARGET, **args})
    answer = read_answer(raw)
    assert answer["status"] == "completed", f"look {args}: {answer.get('error') or answer}"
    meta = json.loads(answer["result"])
    image = raw.content[1]
    assert image.type == "image" and image.mimeType == "image/png" and "image_base64" not in meta
    data = base64.b64decode(image.data)
    pixels = decode_png(data)
    assert pixels.shape[1::-1] == (meta["width"], meta["height"])
    return meta, pixels, data


async def look_error(client, **args: Any) -> dict[str, Any]:
    return read_answer(await client.call_tool("blender_look", {"target_uuid": TARGET, **args}))


async def run(client, code: str) -> str:
    answer = read_answer(await client.call_tool("blender_execute_code", {"target_uuid": TARGET, "code": code}))
    assert answer["status"] == "completed", answer.get("error")
    return answer["result"]


@pytest.fixture(scope="module")
async def scene(server, worker):
    async with bus_client(server.url, uuid="look-watch") as watch:
        await wait_online(watch, TARGET, timeout=90)
    async with await style_a(server.url) as client:
        assert await run(client, SETUP) == "ok\n"
    return True


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


async def test_every_shading_through_the_camera(server, scene):
    async with await style_a(server.url) as client:
        before = await run(client, FINGERPRINT)
        shots = {}
        for shading in ("solid", "wireframe", "xray", "material", "rendered"):
            meta, pixels, _ = await look(client, mode="camera", shading=shading, max_size=256)
            assert (meta["width"], meta["height"]) == (256, 144), meta  # the scene's 16:9 at the longest side
            assert busy(pixels) > 0.02, f"{shading}: blank image"
            assert meta["views"][0]["label"] == "Camera" and meta["seconds"] > 0
            shots[shading] = pixels
            expected = {"solid": "BLENDER_WORKBENCH", "wireframe": "BLENDER_WORKBENCH", "xray": "BLENDER_WORKBENCH",
                        "rendered": "CYCLES"}.get(shading)
            if expected:
                assert meta["engine"] == expected, meta
            elif meta.get("fallback"):  # material: EEVEE, or Workbench where EEVEE cannot render, said so
                assert meta["engine"] == "BLENDER_WORKBENCH" and "EEVEE" in " ".join(meta["notes"])
            else:
                assert meta["engine"].startswith("BLENDER_EEVEE"), meta
        assert meta["mode"] == "camera"
        for a in shots:
            for b in shots:
                if a < b and {a, b} != {"material", "rendered"}:  # EEVEE and Cycles agree on a grey cube
                    assert np.abs(shots[a].astype(int) - shots[b].astype(int)).mean() > 1, f"{a} looks like {b}"
        unchanged(before, await run(client, FINGERPRINT))


async def test_angles_contact_sheet(server, scene):
    async with await style_a(server.url) as client:
        before = await run(client, FINGERPRINT)
        meta, pixels, data = await look(client, mode="angles")
        assert meta["grid"] == [2, 2] and (meta["width"], meta["height"]) == (768, 768)
        assert struct.unpack(">II", data[16:24]) == (768, 768)
        assert [v["label"] for v in meta["views"]] == ["front", "right", "top", "three_quarter"]
        assert meta["views"][0]["direction"] == [0.0, -1.0, 0.0] and meta["views"][0]["size"] == [383, 383]
        front, top = pixels[:383, :383], pixels[385:, :383]
        assert busy(front) > 0.05 and busy(top) > 0.05
        assert np.abs(front.astype(int) - top.astype(int)).mean() > 3, "front and top views look alike"
        six = ["front", "back", "left", "right", "top", [1, 1, 1]]
        meta, pixels, _ = await look(client, mode="angles", views=six, max_size=300, shading="wireframe")
        assert meta["grid"] == [3, 2] and max(meta["width"], meta["height"]) <= 300 and meta["width"] > meta["height"]
        assert [v["label"] for v in meta["views"]][-1] == "[1, 1, 1]" and meta["edges"] > 0
        cw, ch = meta["views"][0]["size"]
        cells = [pixels[r * (ch + 2):r * (ch + 2) + ch, c * (cw + 2):c * (cw + 2) + cw] for r in range(2) for c in range(3)]
        assert all(busy(c) > 0.005 for c in cells)
        assert len({c.tobytes() for c in cells}) == 6, "two views gave the same picture"
        meta, pixels, _ = await look(client, mode="angles", views=["top"], target=["Pillar"], shading="xray",
                                     max_size=128)
        assert (meta["width"], meta["height"]) == (128, 128) and meta["grid"] == [1, 1] and busy(pixels) > 0.1
        unchanged(before, await run(client, FINGERPRINT))


async def test_frames_grid_of_an_animation(server, scene):
    async with await style_a(server.url) as client:
        before = await run(client, FINGERPRINT)
        meta, pixels, _ = await look(client, mode="frames", frame_count=4, max_size=400)
        assert [v["frame"] for v in meta["views"]] == [1, 14, 27, 40] and meta["grid"] == [2, 2]
        assert [v["label"] for v in meta["views"]] == ["frame 1", "frame 14", "frame 27", "frame 40"]
        assert 390 < meta["width"] <= 400 and meta["height"] < meta["width"]
        cw, ch = meta["views"][0]["size"]
        first, last = pixels[:ch, :cw], pixels[ch + 2:, cw + 2:]
        assert np.abs(first.astype(int) - last.astype(int)).mean() > 1, "the cube did not move between frames"
        meta, _, _ = await look(client, mode="frames", frames=[1, 20, 40], target=["Cube"], max_size=200)
        assert [v["frame"] for v in meta["views"]] == [1, 20, 40] and meta["grid"] == [3, 1]
        assert meta["views"][0]["camera"] == "auto-framed"
        too_many = await look_error(client, mode="frames", frames=list(range(13)))
        assert too_many["status"] == "error" and "2 to 12" in too_many["error"]
        unchanged(before, await run(client, FINGERPRINT))


async def test_without_a_camera_and_with_bad_names(server, scene):
    async with await style_a(server.url) as client:
        await run(client, "import bpy\nbpy.context.scene.camera = None")
        try:
            before = await run(client, FINGERPRINT)
            meta, pixels, _ = await look(client, max_size=200)  # the defaults: viewport, solid
            assert meta["mode"] == "viewport" and meta["views"][0]["camera"] == "auto-framed" and busy(pixels) > 0.05
            meta, _, _ = await look(client, mode="angles", views=["left", [0, -1, 2]], max_size=200)
            assert meta["grid"] == [2, 1] and (meta["width"], meta["height"]) == (200, 99)
            no_camera = await look_error(client, mode="camera")
            assert no_camera["status"] == "error" and "no camera" in no_camera["error"]
            unknown = await look_error(client, mode="angles", target=["Cube", "Nope"])
            assert unknown["status"] == "error" and "no object named 'Nope'" in unknown["error"]
            bad_view = await look_error(client, mode="angles", views=["sideways"])
            assert bad_view["status"] == "error" and "unknown view 'sideways'" in bad_view["error"]
            small = await look_error(client, max_size=10)
            assert small["status"] == "invalid_arguments" and "max_size" in small["error"]
            unchanged(before, await run(client, FINGERPRINT))
        finally:
            await run(client, "import bpy\nbpy.context.scene.camera = bpy.data.objects['Camera']")
