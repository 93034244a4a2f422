"""Command handlers: one registry of named commands, each run on Blender's main thread.

A handler takes its params as keyword arguments and returns something
JSON-able. A handler that has slow, bpy-free work (a download) can be a
generator: it yields `Background(fn)` and receives fn's result back, with
fn run on a worker thread, so the main thread only does the bpy part.
`Progress(fraction, message)` yields report progress to the caller.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Background:
    """Yield from a generator handler: run `fn()` off the main thread, resume with its result."""

    fn: Callable[[], Any]
    message: str = ""


@dataclass
class Reply:
    """A handler result with extras that ride in the update's `details` (stderr, the last value ...)."""

    result: Any
    details: dict[str, Any] | None = None


@dataclass
class Progress:
    fraction: float
    message: str = ""


class CommandError(Exception):
    """A handler's clear, expected failure (bad params, missing object): no traceback for the caller."""


@dataclass
class Command:
    name: str
    fn: Callable[..., Any]
    needs_code_policy: bool = False
    integration: str | None = None  # preference toggle that must be on (polyhaven, rodin, sketchfab)

    @property
    def is_generator(self) -> bool:
        return inspect.isgeneratorfunction(self.fn)


COMMANDS: dict[str, Command] = {}


def command(name: str, *, needs_code_policy: bool = False, integration: str | None = None):
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        COMMANDS[name] = Command(name, fn, needs_code_policy, integration)
        return fn
    return wrap


def load_all() -> dict[str, Command]:
    """Import the handler modules (they need bpy) so their commands register."""
    from . import (  # noqa: F401
        api,
        assets,
        code,
        files,
        generators,
        history,
        inspection,
        look,
        polyhaven,
        render,
        rodin,
        scene,
        sketchfab,
    )

    return COMMANDS
