"""The prediction log: every prediction the service and batch scoring make, as Parquet files.

Layout: ``<PREDICTION_LOG_DIR>/date=YYYY-MM-DD/api-<time>-<pid>-<n>.parquet`` for the service's
files, never rewritten, and ``batch-<run date>.parquet`` for batch scoring, replaced when that date
is scored again. Files appear whole (written under a temporary name, then renamed), so several
service workers and the batch step can write at once, and readers never see a partial file. The
service writes through a background thread (:mod:`.serving.log_writer`). Read it with
:func:`read_prediction_log`, or any Parquet reader (DuckDB:
``read_parquet('data/predictions/log/**/*.parquet', union_by_name=true)``).

Columns (one row per record): ``request_id``, ``timestamp`` (UTC), ``source`` (``api`` or
``batch``), ``model_name``, ``model_version``, ``model_alias``, ``shadow`` (true: a challenger
scoring in the background, never returned), ``entity_id``, every feature and sensitive attribute
of the model's contract, ``prediction``, ``score`` (probability of the positive class) and
``latency_ms``. A batch run logs all its rows under one request id: the batch's id.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from .contract import LOG_LEADING_COLUMNS, LOG_TRAILING_COLUMNS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    import numpy as np

    from .contract import FeatureContract

logger = logging.getLogger(__name__)

_FILES = "**/*.parquet"

_sequence = itertools.count()


def request_log_rows(
    contract: FeatureContract,
    records: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    scores: Sequence[float],
    *,
    model: tuple[str, str, str],
    request_id: str,
    source: str,
    latency_ms: float,
    shadow: bool = False,
) -> list[dict[str, Any]]:
    """One log row per scored record of a request.

    `labels` and `scores` (positive-class probabilities) are aligned with `records`; `model` is
    ``(name, version, alias)`` of the model that scored, and its `contract` says which columns
    are logged. `shadow` marks a challenger's predictions that were not returned.
    """
    name, version, alias = model
    when = datetime.now(tz=UTC).replace(tzinfo=None)
    logged = contract.feature_columns + contract.sensitive_columns
    numeric = set(contract.numeric_features)
    rows = []
    for record, label, score in zip(records, labels, scores, strict=True):
        entity = record.get(contract.id_column)
        row: dict[str, Any] = {
            "request_id": request_id,
            "timestamp": when,
            "source": source,
            "model_name": name,
            "model_version": version,
            "model_alias": alias,
            "shadow": shadow,
            "entity_id": None if entity is None else str(entity),
        }
        for column in logged:
            value = record.get(column)
            # Numbers as floats, NaN where missing: every file gets the same column types.
            row[column] = (
                (math.nan if value is None else float(value)) if column in numeric else value
            )
        row["prediction"] = label
        row["score"] = float(score)
        row["latency_ms"] = latency_ms
        rows.append(row)
    return rows


def log_batch(
    folder: Path,
    table: pd.DataFrame,
    contract: FeatureContract,
    labels: Sequence[str],
    scores: np.ndarray,
    *,
    model: tuple[str, str],
    batch_id: str,
    scored_at: datetime,
    latency_ms: float,
    file_name: str | None = None,
) -> Path | None:
    """Log a scored table as one batch run: one file, every row under request id `batch_id`.

    Args:
        folder: The log's root folder.
        table: The scored rows (the contract's id, features and sensitive attributes), with
            `labels` and `scores` (positive-class probabilities) aligned to them.
        contract: Which columns are logged.
        labels: Predicted labels.
        scores: Positive-class probabilities.
        model: ``(name, version)`` of the champion that scored.
        batch_id: The run's id, which monitoring reads as the batch.
        scored_at: When the batch was scored (UTC).
        latency_ms: Scoring time per row.
        file_name: A fixed name replaces an earlier file of that name (a re-run for the same
            date); a unique one by default.

    Returns:
        The file written (None for an empty table).
    """
    if not len(table):
        return None
    n_rows = len(labels)
    frame = pd.DataFrame(
        {
            "request_id": batch_id,
            "timestamp": pd.Series([scored_at.replace(tzinfo=None)] * n_rows),
            "source": "batch",
            "model_name": model[0],
            "model_version": model[1],
            "model_alias": "champion",
            "shadow": False,
            "entity_id": table[contract.id_column].astype("string").to_numpy(),
        },
        index=range(n_rows),
    )
    for column in contract.feature_columns + contract.sensitive_columns:
        values = table[column].reset_index(drop=True)
        frame[column] = values.astype("float64") if contract.column(column).is_numeric else values
    frame["prediction"] = list(labels)
    frame["score"] = scores.astype("float64")
    frame["latency_ms"] = latency_ms
    return write_log_frame(frame, folder, "batch", file_name)


def write_log_rows(rows: Sequence[dict[str, Any]], folder: Path, source: str) -> Path | None:
    """Write `rows` (from :func:`request_log_rows`) as one Parquet file; None when empty."""
    if not rows:
        return None
    return write_log_frame(pd.DataFrame.from_records(list(rows)), folder, source)


def write_log_frame(
    frame: pd.DataFrame, folder: Path, source: str, name: str | None = None
) -> Path:
    """Write log rows held in a DataFrame as one Parquet file under `folder`, atomically.

    Args:
        frame: Rows with the log's columns (see the module docstring).
        folder: The log's root folder (a ``date=`` partition is made inside).
        source: ``api`` or ``batch``; starts the file name.
        name: The file name; a unique one by default. A fixed name replaces an earlier file.
    """
    import duckdb

    frame = _typed_frame(frame)
    day = frame["timestamp"].iloc[0].date().isoformat()
    target_dir = folder / f"date={day}"
    target_dir.mkdir(parents=True, exist_ok=True)
    fixed = name is not None
    if name is None:
        stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"{source}-{stamp}-{os.getpid()}-{next(_sequence)}.parquet"
    partial = target_dir / f".{name}.partial"
    with duckdb.connect() as connection:
        connection.register("log_rows", frame)
        connection.execute(f"copy log_rows to '{_sql_path(partial)}' (format parquet)")
    final = target_dir / name
    partial.replace(final)
    if fixed:  # the same name written on an earlier day is the run this one replaces
        for earlier in folder.glob(f"date=*/{name}"):
            if earlier != final:
                earlier.unlink()
    return final


def has_log(folder: Path) -> bool:
    """True when at least one log file has been written."""
    return folder.is_dir() and any(folder.glob(_FILES))


def read_prediction_log(
    folder: Path,
    *,
    model_version: str | None = None,
    batch_id: str | None = None,
    include_shadow: bool = False,
) -> pd.DataFrame:
    """The logged predictions, oldest first, with a ``batch_id`` column added.

    Filters run in DuckDB on the files: only the rows asked for are read.

    Args:
        folder: The log's root folder (``settings.prediction_log_dir``).
        model_version: Keep only this model version's predictions.
        batch_id: Keep only this batch scoring run's predictions.
        include_shadow: Keep the challenger's shadow predictions too; by default only the
            predictions someone received are read (what monitoring judges).

    Returns:
        One row per prediction: the log's columns (every model input among them) and
        ``batch_id`` (the request id of batch rows; missing for API rows). Empty, with the fixed
        columns, when nothing was logged yet.
    """
    import duckdb

    if not has_log(folder):
        columns = (*LOG_LEADING_COLUMNS, *LOG_TRAILING_COLUMNS)
        return pd.DataFrame({name: pd.Series(dtype="object") for name in columns})
    conditions = ["true" if include_shadow else "not coalesce(shadow, false)"]
    arguments: list[Any] = [str(folder / _FILES)]
    if model_version is not None:
        conditions.append("model_version = ?")
        arguments.append(str(model_version))
    if batch_id is not None:
        conditions.append("source = 'batch' and request_id = ?")
        arguments.append(batch_id)
    query = (
        "select * exclude (date), "  # noqa: S608 (fixed conditions; values are bound parameters)
        "case when source = 'batch' then request_id end as batch_id "
        "from read_parquet(?, union_by_name = true, hive_partitioning = true) "
        f"where {' and '.join(conditions)} order by timestamp"
    )
    with duckdb.connect() as connection:
        frame: pd.DataFrame = connection.execute(query, arguments).df()
    logger.debug("Read %d logged predictions from %s", len(frame), folder)
    return frame


def _typed_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Give the log's fixed columns stable types (features keep what the records carried)."""
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
