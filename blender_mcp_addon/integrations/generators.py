"""Text/image-to-3D services behind one shape: start a task, read its state, find the model file.

Each client is bpy-free and keeps no state between calls: a task is named by its provider and the
service's own task id (the job handle), so any later call or session can poll or import it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import mimetypes
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

import requests

from .http import USER_AGENT, ServiceError

# One vocabulary for every provider's states.
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


@dataclass
class TaskState:
    state: str
    progress: float | None = None  # 0..1 when the service says
    message: str = ""
    model_url: str | None = None
    model_format: str = "glb"

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "progress": self.progress, "done": self.state == DONE,
                "failed": self.state == FAILED, "message": self.message}


def _image_mime(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "image/png"


class _JsonApi:
    label = "the service"

    def __init__(self, base_url: str, session: requests.Session | None = None):
        self.base = base_url.rstrip("/")
        self.http = session or requests.Session()
        self.headers: dict[str, str] = {"User-Agent": USER_AGENT}

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self.http.request(method, f"{self.base}{path}", headers=self.headers, timeout=60, **kw)
        except requests.RequestException as exc:
            raise ServiceError(f"cannot reach {self.label}: {exc.__class__.__name__}") from None
        if r.status_code in (401, 403):
            raise ServiceError(f"{self.label} refused the API key")
        try:
            answer = r.json()
        except ValueError:
            answer = None
        if r.status_code >= 400:
            detail = answer.get("message") if isinstance(answer, dict) else None
            raise ServiceError(f"{self.label} answered HTTP {r.status_code}" + (f": {detail}" if detail else ""))
        if not isinstance(answer, dict):
            raise ServiceError(f"{self.label} did not answer a JSON object")
        return answer


class Tripo(_JsonApi):
    """Tripo's OpenAPI v2: POST /task ({type: text_to_model | image_to_model}), GET /task/{id}, POST /upload."""

    label = "Tripo"
    _STATES = {"queued": QUEUED, "running": RUNNING, "success": DONE}

    def __init__(self, base_url: str, api_key: str, session: requests.Session | None = None):
        if not api_key:
            raise ServiceError("no Tripo API key: set it in the add-on preferences or BLENDER_MCP_TRIPO_API_KEY")
        super().__init__(base_url, session)
        self.headers["Authorization"] = f"Bearer {api_key}"

    def _data(self, answer: dict[str, Any]) -> dict[str, Any]:
        if answer.get("code") != 0 or not isinstance(answer.get("data"), dict):
            raise ServiceError(f"Tripo answered code {answer.get('code')}: {str(answer.get('message', ''))[:200]}")
        return answer["data"]

    def start(self, prompt: str | None, images: list[tuple[str, bytes]]) -> str:
        if images:
            if len(images) != 1:
                raise ServiceError("Tripo takes one image (image_to_model)")
            name, data = images[0]
            uploaded = self._data(self._call("POST", "/upload", files={"file": (name, data, _image_mime(name))}))
            token = uploaded.get("image_token") or uploaded.get("file_token")
            if not token:
                raise ServiceError("Tripo's upload answered no image token")
            kind = name.rsplit(".", 1)[-1].lower().replace("jpeg", "jpg")
            body: dict[str, Any] = {"type": "image_to_model", "file": {"type": kind, "file_token": token}}
            if prompt:
                body["prompt"] = prompt
        else:
            body = {"type": "text_to_model", "prompt": prompt}
        task_id = self._data(self._call("POST", "/task", json=body)).get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise ServiceError("Tripo answered no task_id")
        return task_id

    def status(self, task_id: str) -> TaskState:
        data = self._data(self._call("GET", f"/task/{task_id}"))
        raw = str(data.get("status", ""))
        progress = data.get("progress")
        url = None
        # `output` holds URLs; older task records put {type, url} objects under `result` instead.
        for holder in (data.get("output"), data.get("result")):
            for key in ("pbr_model", "model", "base_model"):
                value = (holder or {}).get(key) if isinstance(holder, dict) else None
                value = value.get("url") if isinstance(value, dict) else value
                if url is None and isinstance(value, str):
                    url = value
        state = self._STATES.get(raw, FAILED)
        return TaskState(state, float(progress) / 100 if isinstance(progress, int | float) else None,
                         "" if state != FAILED else f"Tripo task {raw}", url)


class Meshy(_JsonApi):
    """Meshy: POST /openapi/v2/text-to-3d (preview mode) or /openapi/v1/image-to-3d, GET .../{id}."""

    label = "Meshy"
    KINDS = {"text": "/openapi/v2/text-to-3d", "image": "/openapi/v1/image-to-3d"}
    _STATES = {"PENDING": QUEUED, "IN_PROGRESS": RUNNING, "SUCCEEDED": DONE}

    def __init__(self, base_url: str, api_key: str, session: requests.Session | None = None):
        if not api_key:
            raise ServiceError("no Meshy API key: set it in the add-on preferences or BLENDER_MCP_MESHY_API_KEY")
        super().__init__(base_url, session)
        self.headers["Authorization"] = f"Bearer {api_key}"

    def start(self, prompt: str | None, images: list[tuple[str, bytes]]) -> tuple[str, str]:
        """Returns (kind, task id): the kind picks the endpoint the task is read from later."""
        if images:
            if len(images) != 1:
                raise ServiceError("Meshy takes one image (image-to-3d)")
            name, data = images[0]
            uri = f"data:{_image_mime(name)};base64,{base64.b64encode(data).decode()}"
            kind, body = "image", {"image_url": uri, "enable_pbr": True}
        else:
            kind, body = "text", {"mode": "preview", "prompt": prompt, "art_style": "realistic"}
        task_id = self._call("POST", self.KINDS[kind], json=body).get("result")
        if not isinstance(task_id, str) or not task_id:
            raise ServiceError("Meshy answered no task id")
        return kind, task_id

    def status(self, kind: str, task_id: str) -> TaskState:
        if kind not in self.KINDS:
            raise ServiceError(f"unknown Meshy task kind {kind!r}")
        task = self._call("GET", f"{self.KINDS[kind]}/{task_id}")
        raw = str(task.get("status", ""))
        progress = task.get("progress")
        state = self._STATES.get(raw, FAILED)
        error = (task.get("task_error") or {}).get("message") or ""
        url = (task.get("model_urls") or {}).get("glb")
        return TaskState(state, float(progress) / 100 if isinstance(progress, int | float) else None,
                         error or ("" if state != FAILED else f"Meshy task {raw}"),
                         url if isinstance(url, str) else None)


class Hunyuan3D(_JsonApi):
    """Tencent Hunyuan3D on Tencent Cloud (service ai3d, version 2025-05-13): SubmitHunyuanTo3DJob and
    QueryHunyuanTo3DJob, JSON POSTs signed with TC3-HMAC-SHA256 from a SecretId and SecretKey."""

    label = "Hunyuan3D"
    SERVICE = "ai3d"
    _STATES = {"WAIT": QUEUED, "RUN": RUNNING, "DONE": DONE}

    def __init__(self, base_url: str, secret_id: str, secret_key: str, region: str, version: str = "2025-05-13",
                 session: requests.Session | None = None):
        if not (secret_id and secret_key):
            raise ServiceError("no Hunyuan3D credentials: set the Tencent Cloud SecretId and SecretKey in the "
                               "add-on preferences or BLENDER_MCP_HUNYUAN3D_SECRET_ID / _SECRET_KEY")
        super().__init__(base_url, session)
        self.secret_id, self.secret_key, self.region, self.version = secret_id, secret_key, region, version

    def _signed(self, action: str, body: bytes, now: int) -> dict[str, str]:
        host = urlparse(self.base).netloc
        # timezone.utc, not datetime.UTC: Blender 3.x bundles Python 3.10
        date = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%d")  # noqa: UP017
        content_type = "application/json; charset=utf-8"
        canonical = "\n".join(["POST", "/", "", f"content-type:{content_type}\nhost:{host}\n", "content-type;host",
                               hashlib.sha256(body).hexdigest()])
        scope = f"{date}/{self.SERVICE}/tc3_request"
        to_sign = "\n".join(["TC3-HMAC-SHA256", str(now), scope, hashlib.sha256(canonical.encode()).hexdigest()])

        def mac(key: bytes, msg: str) -> bytes:
            return hmac.new(key, msg.encode(), hashlib.sha256).digest()

        key = mac(mac(mac(f"TC3{self.secret_key}".encode(), date), self.SERVICE), "tc3_request")
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return {"Authorization": f"TC3-HMAC-SHA256 Credential={self.secret_id}/{scope}, "
                                 f"SignedHeaders=content-type;host, Signature={signature}",
                "Content-Type": content_type, "Host": host, "X-TC-Action": action,
                "X-TC-Timestamp": str(now), "X-TC-Version": self.version, "X-TC-Region": self.region,
                "User-Agent": USER_AGENT}

    def _action(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(params).encode()
        try:
            r = self.http.post(f"{self.base}/", data=body, headers=self._signed(action, body, int(time.time())),
                               timeout=60)
        except requests.RequestException as exc:
            raise ServiceError(f"cannot reach Hunyuan3D: {exc.__class__.__name__}") from None
        try:
            answer = r.json().get("Response")
        except (ValueError, AttributeError):
            answer = None
        if not isinstance(answer, dict):
            raise ServiceError(f"Hunyuan3D answered HTTP {r.status_code} without a Response")
        error = answer.get("Error")
        if isinstance(error, dict):
            raise ServiceError(f"Hunyuan3D {action}: {error.get('Code')}: {str(error.get('Message', ''))[:200]}")
        return answer

    def start(self, prompt: str | None, images: list[tuple[str, bytes]]) -> str:
        if images:
            if len(images) != 1:
                raise ServiceError("Hunyuan3D takes one image")
            params: dict[str, Any] = {"ImageBase64": base64.b64encode(images[0][1]).decode()}
        else:
            params = {"Prompt": prompt}
        job = self._action("SubmitHunyuanTo3DJob", params).get("JobId")
        if not isinstance(job, str) or not job:
            raise ServiceError("Hunyuan3D answered no JobId")
        return job

    def status(self, job_id: str) -> TaskState:
        answer = self._action("QueryHunyuanTo3DJob", {"JobId": job_id})
        raw = str(answer.get("Status", ""))
        state = self._STATES.get(raw, FAILED)
        files = [f for f in answer.get("ResultFile3Ds") or [] if isinstance(f, dict) and isinstance(f.get("Url"), str)]
        model = next((f for f in files if str(f.get("Type", "")).upper() == "GLB"), files[0] if files else None)
        fmt = str(model.get("Type", "glb")).lower() if model else "glb"
        message = answer.get("ErrorMessage") or ("" if state != FAILED else f"Hunyuan3D job {raw}")
        return TaskState(state, None, str(message), model["Url"] if model else None, fmt)


PROVIDERS = ("rodin", "hunyuan3d", "tripo", "meshy")
_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _checked_id(value: str, what: str) -> str:
    # Ids go into URL paths and folder names: only the characters services use for them.
    if not value or len(value) > 200 or not set(value) <= _ID_CHARS:
        raise ServiceError(f"not a valid job handle: bad {what}")
    return value


def make_handle(provider: str, *parts: str) -> str:
    """`tripo:<task id>`, `meshy:<text|image>:<task id>`, `rodin:<task uuid>:<subscription key>`, ..."""
    return ":".join([provider, *parts])


def parse_handle(handle: str) -> tuple[str, list[str]]:
    provider, _, rest = str(handle).partition(":")
    if provider not in PROVIDERS:
        raise ServiceError(f"not a valid job handle: it starts with none of {', '.join(PROVIDERS)}")
    if provider == "rodin":
        # The subscription key is the service's own token: kept as it is, but it never becomes a path.
        task_uuid, _, key = rest.partition(":")
        if not key:
            raise ServiceError("not a valid job handle: rodin:<task uuid>:<subscription key>")
        return provider, [_checked_id(task_uuid, "task uuid"), key]
    if provider == "meshy":
        kind, _, task_id = rest.partition(":")
        if kind not in Meshy.KINDS:
            raise ServiceError("not a valid job handle: meshy:<text|image>:<task id>")
        return provider, [kind, _checked_id(task_id, "task id")]
    return provider, [_checked_id(rest, "task id")]
