"""One way to generate models with any provider (Rodin, Hunyuan3D, Tripo, Meshy): start, poll, import.

The job handle names the provider and the remote task, so polling and importing work from any later
call, session or Blender restart; nothing about a generation is kept in this process.
"""

from __future__ import annotations

import time
import zipfile
from collections.abc import Generator
from pathlib import Path
from typing import Any

import requests

from ..integrations.generators import (
    DONE,
    FAILED,
    PROVIDERS,
    QUEUED,
    RUNNING,
    Hunyuan3D,
    Meshy,
    TaskState,
    Tripo,
    make_handle,
    parse_handle,
)
from ..integrations.http import ServiceError, download
from ..integrations.libraries import extract_zip
from ..integrations.safety import safe_name
from ..integrations.settings import setting
from . import Background, CommandError, Progress, command
from .importing import fit_to_size, import_model_file
from .rodin import _api as rodin_api
from .services import download_folder, from_service, integration_on

LABELS = {"rodin": "Hyper3D Rodin", "hunyuan3d": "Hunyuan3D", "tripo": "Tripo", "meshy": "Meshy"}
DEFAULT_URLS = {"tripo": "https://api.tripo3d.ai/v2/openapi", "meshy": "https://api.meshy.ai",
                "hunyuan3d": "https://ai3d.tencentcloudapi.com"}
MAX_IMAGE_BYTES = 20 * 1024 * 1024


def _require(provider: str) -> None:
    if provider not in PROVIDERS:
        raise CommandError(f"unknown provider {provider!r}; use one of {', '.join(PROVIDERS)}")
    if not integration_on(provider):
        raise CommandError(f"{LABELS[provider]} is disabled in the add-on preferences; enable it there")


def _url(provider: str) -> str:
    return setting(f"{provider}_api_url", DEFAULT_URLS[provider])


def _tripo() -> Tripo:
    return Tripo(_url("tripo"), setting("tripo_api_key"))


def _meshy() -> Meshy:
    return Meshy(_url("meshy"), setting("meshy_api_key"))


def _hunyuan() -> Hunyuan3D:
    return Hunyuan3D(_url("hunyuan3d"), setting("hunyuan3d_secret_id"), setting("hunyuan3d_secret_key"),
                     setting("hunyuan3d_region", "ap-guangzhou"), setting("hunyuan3d_api_version", "2025-05-13"))


def _start(provider: str, prompt: str | None, images: list[tuple[str, bytes]]) -> str:
    if provider == "rodin":
        task = rodin_api().generate(prompt=prompt, images=images or None)
        return make_handle("rodin", task["task_uuid"], task["subscription_key"])
    if provider == "tripo":
        return make_handle("tripo", _tripo().start(prompt, images))
    if provider == "meshy":
        return make_handle("meshy", *_meshy().start(prompt, images))
    return make_handle("hunyuan3d", _hunyuan().start(prompt, images))


def _status(handle: str) -> TaskState:
    provider, parts = parse_handle(handle)
    if provider == "rodin":
        answer = rodin_api().status(parts[1])
        state = DONE if answer["done"] else FAILED if answer["failed"] else RUNNING
        jobs = answer["jobs"]
        finished = sum(1 for j in jobs if j.get("status") == "Done")
        return TaskState(state, finished / len(jobs) if jobs else None,
                         "a Rodin job failed" if state == FAILED else "")
    if provider == "tripo":
        return _tripo().status(parts[0])
    if provider == "meshy":
        return _meshy().status(parts[0], parts[1])
    return _hunyuan().status(parts[0])


def _handle_provider(handle: str) -> tuple[str, list[str]]:
    try:
        provider, parts = parse_handle(handle)
    except ServiceError as exc:
        raise CommandError(str(exc)) from None
    _require(provider)
    return provider, parts


def _read_images(paths: list[str] | None) -> list[tuple[str, bytes]]:
    images = []
    for path in paths or []:
        p = Path(path)
        if not p.is_file():
            raise CommandError(f"no image file at {path}")
        if p.stat().st_size > MAX_IMAGE_BYTES:
            raise CommandError(f"{path} is over {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
        images.append((p.name, p.read_bytes()))
    return images


def _poll_interval() -> float:
    try:
        return max(0.05, float(setting("generation_poll_seconds", "5")))
    except ValueError:
        return 5.0


def _report(handle: str, state: TaskState) -> dict[str, Any]:
    provider = handle.partition(":")[0]
    return {"handle": handle, "provider": provider, **state.as_dict()}


def _watch(handle: str, wait_seconds: float) -> Generator[Any, Any, TaskState]:
    """Poll off the main thread until the task ends or `wait_seconds` pass, reporting progress each time."""
    label = LABELS[handle.partition(":")[0]]
    deadline = time.monotonic() + wait_seconds
    while True:
        state: TaskState = yield Background(from_service(lambda: _status(handle)))
        guess = {QUEUED: 0.05, RUNNING: 0.5}.get(state.state, 1.0)
        yield Progress(state.progress if state.progress is not None else guess, f"{label}: {state.state}")
        left = deadline - time.monotonic()
        if state.state in (DONE, FAILED) or left <= 0:
            return state
        pause = min(_poll_interval(), left)
        yield Background(lambda pause=pause: time.sleep(pause))


@command("generate_3d")
def generate_3d(provider: str, prompt: str | None = None, image_paths: list[str] | None = None,
                wait_seconds: float = 0):
    _require(provider)
    images = _read_images(image_paths)
    if not (prompt or images):
        raise CommandError("pass a prompt, or image_paths: image files on the Blender machine")
    yield Progress(0.0, f"starting a {LABELS[provider]} generation")
    handle = yield Background(from_service(lambda: _start(provider, prompt, images)))
    state = yield from _watch(handle, wait_seconds)
    return {**_report(handle, state),
            "next": "generation_status(handle) until done, then import_generated_model(handle, name)"}


@command("generation_status")
def generation_status(handle: str, wait_seconds: float = 0):
    _handle_provider(handle)
    state = yield from _watch(handle, wait_seconds)
    return _report(handle, state)


def _fetch_model(provider: str, parts: list[str], state: TaskState) -> Path:
    folder = download_folder(provider, "_".join(parts[:-1] if provider == "rodin" else parts))
    if provider == "rodin":
        return rodin_api().download_result(parts[0], folder)
    if not state.model_url:
        raise ServiceError(f"the {LABELS[provider]} task has no model file")
    fmt = safe_name(state.model_format or "glb").lower()
    path = download(requests.Session(), state.model_url, folder / f"model.{fmt}")
    if not zipfile.is_zipfile(path):
        return path
    # Some results (Hunyuan3D's OBJ) are an archive of the model, its materials and textures.
    members = extract_zip(path, folder / "model")
    models = sorted(p for p in members if p.suffix.lower() in (".glb", ".gltf", ".obj", ".fbx"))
    if not models:
        raise ServiceError(f"the {LABELS[provider]} archive holds no model file")
    return models[0]


@command("import_generated_model")
def import_generated_model(handle: str, name: str, target_size: float | None = None):
    provider, parts = _handle_provider(handle)
    state = yield Background(from_service(lambda: _status(handle)))
    if state.state != DONE:
        raise CommandError(f"the generation is {state.state}, not done"
                           + (f": {state.message}" if state.message else "") + "; poll generation_status(handle)")
    yield Progress(0.2, "downloading the generated model")
    path = yield Background(from_service(lambda: _fetch_model(provider, parts, state)))
    yield Progress(0.9, "importing")
    names = import_model_file(path, path.suffix.lstrip(".").lower())
    if not names:
        raise CommandError("the downloaded model had no objects")
    import bpy

    roots = [n for n in names if bpy.data.objects[n].parent is None] or names
    root = bpy.data.objects[roots[0]]
    root.name = name
    final = sorted(o.name for o in [root, *(bpy.data.objects[n] for n in names if n != roots[0])])
    factor = fit_to_size(final, target_size) if target_size else 1.0
    return {"handle": handle, "provider": provider, "imported_objects": final, "object": root.name,
            "scale_factor": round(factor, 6), "file": str(path)}
