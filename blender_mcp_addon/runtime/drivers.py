"""The two drivers of `Runtime.drain()`: a GUI timer, and a blocking headless loop."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from . import Runtime

TIMER_BUDGET = 0.008  # seconds of work per tick: half a 60 fps frame, so the UI stays responsive
# Nothing on the client thread may wake Blender's main thread (`bpy.app.timers.register` is not safe there),
# so the timer polls. Right after a job it ticks at about the pace of Blender's own event loop (which sleeps
# ~5 ms between looks at its queue when idle), so the next call of an LLM's turn waits a few ms for the main
# thread, not a whole idle interval. From ACTIVE_SECONDS after the last job the interval grows evenly, to
# TIMER_IDLE_INTERVAL at IDLE_AFTER_SECONDS: a call 10 s after the last one waits ~5 ms more on average, and an
# idle window ticks 10 times a second. A tick with nothing queued only looks at the heap (a few µs), so the
# idle cost is Blender calling the timer at all: measured with bench/bench_gui.py beside a Blender without
# the add-on.
TIMER_ACTIVE_INTERVAL = 0.004
TIMER_IDLE_INTERVAL = 0.1
ACTIVE_SECONDS = 2.0
IDLE_AFTER_SECONDS = 120.0


def interval_after(idle_for: float) -> float:
    """The timer's next interval, `idle_for` seconds after the last job ran."""
    if idle_for < ACTIVE_SECONDS:
        return TIMER_ACTIVE_INTERVAL
    ramp = min(1.0, (idle_for - ACTIVE_SECONDS) / (IDLE_AFTER_SECONDS - ACTIVE_SECONDS))
    return TIMER_ACTIVE_INTERVAL + ramp * (TIMER_IDLE_INTERVAL - TIMER_ACTIVE_INTERVAL)


class TickStats:
    """How long the GUI timer's ticks take: the UI stays responsive while the worst tick is under a frame.

    Both clocks are kept. Wall time is what the artist feels, but on a loaded machine it includes time the OS
    gave to other processes. The main thread's CPU time is what the tick itself cost, so it shows whether the
    drainer kept to its budget whatever else ran.
    """

    def __init__(self) -> None:
        self.recent: deque[float] = deque(maxlen=5000)
        self.worst = 0.0
        self.worst_cpu = 0.0
        self.ticks = 0

    def add(self, seconds: float, cpu_seconds: float) -> None:
        self.recent.append(seconds)
        self.ticks += 1
        self.worst = max(self.worst, seconds)
        self.worst_cpu = max(self.worst_cpu, cpu_seconds)

    def reset(self) -> None:
        self.recent.clear()
        self.worst = 0.0
        self.worst_cpu = 0.0
        self.ticks = 0


TICKS = TickStats()


def make_timer(get_runtime: Callable[[], Runtime | None],
               after: Callable[[Runtime], None] | None = None) -> Callable[[], float | None]:
    """A `bpy.app.timers` function; returns None (unregister) once there is no runtime.

    `after` runs on the main thread after each tick (the panel uses it to redraw when something changed;
    it must be cheap, it runs on idle ticks too). The next tick comes at once while records wait, soon
    while a job is suspended or one ran lately, and ever later as the bus stays quiet (interval_after).
    """
    last_active = [float("-inf")]

    def tick() -> float | None:
        runtime = get_runtime()
        if runtime is None:
            return None
        now = time.perf_counter()
        if runtime.busy:  # something queued or suspended; otherwise drain would find nothing to do
            started_cpu = time.thread_time()
            if runtime.drain(TIMER_BUDGET):  # idle ticks say nothing about responsiveness under load
                TICKS.add(time.perf_counter() - now, time.thread_time() - started_cpu)
                last_active[0] = now
        if after is not None:
            after(runtime)
        if len(runtime.pump):
            return 0.0
        if runtime.busy:
            return TIMER_ACTIVE_INTERVAL
        return interval_after(now - last_active[0])

    return tick


def run_headless(runtime: Runtime, stop: threading.Event, *, budget: float = 0.05) -> None:
    """Block on the main thread, draining as records arrive (timers never fire without a window).

    Returns when `stop` is set, or when the client has given up for good (state `error`: refused
    credentials, a uuid owned elsewhere, a server of another protocol), which retrying cannot mend."""
    while not stop.is_set() and runtime.state.status != "error":
        if not runtime.busy:
            runtime.pump.wait(0.25)
        runtime.drain(budget)
