"""The message pump: a thread-safe priority heap between the client thread and Blender's main thread.

Keyed on (priority, arrival order): emergency (0) leaves before info (6), and
equal priorities leave oldest first (spec: priority-levels). Repeats of a
`message_id` are dropped, since the bus delivers at least once.
"""

from __future__ import annotations

import heapq
import itertools
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
    def __init__(self, remember: int = 4096):
        self._heap: list[PumpItem] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember

    def push(self, priority: int, record: dict[str, Any], level: str = "info") -> bool:
        """Queue a record; False if its message_id was seen before."""
        message_id = record.get("message_id")
        with self._cond:
            if message_id:
                if message_id in self._seen:
                    return False
                self._seen[message_id] = None
                if len(self._seen) > self._remember:
                    self._seen.popitem(last=False)
            heapq.heappush(self._heap, PumpItem(priority, next(self._seq), record, level))
            self._cond.notify()
        return True

    def pop(self) -> PumpItem | None:
        with self._cond:
            return heapq.heappop(self._heap) if self._heap else None

    def wait(self, timeout: float | None) -> bool:
        """Block until something is queued (the headless driver: no poll delay when a job arrives)."""
        with self._cond:
            if self._heap:
                return True
            self._cond.wait(timeout)
            return bool(self._heap)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def remove_job(self, job_id: str) -> PumpItem | None:
        """Take a queued job out (cancel); None if it is not queued."""
        with self._cond:
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
