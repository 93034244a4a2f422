"""The GUI drainer's timer, without a window: when it looks again, and what an idle tick does."""

from __future__ import annotations

from blender_mcp_addon.client.pump import MessagePump
from blender_mcp_addon.runtime import drivers


class FakeRuntime:
    """What the timer touches: the heap, `busy`, `drain`."""

    def __init__(self) -> None:
        self.pump = MessagePump()
        self.drains = 0

    @property
    def busy(self) -> bool:
        return bool(len(self.pump))

    def drain(self, budget: float) -> int:
        self.drains += 1
        steps = 0
        while self.pump.pop() is not None:
            steps += 1
        return steps


def test_the_interval_stays_short_right_after_a_job_then_grows_to_the_idle_pace():
    after = [drivers.interval_after(s) for s in (0.0, 1.0, drivers.ACTIVE_SECONDS + 0.01, 10.0, 30.0, 60.0,
                                                  drivers.IDLE_AFTER_SECONDS, 3600.0)]
    assert after[0] == after[1] == drivers.TIMER_ACTIVE_INTERVAL
    assert after == sorted(after)
    assert after[-2] == after[-1] == drivers.TIMER_IDLE_INTERVAL
    assert drivers.interval_after(10.0) < 0.015  # a call 10 s after the last one waits a few ms more, not 100


def test_an_idle_tick_does_not_drain_and_a_record_is_run_at_the_next_tick():
    runtime = FakeRuntime()
    seen = []
    tick = drivers.make_timer(lambda: runtime, after=lambda r: seen.append(len(r.pump)))
    assert tick() == drivers.TIMER_IDLE_INTERVAL  # never used yet: the idle pace
    assert runtime.drains == 0 and seen == [0]  # nothing queued: drain is not even called
    runtime.pump.push(6, {"message_id": "m1", "payload": {}})
    assert tick() == drivers.TIMER_ACTIVE_INTERVAL  # it ran: the next call of the turn is looked for soon
    assert runtime.drains == 1 and len(runtime.pump) == 0
    assert tick() == drivers.TIMER_ACTIVE_INTERVAL and runtime.drains == 1
    assert drivers.make_timer(lambda: None)() is None  # no runtime: the timer unregisters itself


def test_the_headless_wait_wakes_at_a_push_from_another_thread_and_at_wake():
    import threading
    import time

    pump = MessagePump()
    assert not pump.wait(0.01)  # nothing queued: it times out
    timer = threading.Timer(0.05, lambda: pump.push(6, {"message_id": "w1"}))
    timer.start()
    started = time.monotonic()
    assert pump.wait(5.0) and time.monotonic() - started < 2.0
    assert pump.pop() is not None
    threading.Timer(0.05, pump.wake).start()  # a stop request: wakes it with nothing queued
    started = time.monotonic()
    assert not pump.wait(5.0) and time.monotonic() - started < 2.0
    assert pump.push(6, {"message_id": "w1"}) is False  # a repeat of a message_id is dropped
    pump.close()
