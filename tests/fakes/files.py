"""Small real files made on the spot: a Radiance HDR, PNG images, a glTF triangle with an external buffer."""

from __future__ import annotations

import json
import struct
import zlib


def hdr(width: int = 8, height: int = 4) -> bytes:
    """A flat (uncompressed) Radiance RGBE image, a soft blue sky."""
    header = f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {height} +X {width}\n".encode()
    pixel = bytes([100, 140, 200, 128])
    return header + pixel * (width * height)


def png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (200, 120, 60)) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def gltf_triangle(bin_name: str) -> tuple[bytes, bytes]:
    """A one-triangle glTF whose vertex buffer lives in an external .bin (a Poly Haven 'include')."""
    positions = struct.pack("<9f", 0, 0, 0, 1, 0, 0, 0, 1, 0)
    doc = {
        "asset": {"version": "2.0"},
        "scene": 0, "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "FakeRock"}],
        "meshes": [{"name": "FakeRockMesh", "primitives": [{"attributes": {"POSITION": 0}}]}],
        "buffers": [{"uri": bin_name, "byteLength": len(positions)}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(positions)}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
                       "min": [0, 0, 0], "max": [1, 1, 0]}],
    }
    return json.dumps(doc).encode(), positions


def glb_triangle(node_name: str = "RodinModel") -> bytes:
    """The same triangle as a binary glTF (GLB) with its buffer embedded."""
    doc, positions = gltf_triangle("unused.bin")
    meta = json.loads(doc)
    meta["buffers"] = [{"byteLength": len(positions)}]
    meta["nodes"][0]["name"] = node_name
    body = json.dumps(meta).encode()
    body += b" " * (-len(body) % 4)
    blob = positions + b"\x00" * (-len(positions) % 4)
    chunks = struct.pack("<I4s", len(body), b"JSON") + body + struct.pack("<I4s", len(blob), b"BIN\x00") + blob
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


def zip_of(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()
