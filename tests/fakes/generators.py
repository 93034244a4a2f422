"""Local stand-ins for Tripo (/tripo), Meshy (/meshy) and Tencent Hunyuan3D (/hunyuan): their JSON shapes,
state names and auth schemes, with each task finishing on its third poll and a small real .glb to fetch."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import urlparse

from tests.fakes import files
from tests.fakes.base import FakeHandler, FakeService

TRIPO_KEY = "tsk_test"
MESHY_KEY = "msy_test"
SECRET_ID, SECRET_KEY = "AKIDtest", "tencent-secret"


def tc3_signature(secret_key: str, date: str, string_to_sign: str) -> str:
    def mac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = mac(mac(mac(f"TC3{secret_key}".encode(), date), "ai3d"), "tc3_request")
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class FakeGenerators(FakeService):
    def __init__(self) -> None:
        obj = b"mtllib material.mtl\no HunyuanMesh\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl base\nf 1 2 3\n"
        self.blobs = {"model.glb": files.glb_triangle("GeneratedModel"),
                      # Hunyuan3D's OBJ result: an archive of the mesh and its material
                      "hunyuan_obj.zip": files.zip_of({"model.obj": obj,
                                                       "material.mtl": b"newmtl base\nKd 0.8 0.2 0.2\n"})}
        self.polls: dict[str, int] = {}
        self.bodies: list[dict] = []
        self.downloads = 0
        super().__init__()

    def poll(self, task_id: str) -> int:
        self.polls[task_id] = self.polls.get(task_id, 0) + 1
        return self.polls[task_id]

    def handler(self):
        fake = self

        class Handler(FakeHandler):
            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _bearer(self, key: str) -> bool:
                if self.headers.get("Authorization") == f"Bearer {key}":
                    return True
                self._json({"code": 1002, "message": "Authentication failed"}, 401)
                return False

            def do_POST(self):
                path = urlparse(self.path).path
                body = self._body()
                if path.startswith("/tripo/"):
                    if not self._bearer(TRIPO_KEY):
                        return None
                    if path == "/tripo/upload":
                        if b'name="file"' not in body:
                            return self._json({"code": 2003, "message": "file required"}, 400)
                        return self._json({"code": 0, "data": {"image_token": "img-token-1"}})
                    if path == "/tripo/task":
                        task = json.loads(body)
                        fake.bodies.append(task)
                        if task.get("type") == "text_to_model" and task.get("prompt"):
                            return self._json({"code": 0, "data": {"task_id": "tripo-text-1"}})
                        if task.get("type") == "image_to_model" and task["file"].get("file_token") == "img-token-1":
                            return self._json({"code": 0, "data": {"task_id": "tripo-image-1"}})
                        return self._json({"code": 2002, "message": "bad task"}, 400)
                if path.startswith("/meshy/"):
                    if not self._bearer(MESHY_KEY):
                        return None
                    task = json.loads(body)
                    fake.bodies.append(task)
                    if path == "/meshy/openapi/v2/text-to-3d" and task.get("mode") == "preview" and task.get("prompt"):
                        return self._json({"result": "0190-meshy-text"})
                    if path == "/meshy/openapi/v1/image-to-3d" and str(task.get("image_url")).startswith("data:image/"):
                        return self._json({"result": "0190-meshy-image"})
                    return self._json({"message": "Invalid request"}, 400)
                if path == "/hunyuan/":
                    return self._hunyuan(body)
                return self._json({"error": "not found"}, 404)

            def _hunyuan(self, body: bytes):
                action = self.headers.get("X-TC-Action", "")
                stamp = int(self.headers.get("X-TC-Timestamp") or 0)
                date = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d")
                canonical = "\n".join(["POST", "/", "", f"content-type:{self.headers.get('Content-Type')}\n"
                                       f"host:{self.headers.get('Host')}\n", "content-type;host",
                                       hashlib.sha256(body).hexdigest()])
                scope = f"{date}/ai3d/tc3_request"
                to_sign = "\n".join(["TC3-HMAC-SHA256", str(stamp), scope,
                                     hashlib.sha256(canonical.encode()).hexdigest()])
                expected = (f"TC3-HMAC-SHA256 Credential={SECRET_ID}/{scope}, SignedHeaders=content-type;host, "
                            f"Signature={tc3_signature(SECRET_KEY, date, to_sign)}")
                if self.headers.get("Authorization") != expected or self.headers.get("X-TC-Version") != "2025-05-13":
                    return self._json({"Response": {"Error": {"Code": "AuthFailure.SignatureFailure",
                                                              "Message": "The provided credentials could not be "
                                                                         "validated."}, "RequestId": "r-0"}})
                params = json.loads(body)
                fake.bodies.append(params)
                if action == "SubmitHunyuanTo3DJob":
                    if not (params.get("Prompt") or params.get("ImageBase64")):
                        return self._json({"Response": {"Error": {"Code": "InvalidParameter",
                                                                  "Message": "Prompt or image"}, "RequestId": "r-1"}})
                    return self._json({"Response": {"JobId": "1357924680", "RequestId": "r-2"}})
                if action == "QueryHunyuanTo3DJob":
                    n = fake.poll(params.get("JobId", ""))
                    status = "WAIT" if n == 1 else "RUN" if n == 2 else "DONE"
                    result = [{"Type": "OBJ", "Url": f"{fake.url}/dl/hunyuan_obj.zip",
                               "PreviewImageUrl": f"{fake.url}/dl/preview.png"}] if status == "DONE" else []
                    return self._json({"Response": {"Status": status, "ErrorCode": "", "ErrorMessage": "",
                                                    "ResultFile3Ds": result, "RequestId": "r-3"}})
                return self._json({"Response": {"Error": {"Code": "InvalidAction", "Message": action},
                                                "RequestId": "r-4"}})

            def do_GET(self):
                parts = [p for p in urlparse(self.path).path.split("/") if p]
                if parts[:1] == ["dl"] and len(parts) == 2 and parts[1] in fake.blobs:
                    fake.downloads += 1
                    return self._send_file(fake.blobs[parts[1]])
                if parts[:2] == ["tripo", "task"] and len(parts) == 3:
                    if not self._bearer(TRIPO_KEY):
                        return None
                    n = fake.poll(parts[2])
                    status, progress = ("queued", 0) if n == 1 else ("running", 40) if n == 2 else ("success", 100)
                    output = {"pbr_model": f"{fake.url}/dl/model.glb",
                              "rendered_image": f"{fake.url}/dl/preview.webp"} if status == "success" else {}
                    return self._json({"code": 0, "data": {"task_id": parts[2], "type": "text_to_model",
                                                           "status": status, "input": {}, "output": output,
                                                           "progress": progress, "create_time": 1700000000}})
                if parts[:2] == ["meshy", "openapi"] and len(parts) == 5:
                    if not self._bearer(MESHY_KEY):
                        return None
                    n = fake.poll(parts[4])
                    status = "PENDING" if n == 1 else "IN_PROGRESS" if n == 2 else "SUCCEEDED"
                    urls = {"glb": f"{fake.url}/dl/model.glb", "fbx": f"{fake.url}/dl/model.fbx"} \
                        if status == "SUCCEEDED" else {}
                    return self._json({"id": parts[4], "model_urls": urls, "thumbnail_url": "", "prompt": "",
                                       "art_style": "realistic", "progress": {1: 0, 2: 55}.get(n, 100),
                                       "status": status, "task_error": {"message": ""},
                                       "created_at": 1700000000000})
                return self._json({"error": "not found"}, 404)

        return Handler
