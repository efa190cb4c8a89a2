"""The dashboard's heavy work (sampling checkpoints, re-simulating physics scenes), one job at a time.

Jobs run in ONE background thread, first in first out, so that a CPU-only machine is never asked
to sample two checkpoints at once. Every job writes its result under the dashboard's cache
directory and is named by a key that hashes everything its output depends on: asking again for
the same work is answered from the cache, and asking while it is queued or running joins the
existing job. Failures are kept (with a message free of absolute paths) until asked again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from skyloom.dashboards.guard import scrub_paths

log = logging.getLogger(__name__)

MAX_QUEUED = 64  # pending jobs; more are refused (QueueFull) instead of piling up for hours
MAX_KEPT = 1000  # finished jobs remembered (status answers); older ones are forgotten (their files stay)


class QueueFull(RuntimeError):
    """Too many jobs are waiting."""


@dataclass
class Job:
    """One unit of work and where it stands."""

    key: str
    kind: str  # "sample" | "physics"
    label: str
    fn: Callable[[], None] = field(repr=False)
    status: str = "queued"  # queued | running | done | error
    error: str | None = None
    started: float | None = None
    finished: float | None = None

    def to_dict(self, position: int | None = None) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "label": self.label, "status": self.status, "error": self.error,
                "position": position, "seconds": None if self.started is None else
                round((self.finished or time.time()) - self.started, 2)}


class JobQueue:
    """FIFO of :class:`Job`, worked by one daemon thread started on the first submit."""

    def __init__(self, max_queued: int = MAX_QUEUED) -> None:
        self.max_queued = max_queued
        self._cond = threading.Condition()
        self._jobs: dict[str, Job] = {}
        self._queue: deque[str] = deque()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, key: str, kind: str, label: str, fn: Callable[[], None],
               is_done: Callable[[], bool] | None = None) -> Job:
        """The job named ``key``: an existing queued/running/done one, a cache hit, or a new queued one.

        Args:
            fn: does the work (writes its files); raising marks the job ``error``.
            is_done: True when the output already exists on disk (then nothing is queued).

        Raises:
            QueueFull: :attr:`max_queued` jobs are already waiting.
        """
        with self._cond:
            job = self._jobs.get(key)
            if job is not None and job.status in ("queued", "running"):
                return job
            if is_done is not None and is_done():
                job = self._jobs[key] = Job(key, kind, label, fn, status="done", finished=time.time())
                return job
            if len(self._queue) >= self.max_queued:
                raise QueueFull(f"{len(self._queue)} jobs are already waiting; try again when some have finished")
            job = self._jobs[key] = Job(key, kind, label, fn)
            self._queue.append(key)
            self._forget_old()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="skyloom-dashboard-jobs", daemon=True)
                self._thread.start()
            self._cond.notify_all()
            return job

    def get(self, key: str) -> Job | None:
        with self._cond:
            return self._jobs.get(key)

    def status(self, key: str) -> dict[str, Any] | None:
        """``Job.to_dict`` with its place in the queue (0 = next), or None for an unknown key."""
        with self._cond:
            job = self._jobs.get(key)
            if job is None:
                return None
            pos = list(self._queue).index(key) if job.status == "queued" and key in self._queue else None
            return job.to_dict(pos)

    def wait(self, keys: list[str], timeout: float = 60.0) -> bool:
        """Block until every job of ``keys`` is done or failed (tests, scripts); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while any(k in self._jobs and self._jobs[k].status in ("queued", "running") for k in keys):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        """Stop after the running job; queued jobs are dropped."""
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()

    def _forget_old(self) -> None:
        finished = [k for k, j in self._jobs.items() if j.status in ("done", "error")]
        for k in finished[: max(0, len(finished) - MAX_KEPT)]:
            del self._jobs[k]

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._jobs[self._queue.popleft()]
                job.status, job.started = "running", time.time()
                self._cond.notify_all()
            try:
                job.fn()
                status, error = "done", None
            except Exception as e:  # noqa: BLE001 - a job's failure is its result (shown in the page); the worker goes on
                log.warning("dashboard job %s (%s) failed: %s", job.key, job.label, e, exc_info=True)
                status, error = "error", scrub_paths(f"{type(e).__name__}: {e}")
            with self._cond:
                job.status, job.error, job.finished = status, error, time.time()
                self._cond.notify_all()
