"""The message pump: a thread-safe priority heap between the client thread and Blender's main thread.

Keyed on (priority, arrival order): emergency (0) leaves before info (6), and
equal priorities leave oldest first (spec: priority-levels). Repeats of a
`message_id` are dropped, since the bus delivers at least once.
"""

from __future__ import annotations

import heapq
import itertools
import select
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any


@dataclass(order=True)
class PumpItem:
    priority: int
    seq: int
    record: dict[str, Any] = field(compare=False)
    level: str = field(compare=False, default="info")

    @property
    def payload(self) -> dict[str, Any]:
        return self.record.get("payload") or {}

    @property
    def job_id(self) -> str | None:
        return self.record.get("job_id") or self.payload.get("job_id")


class MessagePump:
    """The heap, and a way for the headless driver to sleep until something is queued.

    The sleeper waits in `select` on a socket pair and a push wakes it by sending a byte. A
    `threading.Condition` did the same, but its `notify` wakes the other thread from inside a lock
    release, holding the GIL, and the other vCPU's wake-up cost the client thread's GIL time there: a
    fifth of the headless worker's Python time at 16 calls in flight (py-spy --gil). `send` and `select`
    leave the GIL while in the kernel. The lock is reentrant: the worker's signal handler wakes the pump,
    and may run on the main thread while it holds the lock.
    """

    def __init__(self, remember: int = 4096):
        self._heap: list[PumpItem] = []
        self._lock = threading.RLock()
        self._seq = itertools.count()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self._sleeping = False  # a thread is in wait() and has not been woken yet
        self._bell: tuple[socket.socket, socket.socket] | None = None  # made by the first wait()

    def push(self, priority: int, record: dict[str, Any], level: str = "info") -> bool:
        """Queue a record; False if its message_id was seen before."""
        message_id = record.get("message_id")
        with self._lock:
            if message_id:
                if message_id in self._seen:
                    return False
                self._seen[message_id] = None
                if len(self._seen) > self._remember:
                    self._seen.popitem(last=False)
            heapq.heappush(self._heap, PumpItem(priority, next(self._seq), record, level))
        self.wake()
        return True

    def pop(self) -> PumpItem | None:
        with self._lock:
            return heapq.heappop(self._heap) if self._heap else None

    def wait(self, timeout: float | None) -> bool:
        """Block until something is queued or `wake()` (the headless driver: no poll delay when a job
        arrives); True if something is queued."""
        with self._lock:
            if self._heap:
                return True
            if self._bell is None:
                self._bell = socket.socketpair()
                for end in self._bell:
                    end.setblocking(False)
            self._sleeping = True
            bell = self._bell[0]
        try:
            select.select([bell], [], [], timeout)
            try:
                bell.recv(4096)  # the rings so far; at most one per sleep (push rings only a sleeper)
            except (BlockingIOError, InterruptedError):
                pass
        finally:
            with self._lock:
                self._sleeping = False
        return bool(self._heap)

    def wake(self) -> None:
        """Wake the thread in wait(), if there is one (any thread, or a signal handler)."""
        with self._lock:
            if not self._sleeping or self._bell is None:
                return
            self._sleeping = False  # one ring per sleep
            ring = self._bell[1]
        try:
            ring.send(b"\0")
        except (BlockingIOError, OSError):  # a full buffer still wakes it; a closed pump has no sleeper
            pass

    def close(self) -> None:
        """Let go of the socket pair (a stopped worker); the pump still queues, wait() makes a new pair."""
        with self._lock:
            bell, self._bell = self._bell, None
        for end in bell or ():
            end.close()

    def remove_job(self, job_id: str) -> PumpItem | None:
        """Take a queued job out (cancel); None if it is not queued."""
        with self._lock:
            for i, item in enumerate(self._heap):
                if item.job_id == job_id:
                    self._heap.pop(i)
                    heapq.heapify(self._heap)
                    return item
        return None

    def __len__(self) -> int:
        # No lock: the GUI timer asks this every few ms while idle, and one read of a list's length is atomic
        # (heappush and heappop change the list within one call, under the GIL or the list's own lock).
        return len(self._heap)
