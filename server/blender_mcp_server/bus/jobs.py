"""Jobs: who asked for what, kept in the store so a server restart forgets no pending job.

The originator of a job is recorded when a payload carrying a `job_id` is sent;
`blender_job_update` routes back to it (spec: routing-modes, job-update
routing). Style A dispatch tools wait in-process on a queue of updates.

Job ids are per user, like client uuids: two users may use the same id, and
neither can learn that the other did.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..storage.protocols import JobStore
from ..storage.records import JobRow

JobKey = tuple[str, str]  # (user_id, job_id)


class Jobs:
    def __init__(self, store: JobStore):
        self._store = store
        self._waiters: dict[JobKey, asyncio.Queue[dict[str, Any]]] = {}

    async def record(self, user_id: str, job_id: str, *, originator: str | None, target: str | None,
               command: str | None) -> None:
        now = time.time()
        await self._store.put_job(JobRow(job_id, user_id, originator, target, command, "queued", now, now))

    async def forget(self, user_id: str, job_id: str) -> None:
        """The job was never sent (its call was refused after it was recorded)."""
        await self._store.delete_job(user_id, job_id)

    async def get(self, user_id: str, job_id: str) -> JobRow | None:
        return await self._store.get_job(user_id, job_id)

    async def set_status(self, user_id: str, job_id: str, status: str) -> JobRow | None:
        """Set the job's status; the job as it is now (None: the store never knew it)."""
        return await self._store.set_job_status(user_id, job_id, status)

    # -- in-process waiters (Style A) -----------------------------------------------------------------
    def wait_for(self, user_id: str, job_id: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._waiters[(user_id, job_id)] = queue
        return queue

    def stop_waiting(self, user_id: str, job_id: str) -> None:
        self._waiters.pop((user_id, job_id), None)

    def is_waiting(self, user_id: str, job_id: str) -> bool:
        return (user_id, job_id) in self._waiters

    def offer(self, user_id: str, job_id: str, update: dict[str, Any]) -> bool:
        queue = self._waiters.get((user_id, job_id))
        if queue is None:
            return False
        queue.put_nowait(update)
        return True

    def waiting(self) -> list[JobKey]:
        return list(self._waiters)
