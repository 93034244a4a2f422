"""Hyper3D Rodin commands: status, generate from text or images, poll, import the result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..integrations.rodin import Rodin
from ..integrations.settings import setting
from . import Background, CommandError, Progress, command
from .importing import import_model_file
from .services import download_folder, from_service, integration_on

DEFAULT_API = "https://hyperhuman.deemos.com/api"


def _api() -> Rodin:
    return Rodin(setting("rodin_api_url", DEFAULT_API), setting("rodin_api_key"))


@command("get_hyper3d_status")
def get_hyper3d_status() -> dict[str, Any]:
    enabled = integration_on("rodin")
    has_key = bool(setting("rodin_api_key"))
    message = ("Hyper3D Rodin is disabled in the add-on preferences" if not enabled else
               "Hyper3D Rodin is enabled" if has_key else "Hyper3D Rodin is enabled but has no API key")
    return {"enabled": enabled, "has_api_key": has_key, "api_url": setting("rodin_api_url", DEFAULT_API),
            "message": message}


@command("generate_hyper3d_model_via_text", integration="rodin")
def generate_hyper3d_model_via_text(text_prompt: str, bbox_condition: list[float] | None = None):
    task = yield Background(from_service(lambda: _api().generate(prompt=text_prompt, bbox_condition=bbox_condition)))
    return {**task, "next": "poll_rodin_job_status(subscription_key) until done, then import_generated_asset"}


@command("generate_hyper3d_model_via_images", integration="rodin")
def generate_hyper3d_model_via_images(input_image_paths: list[str] | None = None,
                                      input_image_urls: list[str] | None = None,
                                      bbox_condition: list[float] | None = None):
    if input_image_urls:
        raise CommandError("pass input_image_paths: files on the Blender machine (URLs are not fetched)")
    if not input_image_paths:
        raise CommandError("pass input_image_paths: one or more image files")
    images = []
    for path in input_image_paths:
        p = Path(path)
        if not p.is_file():
            raise CommandError(f"no image file at {path}")
        images.append((p.name, p.read_bytes()))
    task = yield Background(from_service(lambda: _api().generate(images=images, bbox_condition=bbox_condition)))
    return {**task, "next": "poll_rodin_job_status(subscription_key) until done, then import_generated_asset"}


@command("poll_rodin_job_status", integration="rodin")
def poll_rodin_job_status(subscription_key: str):
    return (yield Background(from_service(lambda: _api().status(subscription_key))))


@command("import_generated_asset")
def import_generated_asset(task_uuid: str, name: str):
    if ":" in task_uuid:  # a generate_3d handle ("tripo:<id>"), which names its provider and checks it is on
        from .generators import import_generated_model

        return (yield from import_generated_model(task_uuid, name))
    if not integration_on("rodin"):
        raise CommandError("Hyper3D Rodin is disabled in the add-on preferences; enable it there to use "
                           "import_generated_asset")
    folder = download_folder("rodin", task_uuid)
    yield Progress(0.1, "downloading the generated model")
    path = yield Background(from_service(lambda: _api().download_result(task_uuid, folder)))
    names = import_model_file(path, path.suffix.lstrip(".").lower())
    if not names:
        raise CommandError("the downloaded model had no objects")
    import bpy

    root = bpy.data.objects[names[0]]
    root.name = name
    return {"task_uuid": task_uuid, "imported_objects": sorted([root.name, *names[1:]]), "file": str(path)}
