"""Hyper3D Rodin (hyperhuman.deemos.com): generate a model from text or images, poll, download the result."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

import requests

from .http import USER_AGENT, ServiceError, download
from .safety import safe_join


class Rodin:
    def __init__(self, base_url: str, api_key: str, session: requests.Session | None = None):
        if not api_key:
            raise ServiceError("no Hyper3D Rodin API key: set it in the add-on preferences")
        self.base = base_url.rstrip("/")
        self.http = session or requests.Session()
        self.headers = {"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT}

    def _post(self, path: str, **kw: Any) -> Any:
        try:
            r = self.http.post(f"{self.base}{path}", headers=self.headers, timeout=60, **kw)
        except requests.RequestException as exc:
            raise ServiceError(f"cannot reach Hyper3D Rodin: {exc.__class__.__name__}") from None
        if r.status_code in (401, 403):
            raise ServiceError("Hyper3D Rodin refused the API key")
        if r.status_code >= 400:
            raise ServiceError(f"Hyper3D Rodin answered HTTP {r.status_code}")
        try:
            return r.json()
        except ValueError:
            raise ServiceError("Hyper3D Rodin did not answer JSON") from None

    def generate(self, *, prompt: str | None = None, images: list[tuple[str, bytes]] | None = None,
                 bbox_condition: list[float] | None = None) -> dict[str, Any]:
        fields: list[tuple[str, Any]] = [("tier", (None, "Sketch")), ("mesh_mode", (None, "Raw"))]
        if prompt:
            fields.append(("prompt", (None, prompt)))
        for name, data in images or []:
            fields.append(("images", (name, data, mimetypes.guess_type(name)[0] or "image/png")))
        if bbox_condition:
            fields.append(("bbox_condition", (None, ",".join(str(v) for v in bbox_condition))))
        answer = self._post("/v2/rodin", files=fields)
        jobs = answer.get("jobs") or {}
        if "uuid" not in answer or "subscription_key" not in jobs:
            raise ServiceError(f"unexpected Rodin answer: {str(answer)[:200]}")
        return {"task_uuid": answer["uuid"], "subscription_key": jobs["subscription_key"]}

    def status(self, subscription_key: str) -> dict[str, Any]:
        answer = self._post("/v2/status", json={"subscription_key": subscription_key})
        jobs = answer.get("jobs") or []
        states = [str(j.get("status")) for j in jobs]
        return {"jobs": [{"uuid": j.get("uuid"), "status": j.get("status")} for j in jobs],
                "done": bool(states) and all(s == "Done" for s in states),
                "failed": any(s == "Failed" for s in states)}

    def download_result(self, task_uuid: str, folder: Path) -> Path:
        answer = self._post("/v2/download", json={"task_uuid": task_uuid})
        items = answer.get("list") or []
        model = next((i for i in items if str(i.get("name", "")).lower().endswith((".glb", ".gltf"))), None)
        if model is None:
            raise ServiceError("the Rodin task has no model file (yet): poll until it is done")
        return download(self.http, model["url"], safe_join(folder, model["name"]))
