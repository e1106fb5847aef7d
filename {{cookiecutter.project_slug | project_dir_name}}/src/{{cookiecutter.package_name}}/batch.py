"""The score step: nightly batch scoring of the rows whose label is not known yet.

Reads the rows of the latest feature table whose label is empty (new entities, or rows appended
without an outcome; training never sees them), scores them in chunks with the champion's
pipeline (with a progress bar), and writes ``<id>, <label>, score, model_version, scored_at,
run_date`` to the ``predictions`` table of the predictions database (``PREDICTIONS_PATH``, a
DuckDB file beside the warehouse: the warehouse itself is a DVC output that only dbt writes).
Idempotent per run date: the date's rows are deleted and written again in one transaction, so a
re-run replaces them and a failure leaves the table as it was (created in the same transaction on
the first run). The same predictions go to the prediction log (``source = 'batch'``, one file per
run date, replaced on a re-run), where the monitoring step reads them alongside the service's.

The engine is configuration (``SCORING_ENGINE`` in the settings): ``pandas``, the default,
scores with the pipeline on DataFrame chunks in this process (the fast path only pays off per
request) with all the CPU threads scikit-learn wants; ``SCORING_ENGINE=spark`` scores with the
champion as ``mlflow.pyfunc.spark_udf`` on ``SPARK_MASTER`` (:mod:`.spark_scoring`). Both read the
same rows and hand the same labels and scores to the same writers. The database is opened only
for the short write.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import numpy as np

from .errors import StepError

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from .config import Settings
    from .contract import FeatureContract
    from .registry import RegisteredModel

logger = logging.getLogger(__name__)

PREDICTIONS_TABLE = "predictions"
DEFAULT_CHUNK_ROWS = 50_000


class ScoringError(StepError):
    """The score step cannot run; the message says what to do."""


@dataclass(frozen=True)
class ScoringResult:
    """What one scoring run wrote."""

    rows: int
    model_name: str
    model_version: str
    run_date: date
    table: str
    log_file: str | None
    seconds: float
    engine: str


def score_chunks(
    model: RegisteredModel,
    table: pd.DataFrame,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
) -> tuple[list[str], np.ndarray, float]:
    """Score every row of `table` with `model`'s pipeline, `chunk_rows` at a time.

    Returns:
        The predicted labels, the positive-class scores and the milliseconds spent per row.
    """
    started = time.perf_counter()
    features = table[model.contract.feature_columns]
    labels: list[str] = []
    scores: list[np.ndarray] = []
    for start in range(0, len(features), chunk_rows):
        chunk = features.iloc[start : start + chunk_rows]
        chunk_labels, chunk_scores = decide(model, np.asarray(model.pipeline.predict_proba(chunk)))
        labels.extend(chunk_labels)
        scores.append(chunk_scores)
        if on_chunk is not None:
            on_chunk(len(chunk))
    per_row_ms = (time.perf_counter() - started) * 1000 / max(len(table), 1)
    return labels, np.concatenate(scores) if scores else np.empty(0), per_row_ms


def decide(model: RegisteredModel, probabilities: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Labels and positive-class scores from `probabilities` (one column per class, in order).

    The label is the most probable class (the first of equals, as numpy's ``argmax`` picks it).
    """
    classes = tuple(str(label) for label in model.pipeline.classes_)
    labels = [classes[index] for index in probabilities.argmax(axis=1)]
    return labels, probabilities[:, classes.index(model.positive_class)]


def predictions_frame(
    table: pd.DataFrame,
    contract: FeatureContract,
    *,
    labels: list[str],
    scores: np.ndarray,
    model_version: str,
    scored_at: datetime,
    run_date: date,
) -> pd.DataFrame:
    """The rows of the ``predictions`` table for one run."""
    import pandas as pd

    return pd.DataFrame(
        {
            contract.id_column: table[contract.id_column].to_numpy(),
            contract.label_column: pd.array(labels, dtype="string"),
            "score": scores.astype("float64"),
            "model_version": pd.array([model_version] * len(labels), dtype="string"),
            "scored_at": pd.Series([scored_at] * len(labels), dtype="datetime64[us]"),
            "run_date": pd.Series([run_date] * len(labels), dtype="datetime64[s]").dt.date,
        }
    )


def write_predictions(
    settings: Settings, frame: pd.DataFrame, contract: FeatureContract, run_date: date
) -> None:
    """Replace `run_date`'s rows of the ``predictions`` table, in one transaction.

    Raises:
        ScoringError: when the predictions database cannot be written.
    """
    import duckdb

    id_column, label_column = contract.id_column, contract.label_column
    settings.predictions_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        connection = duckdb.connect(str(settings.predictions_path))
    except duckdb.Error as error:
        raise ScoringError(
            f"{settings.predictions_path}: cannot open the predictions database: {error}"
        ) from error
    try:
        connection.begin()
        connection.execute(
            f"""create table if not exists main.{PREDICTIONS_TABLE} (
                "{id_column}" {contract.column(id_column).data_type} not null,
                "{label_column}" varchar not null,
                score double not null,
                model_version varchar not null,
                scored_at timestamp not null,
                run_date date not null
            )"""
        )
        connection.execute(
            f"delete from main.{PREDICTIONS_TABLE} where run_date = ?",  # noqa: S608 (constant)
            [run_date],
        )
        connection.register("scored", frame)
        connection.execute(
            f'insert into main.{PREDICTIONS_TABLE} select "{id_column}", "{label_column}", '  # noqa: S608
            "score, model_version, scored_at, run_date from scored"
        )
        connection.commit()
    except duckdb.Error as error:
        connection.rollback()
        raise ScoringError(
            f"writing {PREDICTIONS_TABLE} failed, nothing changed: {error}"
        ) from error
    finally:
        connection.close()


def run_scoring(
    settings: Settings,
    run_date: date | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> ScoringResult:
    """The score step: champion, feature table, chunks, one transaction, the prediction log.

    Args:
        settings: Where the registry, the warehouse and the log are.
        run_date: The date the run is for (default: today, UTC); its rows are replaced.
        chunk_rows: Rows scored per pipeline call (per Arrow batch on Spark).
        progress: Called with the number of rows scored, after each chunk (the progress bar).
        on_total: Called once with the number of rows to score.

    Raises:
        ConfigError: when Spark is chosen without pyspark.
        ScoringError: when there is no champion, no feature table, or the write fails.
    """
    from .data.warehouse import WarehouseError, load_feature_table
    from .prediction_log import log_batch
    from .registry import CHAMPION, ModelUnavailableError, fetch_registered

    if settings.scoring_engine == "spark":
        from .spark_scoring import require_pyspark

        require_pyspark()  # before any work: a missing extra is a setup step, not a failed run
    started = time.perf_counter()
    scored_at = datetime.now(tz=UTC).replace(tzinfo=None)
    run_date = run_date or scored_at.date()
    try:
        model = fetch_registered(settings, CHAMPION)
        table = load_feature_table(settings, model.contract, rows="unlabelled")
    except (ModelUnavailableError, WarehouseError) as error:
        raise ScoringError(str(error)) from error
    contract = model.contract
    if on_total is not None:
        on_total(len(table))
    if table.empty:
        # Every row has its label: nothing new to score. The date's earlier rows stay as they are.
        logger.warning("Nothing to score: every row of %s has its label", contract.model)
        return ScoringResult(
            rows=0,
            model_name=model.name,
            model_version=model.version,
            run_date=run_date,
            table=PREDICTIONS_TABLE,
            log_file=None,
            seconds=time.perf_counter() - started,
            engine=settings.scoring_engine_name,
        )
    if settings.scoring_engine == "spark":
        from .spark_scoring import score_on_spark

        labels, scores, per_row_ms = score_on_spark(model, table, settings.spark_master, chunk_rows)
        if progress is not None:
            progress(len(table))
    else:
        labels, scores, per_row_ms = score_chunks(model, table, chunk_rows, on_chunk=progress)
    frame = predictions_frame(
        table,
        contract,
        labels=labels,
        scores=scores,
        model_version=model.version,
        scored_at=scored_at,
        run_date=run_date,
    )
    write_predictions(settings, frame, contract, run_date)
    log_file = None
    if settings.prediction_log_enabled:
        # One file per run date, replaced by a re-run: the log stays idempotent too.
        written = log_batch(
            settings.prediction_log_dir,
            table,
            contract,
            labels,
            scores,
            model=(model.name, model.version),
            batch_id=f"batch-{run_date.isoformat()}",
            scored_at=scored_at,
            latency_ms=per_row_ms,
            file_name=f"batch-{run_date.isoformat()}.parquet",
        )
        log_file = str(written) if written else None
    seconds = time.perf_counter() - started
    logger.info(
        "Scored %d rows with %s v%s for %s on %s in %.1f s",
        len(table),
        model.name,
        model.version,
        run_date,
        settings.scoring_engine_name,
        seconds,
    )
    return ScoringResult(
        rows=len(table),
        model_name=model.name,
        model_version=model.version,
        run_date=run_date,
        table=PREDICTIONS_TABLE,
        log_file=log_file,
        seconds=seconds,
        engine=settings.scoring_engine_name,
    )
