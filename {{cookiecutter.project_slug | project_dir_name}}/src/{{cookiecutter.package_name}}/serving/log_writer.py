"""The service's prediction log writer: a bounded queue and the thread that empties it.

Requests never wait for the log: the service queues its rows and a background thread writes them
in batches (every ``flush_rows`` rows or ``flush_seconds``) as files of :mod:`..prediction_log`.
Work that produces rows off the request path (shadow scoring with the challenger) is queued as a
job and run in the same thread. Nothing here may disturb a request, and nothing is lost without
being counted: a full queue or a failed write calls ``on_drop`` with the rows lost, a failed job
calls ``on_job_error``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import prediction_log

if TYPE_CHECKING:
    from pathlib import Path

logger = logging.getLogger(__name__)

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class LogJob:
    """Rows to compute in the writer's thread (e.g. the challenger scoring in the shadow)."""

    compute: Callable[[], Rows]
    size: int  # records it covers: what is lost if the queue is full
    description: str  # for the log line when it fails


class PredictionLogWriter:
    """Queue prediction log rows without blocking; write them from one background thread."""

    def __init__(
        self,
        folder: Path,
        *,
        source: str = "api",
        flush_rows: int = 2000,
        flush_seconds: float = 1.0,
        max_queue: int = 50_000,
        on_drop: Callable[[int], None] | None = None,
        on_job_error: Callable[[], None] | None = None,
    ) -> None:
        self.folder = folder
        self.source = source
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._queue: queue.Queue[Rows | LogJob | None] = queue.Queue(max_queue)
        self._on_drop = on_drop
        self._on_job_error = on_job_error
        self._thread: threading.Thread | None = None
        self.written_rows = 0
        self.dropped_rows = 0
        self.failed_writes = 0
        self.failed_jobs = 0

    def start(self) -> None:
        """Start the writer thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued and stop the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def submit(self, item: Rows | LogJob) -> None:
        """Queue rows (or a job) without blocking; a full queue drops them and counts."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._dropped(item.size if isinstance(item, LogJob) else len(item))

    def _run(self) -> None:
        buffer: Rows = []
        deadline = time.monotonic() + self.flush_seconds
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                item = []
            if item is None:
                self._flush(buffer)
                return
            buffer.extend(self._rows_of(item) if isinstance(item, LogJob) else item)
            if len(buffer) >= self.flush_rows or time.monotonic() >= deadline:
                self._flush(buffer)
                buffer = []
                deadline = time.monotonic() + self.flush_seconds

    def _rows_of(self, job: LogJob) -> Rows:
        try:
            return job.compute()
        # A failing job (the challenger) must never disturb the service: count, log, go on.
        except Exception:
            self.failed_jobs += 1
            if self._on_job_error is not None:
                self._on_job_error()
            logger.exception("%s failed", job.description)
            return []

    def _flush(self, rows: Rows) -> None:
        if not rows:
            return
        try:
            prediction_log.write_log_rows(rows, self.folder, self.source)
        # The log must not take the service down (a full disk, a permission change): count it.
        except Exception:
            self.failed_writes += 1
            self._dropped(len(rows))
            logger.exception("Could not write %d prediction log rows", len(rows))
            return
        self.written_rows += len(rows)

    def _dropped(self, rows: int) -> None:
        """Count rows that will never reach the log (a full queue or a failed write)."""
        self.dropped_rows += rows
        if self._on_drop is not None:
            self._on_drop(rows)
