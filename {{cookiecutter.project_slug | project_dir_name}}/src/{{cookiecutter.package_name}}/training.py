"""The train step: split the feature table, fit the pipeline (:mod:`.pipeline`), record the run.

Everything random is seeded from ``train.seed``: the same data and parameters give the same model.
An optional grid search cross-validates ``train.search.grid``, each candidate a child run.

:func:`run_training` is the step as a whole: refuse data that failed validation (and a dirty tree
outside ``local``), train, and record the run in MLflow with its lineage, its contract and the
reference profile that monitoring compares production with.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import StepError
from .monitoring.reference import build_reference_profile, log_reference_profile
from .pipeline import build_pipeline, constrain_monotonic, model_input, monotonic_constraints
from .provenance import (
    TAG_DATA_VERSION,
    TAG_DBT_INVOCATION,
    TAG_VALIDATION,
    lineage_tags,
    refuse_dirty_outside_local,
)
from .tracking import CONTRACT_ARTIFACT, connect, ensure_experiment, log_sklearn_model

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sklearn.pipeline import Pipeline

    from .config import Settings
    from .contract import FeatureContract
    from .params import GridValue, Params, TrainParams

logger = logging.getLogger(__name__)

TEST_IDS_ARTIFACT = "split/test_ids.json"
RUN_POINTER = "latest.json"


class TrainingRefusedError(StepError):
    """The step will not train: the data failed validation, or the parameters do not fit it."""


class TrainingRunMissingError(StepError):
    """No model was trained in this project yet; the message says what to run."""


@dataclass(frozen=True)
class Split:
    """The training rows and the held-out rows (the whole feature table, split by label)."""

    train: pd.DataFrame
    test: pd.DataFrame


@dataclass(frozen=True)
class TrainedModel:
    """A fitted pipeline, the hyper-parameters it was fitted with, and any search results."""

    pipeline: Pipeline
    hyperparameters: dict[str, GridValue]
    search_results: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class TrainingRun:
    """What the train step recorded: where to find the run and its model."""

    run_id: str
    experiment_id: str
    model_uri: str
    estimator: str
    metrics: dict[str, float]
    seconds: float

    def to_json(self) -> str:
        """The record as JSON (the pointer the evaluate and register steps read)."""
        return json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n"


def save_training_run(settings: Settings, run: TrainingRun) -> Path:
    """Write the pointer to the latest training run (``reports/train/latest.json``)."""
    folder = settings.reports_dir / "train"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(run.metrics, indent=2) + "\n", encoding="utf-8")
    path = folder / RUN_POINTER
    path.write_text(run.to_json(), encoding="utf-8")
    return path


def load_training_run(settings: Settings) -> TrainingRun:
    """The latest training run, as the train step recorded it.

    Raises:
        TrainingRunMissingError: when no model was trained in this project yet.
    """
    path = settings.reports_dir / "train" / RUN_POINTER
    if not path.is_file():
        raise TrainingRunMissingError(f"{path}: no training run yet; run `make train` first")
    return TrainingRun(**json.loads(path.read_text(encoding="utf-8")))


def data_tags(settings: Settings) -> dict[str, str]:
    """Lineage of the current data: version, dbt invocation, validation (the data run record).

    Raises:
        DataRunError: when no data run was recorded yet (run ``make validate``).
    """
    from .data.record import load_data_run_record

    record = load_data_run_record(settings).tags()
    return {
        **record,
        TAG_DATA_VERSION: record["data.version"],
        TAG_DBT_INVOCATION: record["data.dbt_invocation_id"],
        TAG_VALIDATION: record["data.validation"],
    }


def check_params_against_contract(params: Params, contract: FeatureContract) -> None:
    """Parameters that name columns or labels must match the contract; checked before any run.

    Raises:
        TrainingRefusedError: naming the parameter and what the contract offers.
    """
    labels = contract.label_values
    features = set(contract.feature_columns)
    problems = []
    if labels and params.train.positive_class not in labels:
        problems.append(f"train.positive_class: {params.train.positive_class!r} not in {labels}")
    for index, expectation in enumerate(params.evaluate.directional):
        if expectation.feature not in contract.numeric_features:
            problems.append(
                f"evaluate.directional.{index}.feature: {expectation.feature!r} is not a numeric "
                f"feature of the contract ({', '.join(contract.numeric_features)})"
            )
    for index, case in enumerate(params.evaluate.cases):
        if labels and case.expect not in labels:
            problems.append(f"evaluate.cases.{index}.expect: {case.expect!r} not in {labels}")
        unknown = sorted(set(case.features) - features)
        if unknown:
            problems.append(f"evaluate.cases.{index}.features: not model features: {unknown}")
    if problems:
        raise TrainingRefusedError("; ".join(problems))


def split_table(table: pd.DataFrame, contract: FeatureContract, params: TrainParams) -> Split:
    """Split the feature table into training and held-out rows, stratified by label, seeded."""
    from sklearn.model_selection import train_test_split

    ordered = table.sort_values(contract.id_column, kind="stable").reset_index(drop=True)
    train, test = train_test_split(
        ordered,
        test_size=params.test_size,
        random_state=params.seed,
        stratify=ordered[contract.label_column],
    )
    return Split(train=train.reset_index(drop=True), test=test.reset_index(drop=True))


def fit_model(
    split: Split,
    contract: FeatureContract,
    params: TrainParams,
    monotonic: Mapping[str, int] | None = None,
) -> TrainedModel:
    """Fit the configured pipeline, after a cross-validated grid search when switched on.

    `monotonic` (feature to -1/+1, see :func:`monotonic_constraints`) constrains the estimators
    that support it; the others ignore it.
    """
    hyperparameters = params.hyperparameters
    results: list[dict[str, Any]] = []
    if params.search.enabled and params.search.grid.get(params.estimator):
        results = grid_search(split, contract, params, monotonic)
        hyperparameters = results[0]["hyperparameters"]
        logger.info("Search picked %s", hyperparameters)
    features = model_input(split.train, contract)
    pipeline = build_pipeline(contract, params.estimator, hyperparameters, params.seed)
    constrain_monotonic(pipeline, features, monotonic or {})
    pipeline.fit(features, split.train[contract.label_column])
    return TrainedModel(pipeline=pipeline, hyperparameters=hyperparameters, search_results=results)


def grid_search(
    split: Split,
    contract: FeatureContract,
    params: TrainParams,
    monotonic: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Cross-validate every combination of ``train.search.grid``; best first (by precision).

    Returns:
        One entry per candidate: ``hyperparameters`` and ``cv_precision`` (mean over folds).
    """
    from sklearn.model_selection import ParameterGrid, StratifiedKFold

    folds = StratifiedKFold(n_splits=params.search.cv_folds, shuffle=True, random_state=params.seed)
    features, labels = model_input(split.train, contract), split.train[contract.label_column]
    results = []
    for candidate in ParameterGrid(params.search.grid[params.estimator]):
        hyperparameters = {**params.hyperparameters, **candidate}
        scores = []
        # cross_val_score, with the constraints aligned to each fold's preprocessing (a category
        # missing from a fold changes the number of one-hot columns).
        for fit_rows, score_rows in folds.split(features, labels):
            pipeline = build_pipeline(contract, params.estimator, hyperparameters, params.seed)
            constrain_monotonic(pipeline, features.iloc[fit_rows], monotonic or {})
            pipeline.fit(features.iloc[fit_rows], labels.iloc[fit_rows])
            held = split.train.iloc[score_rows]
            scores.append(
                training_metrics(pipeline, held, contract, params.positive_class)["train_precision"]
            )
        results.append({"hyperparameters": hyperparameters, "cv_precision": float(np.mean(scores))})
    # Stable sort: ties keep grid order, so the pick is deterministic.
    return sorted(results, key=lambda result: -result["cv_precision"])


def training_metrics(
    model: Pipeline, frame: pd.DataFrame, contract: FeatureContract, positive_class: str
) -> dict[str, float]:
    """Precision and recall of `positive_class` against the rest (the training rows by default).

    One class against the rest, so a label with more than two values is measured the same way.
    """
    from sklearn.metrics import precision_score, recall_score

    truth = frame[contract.label_column].astype(str).to_numpy() == positive_class
    predicted = model.predict(model_input(frame, contract)).astype(str) == positive_class
    return {
        "train_precision": float(precision_score(truth, predicted, zero_division=0)),
        "train_recall": float(recall_score(truth, predicted, zero_division=0)),
    }


def train_model(settings: Settings, params: Params) -> TrainingRun:
    """The train step from the project's own state: contract, data run, labelled rows.

    What ``python -m <package> train`` and the Dagster asset both call; the latest run is
    saved for the evaluate and register steps (:func:`save_training_run`).
    """
    from .contract import load_contract
    from .data.warehouse import load_feature_table

    contract = load_contract(settings)
    tags = data_tags(settings)
    table = load_feature_table(settings, contract, rows="labelled")  # unlabelled rows are scored
    run = run_training(settings, params, table, contract, tags)
    save_training_run(settings, run)
    return run


def run_training(
    settings: Settings,
    params: Params,
    table: pd.DataFrame,
    contract: FeatureContract,
    data_tags: Mapping[str, str],
) -> TrainingRun:
    """The train step: check, fit, and record the run in MLflow with its lineage.

    Args:
        settings: Where the tracking store and the project are.
        params: The validated parameters (``train`` section, and those checked against the data).
        table: The feature table.
        contract: The feature contract the table follows.
        data_tags: Lineage of the data (data version, dbt invocation, validation result), from
            the data run record.

    Returns:
        The recorded run.

    Raises:
        TrainingRefusedError: when the data failed validation or params do not fit the contract.
        DirtyTreeError: when the tree is dirty outside ``local``.
        TrackingUnavailableError: when the tracking store cannot be reached (nothing logged).
    """
    import mlflow

    if data_tags.get(TAG_VALIDATION) != "passed":
        raise TrainingRefusedError(
            f"the feature table's validation result is {data_tags.get(TAG_VALIDATION)!r}, not "
            "'passed': data that fails validation never trains (run `make validate` and fix it)"
        )
    check_params_against_contract(params, contract)
    # The recorded contract carries the validated value ranges: the service refuses the rest.
    contract = contract.with_ranges(params.validation.ranges)
    tags = lineage_tags(settings.project_dir, params, data_tags)
    refuse_dirty_outside_local(tags, settings.environment)
    client = connect(settings)
    experiment_id = ensure_experiment(client, settings)

    started = time.perf_counter()
    split = split_table(table, contract, params.train)
    with mlflow.start_run(experiment_id=experiment_id, tags=tags) as run:
        mlflow.log_params(
            {
                "estimator": params.train.estimator,
                "test_size": params.train.test_size,
                "seed": params.train.seed,
                "positive_class": params.train.positive_class,
                "search": params.train.search.enabled,
                "n_train": len(split.train),
                "n_test": len(split.test),
            }
        )
        classes = sorted(str(label) for label in split.train[contract.label_column].unique())
        monotonic = monotonic_constraints(params.evaluate, classes, params.train.positive_class)
        trained = fit_model(split, contract, params.train, monotonic)
        for index, result in enumerate(trained.search_results):
            with mlflow.start_run(
                experiment_id=experiment_id, nested=True, run_name=f"candidate-{index}"
            ):
                mlflow.log_params(result["hyperparameters"])
                mlflow.log_metric("cv_precision", result["cv_precision"])
        mlflow.log_params({f"model.{key}": value for key, value in trained.hyperparameters.items()})
        if "monotonic_cst" in trained.pipeline["model"].get_params():
            mlflow.log_param("model.monotonic", json.dumps(monotonic, sort_keys=True))
        metrics = training_metrics(
            trained.pipeline, split.train, contract, params.train.positive_class
        )
        if trained.search_results:
            metrics["cv_precision"] = trained.search_results[0]["cv_precision"]
        mlflow.log_metrics(metrics)
        mlflow.log_text(contract.to_json(), CONTRACT_ARTIFACT)
        # What monitoring compares production with: this model on its own held-out rows.
        log_reference_profile(
            build_reference_profile(
                split.test,
                trained.pipeline,
                contract,
                params.train.positive_class,
                bins=params.monitor.bins,
                model_name=settings.model_name,
                run_id=run.info.run_id,
            )
        )
        mlflow.log_dict(params.model_dump(mode="json"), "params.json")
        mlflow.log_dict(
            {contract.id_column: split.test[contract.id_column].tolist()},
            TEST_IDS_ARTIFACT,
        )
        info = log_sklearn_model(trained.pipeline, model_input(split.train, contract).head(5))
        seconds = time.perf_counter() - started
        mlflow.log_metric("train_seconds", seconds)
    logger.info(
        "Trained %s in %.1f s: run %s, model %s",
        params.train.estimator,
        seconds,
        run.info.run_id,
        info.model_uri,
    )
    return TrainingRun(
        run_id=run.info.run_id,
        experiment_id=experiment_id,
        model_uri=info.model_uri,
        estimator=params.train.estimator,
        metrics=metrics,
        seconds=seconds,
    )
