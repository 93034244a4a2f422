"""Local stand-ins for Hyper3D Rodin (/rodin) and Sketchfab (/sketchfab): their JSON shapes and small real files."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

from tests.fakes import files
from tests.fakes.base import FakeHandler, FakeService

API_KEY = "test-key-123"
MODEL_UID = "a1b2c3d4"
EVIL_UID = "evilzip"


class FakeServices(FakeService):
    def __init__(self) -> None:
        gltf, bin_data = files.gltf_triangle("scene.bin")
        self.blobs = {
            "rodin_model.glb": files.glb_triangle(),
            "thumb.png": files.png(32, 24),
            f"{MODEL_UID}.zip": files.zip_of({"scene.gltf": gltf, "scene.bin": bin_data,
                                              "textures/base.png": files.png()}),
            f"{EVIL_UID}.zip": files.zip_of({"scene.gltf": gltf, "../../../../tmp/blender_mcp_zip_pwned.txt": b"x"}),
        }
        self.status_calls = 0
        super().__init__()

    def handler(self):
        fake = self

        class Handler(FakeHandler):
            def _authorized(self, scheme: str) -> bool:
                if self.headers.get("Authorization") == f"{scheme} {API_KEY}":
                    return True
                self._json({"detail": "Invalid token"}, 401)
                return False

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                path = urlparse(self.path).path
                if not path.startswith("/rodin/") or not self._authorized("Bearer"):
                    return None if path.startswith("/rodin/") else self._json({"error": "not found"}, 404)
                if path == "/rodin/v2/rodin":
                    if b'name="prompt"' not in body and b'name="images"' not in body:
                        return self._json({"error": "prompt or images required"}, 400)
                    return self._json({"uuid": "task-0001", "jobs": {"subscription_key": "sub-0001",
                                                                     "uuids": ["job-a", "job-b"]}})
                if path == "/rodin/v2/status":
                    fake.status_calls += 1
                    state = "Generating" if fake.status_calls == 1 else "Done"
                    return self._json({"jobs": [{"uuid": "job-a", "status": "Done"}, {"uuid": "job-b", "status": state}]})
                if path == "/rodin/v2/download":
                    if json.loads(body or b"{}").get("task_uuid") != "task-0001":
                        return self._json({"error": "unknown task"}, 404)
                    return self._json({"list": [{"url": f"{fake.url}/dl/rodin_model.glb", "name": "base_basic_pbr.glb"},
                                                {"url": f"{fake.url}/dl/thumb.png", "name": "preview.png"}]})
                return self._json({"error": "not found"}, 404)

            def do_GET(self):
                url = urlparse(self.path)
                parts = [p for p in url.path.split("/") if p]
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if parts[:1] == ["dl"] and len(parts) == 2 and parts[1] in fake.blobs:
                    return self._send(200, fake.blobs[parts[1]], "application/octet-stream")
                if parts[:1] != ["sketchfab"]:
                    return self._json({"error": "not found"}, 404)
                rest = parts[1:]
                if rest == ["me"]:
                    return self._json({"username": "test-artist"}) if self._authorized("Token") else None
                if rest == ["search"]:
                    hits = [{"uid": MODEL_UID, "name": f"Wooden {query.get('q', '')}", "isDownloadable": True,
                             "user": {"username": "maker"}, "license": {"label": "CC Attribution"},
                             "faceCount": 1, "viewerUrl": f"https://sketchfab.example/{MODEL_UID}",
                             "thumbnails": {"images": [
                                 {"url": f"{fake.url}/dl/missing-big.png", "width": 1024, "height": 768},
                                 {"url": f"{fake.url}/dl/thumb.png", "width": 256, "height": 192},
                                 {"url": f"{fake.url}/dl/missing-tiny.png", "width": 64, "height": 48}]}}]
                    return self._json({"results": hits, "next": None})
                if len(rest) == 2 and rest[0] == "models":
                    return self._json({"uid": rest[1], "thumbnails": {"images": [
                        {"url": f"{fake.url}/dl/thumb.png", "width": 32, "height": 24},
                        {"url": f"{fake.url}/dl/missing-big.png", "width": 4096, "height": 3072}]}})
                if len(rest) == 3 and rest[0] == "models" and rest[2] == "download":
                    if not self._authorized("Token"):
                        return None
                    return self._json({"gltf": {"url": f"{fake.url}/dl/{rest[1]}.zip", "size": 1, "expires": 300}})
                return self._json({"error": "not found"}, 404)

        return Handler
