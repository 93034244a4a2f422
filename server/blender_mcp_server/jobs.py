"""Jobs: who asked for what, kept in the store so a server restart forgets no pending job.

The originator of a job is recorded when a payload carrying a `job_id` is sent;
`blender_job_update` routes back to it (spec: routing-modes, job-update
routing). Style A dispatch tools wait in-process on a queue of updates.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .store import JobRow, Store


class JobError(Exception):
    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


class Jobs:
    def __init__(self, store: Store):
        self._store = store
        self._waiters: dict[str, asyncio.Queue[dict[str, Any]]] = {}

    def record(self, user_id: str, job_id: str, *, originator: str | None, target: str | None,
               command: str | None) -> None:
        existing = self._store.get_job(job_id)
        if existing is not None and existing.user_id != user_id:
            # Job ids are global keys; never let one user overwrite or learn about another's job.
            raise JobError("job_id_taken", f"job_id {job_id!r} is already in use; pick another")
        now = time.time()
        self._store.put_job(JobRow(job_id, user_id, originator, target, command, "queued", now, now))

    def get(self, user_id: str, job_id: str) -> JobRow | None:
        """The job, if it is this user's; another user's job looks exactly like an unknown one."""
        row = self._store.get_job(job_id)
        return row if row is not None and row.user_id == user_id else None

    def row(self, job_id: str) -> JobRow | None:
        """The job whoever owns it: for the server's own bookkeeping, never for answering a caller."""
        return self._store.get_job(job_id)

    def set_status(self, job_id: str, status: str) -> None:
        self._store.set_job_status(job_id, status)

    # -- in-process waiters (Style A) -----------------------------------------------------------------
    def wait_for(self, job_id: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._waiters[job_id] = queue
        return queue

    def stop_waiting(self, job_id: str) -> None:
        self._waiters.pop(job_id, None)

    def offer(self, job_id: str, update: dict[str, Any]) -> bool:
        queue = self._waiters.get(job_id)
        if queue is None:
            return False
        queue.put_nowait(update)
        return True

    def waiting(self) -> list[str]:
        return list(self._waiters)
