"""The two drivers of `Runtime.drain()`: a GUI timer, and a blocking headless loop."""

from __future__ import annotations

import threading
from collections.abc import Callable

from . import Runtime

TIMER_IDLE_INTERVAL = 0.05  # seconds between ticks when nothing is queued (20 Hz: cheap, and jobs start promptly)
TIMER_BUDGET = 0.008  # seconds of work per tick: half a 60 fps frame, so the UI stays responsive


def make_timer(get_runtime: Callable[[], Runtime | None],
               after: Callable[[Runtime], None] | None = None) -> Callable[[], float | None]:
    """A `bpy.app.timers` function; returns None (unregister) once there is no runtime.

    `after` runs on the main thread after each tick (the panel uses it to redraw when something changed).
    """

    def tick() -> float | None:
        runtime = get_runtime()
        if runtime is None:
            return None
        runtime.drain(TIMER_BUDGET)
        if after is not None:
            after(runtime)
        return 0.0 if len(runtime.pump) else TIMER_IDLE_INTERVAL

    return tick


def run_headless(runtime: Runtime, stop: threading.Event, *, budget: float = 0.05) -> None:
    """Block on the main thread, draining as records arrive (timers never fire without a window)."""
    while not stop.is_set():
        if not runtime.busy:
            runtime.pump.wait(0.25)
        runtime.drain(budget)
