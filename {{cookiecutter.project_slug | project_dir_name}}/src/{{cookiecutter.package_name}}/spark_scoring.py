"""Batch scoring on Spark (``SCORING_ENGINE=spark``): the champion as ``mlflow.pyfunc.spark_udf``.

The score step (:func:`.batch.run_scoring`) is the same on both engines: it fetches the champion,
reads the unlabelled rows, and writes the ``predictions`` table and the prediction log. Only the
scoring in between runs here, on ``SPARK_MASTER``: the rows become a Spark DataFrame, the champion
a pandas UDF that each Python worker loads once, and the labels and scores come back to the step.

**How the rows reach Spark.** The step reads them with the project's one feature-table reader
(:mod:`.data.warehouse`: DuckDB or PostgreSQL, typed by the contract) and hands them to Spark as
Arrow batches. Spark's own readers were the alternative, and neither works offline on both
warehouses: Spark reads PostgreSQL through a JDBC driver it does not ship (``spark.jars.packages``
fetches it from Maven at run time), and it has no reader for a DuckDB file at all. A Parquet
extract written by DuckDB needs no driver, but only works where every executor can read the file
(a shared folder or a bucket); Arrow batches from the driver work with any master.

**How the model reaches the workers.** The registered version's pyfunc predicts labels, and the
step also needs the positive class's probability, so the UDF is built on a local copy of the
version's files whose ``python_function`` entry calls ``predict_proba`` instead: the same
serialized pipeline, byte for byte, and the same input signature, which MLflow checks on every
batch. ``env_manager="local"`` (MLflow warns that it does not rebuild the training environment):
the model's requirements are pinned when it is logged, and MLflow warns when the installed
versions differ. On a local master the workers run this interpreter; on a cluster,
``PYSPARK_PYTHON`` must name one with the project installed.

**What scales.** The model's work: each executor scores its partitions in Arrow batches of
``--chunk-rows`` rows. The rows and the results pass through the driver, as with pandas, because
the step's outputs are files the driver writes (the ``predictions`` DuckDB file, and the
prediction log, which repeats every feature): the driver needs the memory the pandas engine needs.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .batch import DEFAULT_CHUNK_ROWS, decide
from .config import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd
    from pyspark.sql import SparkSession

    from .registry import RegisteredModel

logger = logging.getLogger(__name__)

APP_NAME = "score"
_ROW = "__row"  # each row's position in the step's table: the results are put back in order by it


def require_pyspark() -> None:
    """Check that Spark can be used, before the step does any work.

    Raises:
        ConfigError: when pyspark (the ``spark`` extra) is not installed.
    """
    if importlib.util.find_spec("pyspark") is None:
        raise ConfigError(
            "SCORING_ENGINE=spark needs pyspark, which is not installed: run "
            "`make setup EXTRAS=spark` (Spark also needs a Java runtime, 17 or 21), or unset "
            "SCORING_ENGINE to score with pandas"
        )


@contextmanager
def spark_session(master: str) -> Iterator[SparkSession]:
    """The active SparkSession, or a new one on `master` that is stopped at the end.

    An active session (a notebook's, a test's, one a scheduler keeps warm) is used as it is,
    whatever its master, and left running. A new local one binds to 127.0.0.1, has no web UI and
    runs its Python workers on this interpreter (``PYSPARK_PYTHON`` is set to it unless it is set).
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        logger.info("Scoring on the active SparkSession (master %s)", active.sparkContext.master)
        yield active
        return
    builder = SparkSession.builder.master(master).appName(APP_NAME)
    # The step logs its own progress; Spark's console bar would interleave with it.
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    if master.startswith("local"):
        builder = (
            builder.config("spark.ui.enabled", "false")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
        )
        # The workers run PYSPARK_PYTHON, else `python3` from PATH, which need not have the
        # project installed (a cron job or a container calling .venv/bin/python). Read from the
        # environment when the session starts: Spark's `spark.pyspark.python` only reaches
        # programs launched by spark-submit.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    started = time.perf_counter()
    with _quiet_about_pandas_3():
        session = builder.getOrCreate()
    logger.info("Started Spark on %s in %.1f s", master, time.perf_counter() - started)
    try:
        yield session
    finally:
        session.stop()


def score_on_spark(
    model: RegisteredModel,
    table: pd.DataFrame,
    master: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> tuple[list[str], np.ndarray, float]:
    """Score every row of `table` with `model` as a Spark UDF on `master`.

    Returns:
        What :func:`.batch.score_chunks` returns for the same rows: the predicted labels, the
        positive-class scores (in `table`'s order) and the milliseconds spent per row.
    """
    import mlflow.pyfunc
    import pyarrow as pa
    from pyspark.sql import functions as F  # noqa: N812 (Spark's own convention)

    started = time.perf_counter()
    contract = model.contract
    features = contract.feature_columns
    n_classes = len(model.pipeline.classes_)
    # Arrow both ways, typed by the contract (a text column with no value in this batch is still
    # text): pandas meets Spark only inside the UDF (see _quiet_about_pandas_3).
    schema = pa.schema(
        (name, pa.float64() if contract.column(name).is_numeric else pa.string())
        for name in features
    )
    rows = pa.Table.from_pandas(table[features], schema, preserve_index=False).append_column(
        _ROW, pa.array(np.arange(len(table)))
    )
    with (
        spark_session(master) as spark,
        _quiet_about_pandas_3(),
        _arrow_batches(spark, chunk_rows),
        tempfile.TemporaryDirectory(prefix="spark-model-") as folder,
    ):
        predict_proba = mlflow.pyfunc.spark_udf(
            spark,
            probability_model(model, Path(folder)),
            result_type="array<double>",
            env_manager="local",
        )
        probabilities = predict_proba(F.struct(*features))
        result = (
            spark.createDataFrame(rows)
            .select(_ROW, probabilities.alias("p"))
            .select(_ROW, *(F.col("p")[index].alias(f"p{index}") for index in range(n_classes)))
            .toArrow()
            .sort_by(_ROW)
        )
    labels, scores = decide(
        model,
        np.column_stack([result.column(f"p{index}").to_numpy() for index in range(n_classes)]),
    )
    per_row_ms = (time.perf_counter() - started) * 1000 / max(len(table), 1)
    return labels, scores, per_row_ms


def probability_model(model: RegisteredModel, folder: Path) -> str:
    """A copy of `model`'s files in `folder` whose pyfunc returns ``predict_proba``.

    Returns:
        The copy's path, a model URI for ``mlflow.pyfunc``.
    """
    import mlflow.artifacts
    from mlflow.models import Model, ModelSignature

    # By version, not alias: the alias may move while this runs (as in registry.fetch_registered).
    path = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{model.name}/{model.version}", dst_path=str(folder)
        )
    )
    meta = Model.load(str(path))
    meta.flavors["python_function"]["predict_fn"] = "predict_proba"
    if meta.signature is not None:
        # The inputs are checked as before; the recorded output (a label) is not what this returns.
        meta.signature = ModelSignature(inputs=meta.signature.inputs)
    meta.save(str(path / "MLmodel"))
    return str(path)


@contextmanager
def _arrow_batches(spark: SparkSession, rows_per_batch: int) -> Iterator[None]:
    """Hand the UDF `rows_per_batch` rows per call (Spark's setting, restored after)."""
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    earlier = spark.conf.get(key)
    spark.conf.set(key, str(rows_per_batch))
    try:
        yield
    finally:
        if earlier is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, earlier)


@contextmanager
def _quiet_about_pandas_3() -> Iterator[None]:
    """Silence PySpark 4's warning that pandas 3 is not fully supported yet.

    It comes when a session starts and when a pandas UDF is made. The one pandas path used here,
    the UDF's, is checked against the pandas engine row by row on the pandas the project locks
    (tests/integration/test_spark_scoring.py).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "PySpark does not yet fully support pandas", category=FutureWarning
        )
        yield
