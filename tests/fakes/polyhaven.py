"""A local stand-in for api.polyhaven.com: its JSON shapes, with download URLs pointing back at itself."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlparse

from tests.fakes import files
from tests.fakes.base import FakeHandler, FakeService

HDRI_ID = "kloofendal_43d_clear_puresky"
TEXTURE_ID = "rock_wall_08"
MODEL_ID = "rock_moss_set_01"
EVIL_ID = "evil_model"

ASSETS = {
    HDRI_ID: {"name": "Kloofendal 43d Clear (Pure Sky)", "type": 0, "categories": ["skies", "outdoor"],
              "tags": ["clear", "sunny"], "download_count": 900},
    "studio_small_09": {"name": "Studio Small 09", "type": 0, "categories": ["studio", "indoor"], "tags": [],
                        "download_count": 500},
    TEXTURE_ID: {"name": "Rock Wall 08", "type": 1, "categories": ["rock", "wall"], "tags": ["stone"],
                 "download_count": 300},
    MODEL_ID: {"name": "Rock Moss Set 01", "type": 2, "categories": ["nature", "rocks"], "tags": ["moss"],
               "download_count": 200},
    EVIL_ID: {"name": "Evil", "type": 2, "categories": ["rocks"], "tags": [], "download_count": 1},
}


class FakePolyHaven(FakeService):
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.requests: list[str] = []
        super().__init__()

    def start(self) -> FakePolyHaven:
        self._make_files()
        return super().start()

    def _entry(self, name: str, data: bytes, include: dict | None = None) -> dict:
        self.blobs[name] = data
        entry = {"url": f"{self.url}/dl/{name}", "size": len(data), "md5": hashlib.md5(data).hexdigest()}
        if include is not None:
            entry["include"] = include
        return entry

    def _make_files(self) -> None:
        hdr = files.hdr()
        gltf, bin_data = files.gltf_triangle("rock_moss_set_01.bin")
        self.files = {
            HDRI_ID: {"hdri": {res: {"hdr": self._entry(f"{HDRI_ID}_{res}.hdr", hdr)} for res in ("1k", "2k")}},
            TEXTURE_ID: {
                "Diffuse": {"1k": {"png": self._entry("rock_wall_08_diff_1k.png", files.png(rgb=(150, 140, 130)))}},
                "Rough": {"1k": {"png": self._entry("rock_wall_08_rough_1k.png", files.png(rgb=(180, 180, 180)))}},
                "nor_gl": {"1k": {"png": self._entry("rock_wall_08_nor_gl_1k.png", files.png(rgb=(128, 128, 255)))}},
                "blend": {"1k": {"blend": self._entry("rock_wall_08_1k.blend", b"not used")}},
            },
            MODEL_ID: {"gltf": {"1k": {"gltf": self._entry("rock_moss_set_01_1k.gltf", gltf, include={
                "rock_moss_set_01.bin": self._entry("rock_moss_set_01.bin", bin_data),
                "textures/rock_moss_diff_1k.png": self._entry("rock_moss_diff_1k.png", files.png())})}}},
            EVIL_ID: {"gltf": {"1k": {"gltf": self._entry("evil_1k.gltf", gltf, include={
                "../../../../tmp/blender_mcp_pwned.txt": self._entry("pwned.txt", b"pwned")})}}},
        }

    def handler(self):
        fake = self

        class Handler(FakeHandler):
            def do_GET(self):
                url = urlparse(self.path)
                fake.requests.append(url.path)
                parts = [p for p in url.path.split("/") if p]
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if parts == ["types"]:
                    return self._json(["hdris", "textures", "models"])
                if len(parts) == 2 and parts[0] == "categories":
                    code = {"hdris": 0, "textures": 1, "models": 2}.get(parts[1])
                    counts: dict[str, int] = {}
                    for a in ASSETS.values():
                        if code is None or a["type"] == code:
                            for c in a["categories"]:
                                counts[c] = counts.get(c, 0) + 1
                    return self._json({"all": sum(1 for a in ASSETS.values() if code is None or a["type"] == code),
                                       **counts})
                if parts == ["assets"]:
                    code = {"hdris": 0, "textures": 1, "models": 2}.get(query.get("type", ""))
                    wanted = set(filter(None, query.get("categories", "").split(",")))
                    return self._json({k: {**a, "thumbnail_url": f"{fake.url}/thumbs/{k}.png"}
                                       for k, a in ASSETS.items() if (code is None or a["type"] == code)
                                       and wanted <= set(a["categories"])})
                if len(parts) == 2 and parts[0] == "thumbs":
                    return self._send(200, files.png(16, 16), "image/png")
                if len(parts) == 2 and parts[0] == "info" and parts[1] in ASSETS:
                    return self._json({**ASSETS[parts[1]], "thumbnail_url": f"{fake.url}/thumbs/{parts[1]}.png"})
                if len(parts) == 2 and parts[0] == "files" and parts[1] in fake.files:
                    return self._json(fake.files[parts[1]])
                if len(parts) == 2 and parts[0] == "dl" and parts[1] in fake.blobs:
                    return self._send(200, fake.blobs[parts[1]], "application/octet-stream")
                return self._send(404, b'{"error":"not found"}')

        return Handler
