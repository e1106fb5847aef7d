"""The prediction log: every prediction the service or batch scoring makes, as Parquet files.

Requests never wait for it: the service puts entries on a bounded queue and a background thread
writes them in batches (every ``flush_rows`` entries or ``flush_seconds``). A full queue drops
entries and counts them (``prediction_log_dropped_total``) rather than slowing requests down.

Layout: ``<PREDICTION_LOG_DIR>/date=YYYY-MM-DD/<source>-<time>-<pid>-<n>.parquet``. Files appear
whole (written under a temporary name, then renamed) and are never rewritten, so several worker
processes and the batch step can write at once, and readers never see a partial file. Read it
with :func:`read_prediction_log` or any Parquet reader
(DuckDB: ``read_parquet('data/predictions/log/**/*.parquet', union_by_name=true)``).

Columns (one row per record): ``request_id``, ``timestamp`` (UTC), ``source`` (``api`` or
``batch``), ``model_name``, ``model_version``, ``model_alias``, ``shadow`` (true: logged, not
returned), ``entity_id``, every feature and sensitive attribute of the model's contract,
``prediction``, ``score`` (probability of the positive class) and ``latency_ms``.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from ..contract import FeatureContract
    from .loader import LoadedModel
    from .predictor import Record

logger = logging.getLogger(__name__)

LEADING_COLUMNS = (
    "request_id",
    "timestamp",
    "source",
    "model_name",
    "model_version",
    "model_alias",
    "shadow",
    "entity_id",
)
TRAILING_COLUMNS = ("prediction", "score", "latency_ms")

_sequence = itertools.count()


@dataclass(frozen=True)
class ShadowJob:
    """Records the champion answered, to be scored by the challenger off the request path."""

    model: LoadedModel
    request_id: str
    records: Sequence[Record]
    source: str


def log_rows(
    model: LoadedModel,
    records: Sequence[Record],
    labels: Sequence[str],
    scores: Sequence[float],
    *,
    request_id: str,
    source: str,
    latency_ms: float,
    shadow: bool = False,
    timestamp: datetime | None = None,
) -> list[dict[str, Any]]:
    """One log row per record (what :meth:`PredictionLog.submit` takes)."""
    when = (timestamp or datetime.now(tz=UTC)).replace(tzinfo=None)
    logged = model.contract.feature_columns + model.contract.sensitive_columns
    numeric = set(model.contract.numeric_features)
    id_column = model.contract.id_column
    rows = []
    for record, label, score in zip(records, labels, scores, strict=True):
        entity = record.get(id_column)
        row: dict[str, Any] = {
            "request_id": request_id,
            "timestamp": when,
            "source": source,
            "model_name": model.name,
            "model_version": model.version,
            "model_alias": model.alias,
            "shadow": shadow,
            "entity_id": None if entity is None else str(entity),
        }
        for name in logged:
            value = record.get(name)
            # Numbers as floats, NaN where missing: every file gets the same column types.
            row[name] = (math.nan if value is None else float(value)) if name in numeric else value
        row["prediction"] = label
        row["score"] = float(score)
        row["latency_ms"] = latency_ms
        rows.append(row)
    return rows


def write_log_file(
    rows: Sequence[dict[str, Any]], folder: Path, source: str, name: str | None = None
) -> Path | None:
    """Write `rows` as one Parquet file under `folder` (partitioned by day); atomic.

    Returns:
        The file written, or None when there was nothing to write.
    """
    import pandas as pd  # noqa: PLC0415

    if not rows:
        return None
    return write_log_frame(pd.DataFrame.from_records(list(rows)), folder, source, name)


def write_log_frame(
    frame: pd.DataFrame, folder: Path, source: str, name: str | None = None
) -> Path:
    """Write log rows held in a DataFrame as one Parquet file; atomic.

    Args:
        frame: Rows with the log's columns (see the module docstring).
        folder: The log's root folder.
        source: ``api`` or ``batch``; starts the file name.
        name: The file name; a unique one by default. A fixed name replaces an earlier file
            (batch scoring re-run for the same date).
    """
    import duckdb  # noqa: PLC0415

    frame = _typed_frame(frame)
    day = frame["timestamp"].iloc[0].date().isoformat()
    target_dir = folder / f"date={day}"
    target_dir.mkdir(parents=True, exist_ok=True)
    if name is None:
        stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"{source}-{stamp}-{os.getpid()}-{next(_sequence)}.parquet"
    partial = target_dir / f".{name}.partial"
    with duckdb.connect() as connection:
        connection.register("log_rows", frame)
        connection.execute(f"copy log_rows to '{_sql_path(partial)}' (format parquet)")
    final = target_dir / name
    partial.replace(final)
    return final


def read_prediction_log(folder: Path) -> pd.DataFrame:
    """Every logged prediction under `folder`, as one DataFrame (empty when there are none)."""
    import duckdb  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    if not any(folder.rglob("*.parquet")):
        return pd.DataFrame(columns=[*LEADING_COLUMNS, *TRAILING_COLUMNS])
    pattern = _sql_path(folder / "**" / "*.parquet")
    with duckdb.connect() as connection:
        frame: pd.DataFrame = connection.sql(
            f"select * exclude (date) from read_parquet('{pattern}', union_by_name=true, "  # noqa: S608 (a path)
            "hive_partitioning=true) order by timestamp"
        ).df()
    return frame


class PredictionLog:
    """A bounded queue and the thread that writes it to Parquet (see the module docstring)."""

    def __init__(
        self,
        folder: Path,
        *,
        source: str = "api",
        flush_rows: int = 2000,
        flush_seconds: float = 1.0,
        max_queue: int = 50_000,
        on_drop: Callable[[int], None] | None = None,
        shadow_scorer: Callable[[ShadowJob], list[dict[str, Any]]] | None = None,
        on_shadow_error: Callable[[], None] | None = None,
    ) -> None:
        self.folder = folder
        self.source = source
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._queue: queue.Queue[list[dict[str, Any]] | ShadowJob | None] = queue.Queue(max_queue)
        self._on_drop = on_drop
        self._shadow_scorer = shadow_scorer
        self._on_shadow_error = on_shadow_error
        self._thread: threading.Thread | None = None
        self.written_rows = 0
        self.dropped_rows = 0
        self.failed_writes = 0
        self.shadow_errors = 0

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

    def submit(self, item: list[dict[str, Any]] | ShadowJob) -> None:
        """Queue rows (or a shadow job) without blocking; a full queue drops them and counts."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._dropped(len(item) if isinstance(item, list) else len(item.records))

    def pending(self) -> int:
        """Items waiting in the queue."""
        return self._queue.qsize()

    def _run(self) -> None:
        buffer: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.flush_seconds
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                item = []
            if item is None:
                self._flush(buffer)
                return
            if isinstance(item, list):
                buffer.extend(item)
            elif self._shadow_scorer is not None:
                buffer.extend(self._score_shadow(item))
            if len(buffer) >= self.flush_rows or time.monotonic() >= deadline:
                self._flush(buffer)
                buffer = []
                deadline = time.monotonic() + self.flush_seconds

    def _score_shadow(self, job: ShadowJob) -> list[dict[str, Any]]:
        assert self._shadow_scorer is not None  # noqa: S101 (checked by the caller)
        try:
            return self._shadow_scorer(job)
        # A failing challenger must never disturb the champion's service: count, log, go on.
        except Exception:
            self.shadow_errors += 1
            if self._on_shadow_error is not None:
                self._on_shadow_error()
            logger.exception("Shadow scoring with v%s failed", job.model.version)
            return []

    def _flush(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        try:
            write_log_file(rows, self.folder, self.source)
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


def contract_columns(contract: FeatureContract) -> list[str]:
    """The log's columns for a model with `contract`, in order."""
    return [
        *LEADING_COLUMNS,
        *contract.feature_columns,
        *contract.sensitive_columns,
        *TRAILING_COLUMNS,
    ]


def _typed_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Give the log's fixed columns stable types (features keep what the records carried)."""
    import pandas as pd  # noqa: PLC0415

    for name in frame.columns:
        if frame[name].dtype == object:  # text, possibly all missing: always a string column
            frame[name] = frame[name].astype("string")
    frame["shadow"] = frame["shadow"].astype("bool")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    frame["prediction"] = frame["prediction"].astype("string")
    frame["score"] = frame["score"].astype("float64")
    frame["latency_ms"] = frame["latency_ms"].astype("float64")
    return frame


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
