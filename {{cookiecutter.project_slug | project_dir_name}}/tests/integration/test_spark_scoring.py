"""Spark batch scoring (`SCORING_ENGINE=spark`) writes what pandas scoring writes, row by row.

A scratch project runs the loop up to `promote` on the project's data and local stores. Its
unlabelled rows are then scored twice, once per engine, for two run dates, from the DuckDB
warehouse and from the same feature table built by dbt on PostgreSQL; the two runs'
``predictions`` rows and prediction log entries must agree. Spark runs in ``local[2]``, with one
session for the module's scoring in this process (starting one takes several seconds); the last
test runs the command as a scheduled job does, in a process of its own.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd
import pytest
from scratch import run_in, scratch_project
from shared_stack import warehouse_settings

from {{ cookiecutter.package_name }}.batch import PREDICTIONS_TABLE, ScoringResult, run_scoring
from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.contract import FeatureContract
from {{ cookiecutter.package_name }}.data.warehouse import load_feature_table
from {{ cookiecutter.package_name }}.prediction_log import read_prediction_log
from {{ cookiecutter.package_name }}.registry import CHAMPION, fetch_registered
from {{ cookiecutter.package_name }}.spark_scoring import spark_session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PACKAGE = "{{ cookiecutter.package_name }}"
LOOP = ("data", "transform", "validate", "train", "evaluate", "register", "promote")
MASTER = "local[2]"
PANDAS_DAY, SPARK_DAY = date(2025, 7, 1), date(2025, 7, 2)
# Each batch's own columns: when and by which run, and how long it took per row.
PER_RUN_LOG_COLUMNS = ["request_id", "batch_id", "timestamp", "latency_ms"]


@pytest.fixture(scope="module")
def champion_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A scratch project with a champion, its registry the SQLite file in the project."""
    # The embedded defaults: the gate judges the demo at its full size.
    project = scratch_project(tmp_path_factory.mktemp("spark") / "project", small=False)
    local = {"MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    for step in LOOP:  # what `make all` runs before `score`
        run_in(project, sys.executable, "-m", PACKAGE, step, settings=local)
    with pytest.MonkeyPatch.context() as patch:
        # This module's scoring reads that registry (MLflow also reads the variable).
        for name, value in local.items():
            patch.setenv(name, value)
        yield project


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    """The module's SparkSession: the one the Spark engine finds active and scores on."""
    with spark_session(MASTER) as session:
        yield session


@pytest.fixture(scope="module")
def on_postgres(champion_project: Path, warehouse_database: str) -> dict[str, str]:
    """The settings of the same feature table, built by dbt in the session's warehouse database."""
    # A schema of its own in the session's warehouse database.
    settings = {**warehouse_settings(warehouse_database), "POSTGRES_SCHEMA": "spark_scoring"}
    run_in(champion_project, sys.executable, "-m", PACKAGE, "transform", settings=settings)
    return settings


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest) -> dict[str, str]:
    """The settings of each warehouse: the embedded DuckDB file, then PostgreSQL."""
    return request.getfixturevalue("on_postgres") if request.param == "postgres" else {}


def settings_of(project: Path, outputs: Path, warehouse: dict[str, str]) -> Settings:
    """The project's settings on `warehouse`, with the outputs in a folder of the test's own."""
    return Settings(
        project_dir=project,
        predictions_path=outputs / "predictions.duckdb",
        prediction_log_dir=outputs / "log",
        **{name.lower(): value for name, value in warehouse.items()},
    )


def on_spark(settings: Settings) -> Settings:
    """The same settings, with SCORING_ENGINE=spark and SPARK_MASTER set as a user sets them."""
    return Settings(**{**settings.model_dump(), "scoring_engine": "spark", "spark_master": MASTER})


def score_with_both_engines(
    settings: Settings, spark: SparkSession
) -> tuple[ScoringResult, ScoringResult]:
    """Score the same rows with pandas (the default engine), then with Spark."""
    from pyspark.sql import SparkSession  # noqa: PLC0415 (the spark extra: make test-integration)

    assert settings.scoring_engine == "pandas"
    with_pandas = run_scoring(settings, PANDAS_DAY)
    with_spark = run_scoring(on_spark(settings), SPARK_DAY)
    assert SparkSession.getActiveSession() is spark  # scored on the module's session
    return with_pandas, with_spark


def predictions_of(settings: Settings, day: date) -> pd.DataFrame:
    with duckdb.connect(str(settings.predictions_path), read_only=True) as connection:
        return connection.execute(
            f"select * from {PREDICTIONS_TABLE} where run_date = ?",  # noqa: S608 (a constant)
            [day],
        ).df()


def assert_same_predictions(
    settings: Settings, contract: FeatureContract, unlabelled: pd.DataFrame
) -> None:
    """Both runs wrote one row per unlabelled row: the same labels, the same scores."""
    by_pandas, by_spark = predictions_of(settings, PANDAS_DAY), predictions_of(settings, SPARK_DAY)
    id_column, label = contract.id_column, contract.label_column
    assert list(by_spark.columns) == list(by_pandas.columns)
    assert list(by_spark.dtypes) == list(by_pandas.dtypes)
    assert len(by_pandas) == len(unlabelled)
    by_pandas = by_pandas.sort_values(id_column, ignore_index=True)
    by_spark = by_spark.sort_values(id_column, ignore_index=True)
    assert by_spark[id_column].tolist() == sorted(unlabelled[id_column])
    assert by_spark[id_column].tolist() == by_pandas[id_column].tolist()
    assert by_spark[label].tolist() == by_pandas[label].tolist()
    assert set(by_pandas[label]) == set(contract.label_values)  # both labels: a real comparison
    pd.testing.assert_series_equal(by_spark["score"], by_pandas["score"], rtol=0, atol=1e-9)
    assert by_spark["model_version"].tolist() == by_pandas["model_version"].tolist()


def assert_same_log_entries(settings: Settings) -> None:
    """Both runs logged the same entries: the same rows, columns, features and predictions."""
    by_pandas = read_prediction_log(settings.prediction_log_dir, batch_id="batch-2025-07-01")
    by_spark = read_prediction_log(settings.prediction_log_dir, batch_id="batch-2025-07-02")
    assert by_spark.shape == by_pandas.shape
    assert list(by_spark.columns) == list(by_pandas.columns)
    same = [name for name in by_pandas.columns if name not in PER_RUN_LOG_COLUMNS]
    pd.testing.assert_frame_equal(
        by_spark[same].sort_values("entity_id", ignore_index=True),
        by_pandas[same].sort_values("entity_id", ignore_index=True),
        rtol=0,
        atol=1e-9,
    )


def test_spark_scores_the_unlabelled_rows_as_pandas_does(
    warehouse: dict[str, str],
    champion_project: Path,
    spark: SparkSession,
    tmp_path: Path,
) -> None:
    settings = settings_of(champion_project, tmp_path, warehouse)
    contract = fetch_registered(settings, CHAMPION).contract
    unlabelled = load_feature_table(settings, contract, rows="unlabelled")
    assert len(unlabelled) > 100, "the project's data must have unlabelled rows to score"

    with_pandas, with_spark = score_with_both_engines(settings, spark)

    assert (with_pandas.engine, with_spark.engine) == ("pandas", f"spark ({MASTER})")
    assert with_spark.rows == with_pandas.rows == len(unlabelled)
    assert with_spark.model_version == with_pandas.model_version
    assert_same_predictions(settings, contract, unlabelled)
    assert_same_log_entries(settings)


def test_a_rerun_on_spark_replaces_its_date_only(
    champion_project: Path, spark: SparkSession, tmp_path: Path
) -> None:
    settings = settings_of(champion_project, tmp_path, {})
    score_with_both_engines(settings, spark)
    first = predictions_of(settings, SPARK_DAY)
    run_scoring(on_spark(settings), SPARK_DAY)  # Spark again, the same date

    with duckdb.connect(str(settings.predictions_path), read_only=True) as connection:
        counts = dict(
            connection.execute(
                f"select run_date, count(*) from {PREDICTIONS_TABLE} group by 1"  # noqa: S608
            ).fetchall()
        )
    assert counts == {PANDAS_DAY: len(first), SPARK_DAY: len(first)}
    again = predictions_of(settings, SPARK_DAY)
    assert (again["scored_at"] > first["scored_at"].max()).all()  # replaced, not kept
    log = read_prediction_log(settings.prediction_log_dir)
    assert (log["batch_id"] == "batch-2025-07-02").sum() == len(first)


def test_a_scheduled_job_scores_on_spark_with_a_bare_path(
    champion_project: Path, tmp_path: Path
) -> None:
    """The CLI as a cron job or a container runs it: the settings in its environment, and no
    virtualenv on PATH, whose `python3` (Spark's default for its workers) lacks the project."""
    bare = os.pathsep.join(["/usr/bin", "/bin"])
    assert shutil.which("python3", path=bare) != sys.executable
    settings = {
        "SCORING_ENGINE": "spark",
        "SPARK_MASTER": MASTER,
        "PATH": bare,
        "PREDICTIONS_PATH": str(tmp_path / "predictions.duckdb"),
        "PREDICTION_LOG_DIR": str(tmp_path / "log"),
    }
    command = (sys.executable, "-m", PACKAGE, "score", "--run-date", SPARK_DAY.isoformat())
    output = run_in(champion_project, *command, settings=settings)

    assert f"on spark ({MASTER})" in output
    scored = predictions_of(settings_of(champion_project, tmp_path, {}), SPARK_DAY)
    unlabelled = load_feature_table(settings_of(champion_project, tmp_path, {}), rows="unlabelled")
    assert len(scored) == len(unlabelled) > 0
