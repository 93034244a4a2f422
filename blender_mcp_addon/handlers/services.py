"""What the handlers of the external services (Poly Haven, Rodin, Sketchfab) share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..integrations.http import ServiceError
from ..integrations.safety import UnsafePath, safe_name
from . import CommandError


def from_service(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Wrap a service call for `Background`: its known failures become clear command errors."""
    def call() -> Any:
        try:
            return fn()
        except (ServiceError, UnsafePath) as exc:
            raise CommandError(str(exc)) from None
    return call


def integration_on(name: str) -> bool:
    """Whether this Blender has the integration switched on (preferences, or the worker's --integrations)."""
    from ..session import get_runtime

    runtime = get_runtime()
    return runtime.integration_enabled(name) if runtime else False


def download_folder(service: str, key: str) -> Path:
    """Where one asset of a service is downloaded: the add-on's user folder, one folder per asset."""
    from ..session import user_folder

    return user_folder() / "downloads" / service / safe_name(key)
