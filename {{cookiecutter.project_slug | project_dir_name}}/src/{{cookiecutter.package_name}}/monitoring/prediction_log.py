"""The prediction log, as monitoring reads it.

The service and batch scoring write the log (:mod:`..serving.predlog`: partitioned Parquet under
``PREDICTION_LOG_DIR``, written off the request path by a background thread; one row per
prediction with the request id, time, source, model version, the row's id, every model input,
the prediction, the score and the latency). This module reads it for monitoring:

* shadow rows (a challenger scoring in the background; never returned to a caller) are left
  out: only predictions someone received are judged;
* ``batch_id`` identifies a batch scoring run: a batch run logs all its rows under one request id.
  API rows have none;
* filters (model version, batch) run in DuckDB on the files, so a large log is never read whole.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..serving.predlog import LEADING_COLUMNS, TRAILING_COLUMNS, write_log_frame

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from ..contract import FeatureContract

logger = logging.getLogger(__name__)

_FILES = "**/*.parquet"


def has_log(directory: Path) -> bool:
    """True when at least one log file has been written."""
    return directory.is_dir() and any(directory.glob(_FILES))


def read_logged_predictions(
    directory: Path, *, model_version: str | None = None, batch_id: str | None = None
) -> pd.DataFrame:
    """The predictions that were served, oldest first, with a ``batch_id`` column added.

    Args:
        directory: The log's root folder (``settings.prediction_log_dir``).
        model_version: Keep only this model version's predictions.
        batch_id: Keep only this batch scoring run's predictions.

    Returns:
        One row per prediction: the log's columns (every model input among them) and
        ``batch_id`` (the request id of batch rows; missing for API rows). Empty, with the fixed
        columns, when nothing was logged yet.
    """
    import duckdb  # noqa: PLC0415

    if not has_log(directory):
        return pd.DataFrame(
            {name: pd.Series(dtype="object") for name in (*LEADING_COLUMNS, *TRAILING_COLUMNS)}
            | {"batch_id": pd.Series(dtype="object")}
        )
    conditions = ["not coalesce(shadow, false)"]
    arguments: list[Any] = [str(directory / _FILES)]
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
        frame = connection.execute(query, arguments).df()
    logger.debug("Read %d logged predictions from %s", len(frame), directory)
    return frame


def log_batch_predictions(
    directory: Path,
    table: pd.DataFrame,
    contract: FeatureContract,
    predictions: Sequence[str],
    scores: Sequence[float],
    *,
    model_name: str,
    model_version: str,
    batch_id: str,
    latency_ms: float = 0.0,
) -> Path | None:
    """Log a scored table as one batch run, in the layout the score step writes.

    Args:
        directory: The log's root folder.
        table: The scored rows (the contract's id, features and sensitive attributes).
        contract: Which columns are logged.
        predictions: Predicted labels, aligned with `table`.
        scores: Positive-class probabilities, aligned with `table`.
        model_name: Registered model name.
        model_version: The version that scored.
        batch_id: The run's id: every row is logged under it as the request id.
        latency_ms: Scoring time per row.

    Returns:
        The file written (None for an empty table).
    """
    from datetime import UTC, datetime  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from ..batch import batch_log_frame  # noqa: PLC0415

    if not len(table):
        return None
    now = datetime.now(tz=UTC)
    frame = batch_log_frame(
        table,
        contract,
        list(predictions),
        np.asarray(scores, dtype="float64"),
        model_name=model_name,
        model_version=str(model_version),
        scored_at=now,
        run_date=now.date(),
        latency_ms=latency_ms,
    )
    frame["request_id"] = batch_id  # one id per run: what monitoring reads as the batch
    return write_log_frame(frame, directory, "batch")
