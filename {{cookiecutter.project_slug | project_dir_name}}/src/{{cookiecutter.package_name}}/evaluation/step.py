"""The evaluate step as a whole: the held-out rows, every check, the report, MLflow."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from ..errors import StepError
from ..provenance import TAG_DATA_VERSION
from ..training import TEST_IDS_ARTIFACT, data_tags
from .checks import (
    champion_check,
    directional_checks,
    invariance_check,
    minimum_functionality_checks,
    threshold_checks,
)
from .fairness import slice_report
from .metrics import classification_metrics
from .plots import write_plots
from .report import (
    HEADLINE,
    REPORT_ARTIFACT,
    ChampionComparison,
    EvaluationReport,
    evaluation_dir,
    version_evaluation_dir,
)

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd
    from mlflow import MlflowClient
    from sklearn.pipeline import Pipeline

    from ..config import Settings
    from ..contract import FeatureContract
    from ..params import Params
    from ..training import TrainingRun

logger = logging.getLogger(__name__)


class EvaluationRefusedError(StepError):
    """The model cannot be evaluated as asked (changed data, or no held-out rows to use)."""


def held_out_rows(
    table: pd.DataFrame, contract: FeatureContract, test_ids: list[int]
) -> pd.DataFrame:
    """The held-out rows of the training run, found by id in the current feature table.

    Raises:
        EvaluationRefusedError: when some held-out ids are missing (the data changed).
    """
    frame = table[table[contract.id_column].isin(test_ids)]
    if len(frame) != len(test_ids):
        raise EvaluationRefusedError(
            f"{len(test_ids) - len(frame)} held-out customers of the training run are not in the "
            "feature table: the data changed since training; run `make train` again"
        )
    return frame.sort_values(contract.id_column, kind="stable").reset_index(drop=True)


def other_task(champion: FeatureContract, candidate: FeatureContract) -> str | None:
    """Why the champion's task is not the candidate's (None when it is the same task).

    The same task: the same feature table, and the same label with the same values. Features
    may differ (a champion that misses one of the candidate's still scores its rows).
    """
    theirs = (champion.model, champion.label_column, set(champion.label_values))
    ours = (candidate.model, candidate.label_column, set(candidate.label_values))
    if theirs == ours:
        return None
    return (
        f"the champion predicts {champion.label_column!r} {sorted(theirs[2])} from "
        f"{champion.model!r}; this model {candidate.label_column!r} {sorted(ours[2])} from "
        f"{candidate.model!r}"
    )


def compare_with_champion(
    settings: Settings, frame: pd.DataFrame, contract: FeatureContract, positive_class: str
) -> ChampionComparison:
    """Score the current ``champion`` (if any) on the candidate's held-out rows."""
    from ..registry import CHAMPION, ModelUnavailableError, alias_version, fetch_registered

    version = alias_version(settings, CHAMPION)
    if version is None:
        return ChampionComparison(version=None, metrics={})
    try:
        champion = fetch_registered(settings, CHAMPION, version)
        if (other := other_task(champion.contract, contract)) is not None:
            return ChampionComparison(version=version, metrics={}, other_task=other)
        metrics = classification_metrics(champion.pipeline, frame, contract, positive_class)
    # A champion that cannot score the rows (a removed feature, a missing artifact) loses the
    # comparison, with the reason: the candidate is never promoted over an unknown.
    except (ModelUnavailableError, KeyError, ValueError) as error:
        return ChampionComparison(version=version, metrics={}, error=str(error))
    return ChampionComparison(version=version, metrics=metrics)


def evaluate_model(
    model: Pipeline,
    frame: pd.DataFrame,
    contract: FeatureContract,
    params: Params,
    champion: ChampionComparison,
    *,
    training: TrainingRun,
    plots: Path,
) -> EvaluationReport:
    """Metrics, behaviour, slices, fairness, the champion comparison and the plots of one model."""
    positive = params.train.positive_class
    metrics = classification_metrics(model, frame, contract, positive)
    slices, slice_checks = slice_report(model, frame, contract, positive, params)
    checks = [
        *threshold_checks(metrics, params.gate),
        invariance_check(model, frame, contract, positive, params.train.seed),
        *directional_checks(model, frame, contract, positive, params.evaluate),
        *minimum_functionality_checks(model, frame, contract, params.evaluate),
        *slice_checks,
        champion_check(metrics, champion, params.gate.tolerance),
    ]
    return EvaluationReport(
        run_id=training.run_id,
        model_uri=training.model_uri,
        positive_class=positive,
        metrics=metrics,
        slices=slices,
        champion=champion,
        checks=checks,
        permutation_importance=write_plots(model, frame, contract, params, plots),
    )


def evaluate_latest(settings: Settings, params: Params) -> EvaluationReport:
    """The evaluate step from the project's own state: the latest run on the current data.

    What ``python -m <package> evaluate`` and the Dagster asset both call.
    """
    from ..contract import load_contract
    from ..data.warehouse import load_feature_table

    contract = load_contract(settings)
    data_version = data_tags(settings).get(TAG_DATA_VERSION)
    table = load_feature_table(settings, contract, rows="labelled")
    return run_evaluation(settings, params, table, contract, data_version)


def run_evaluation(
    settings: Settings,
    params: Params,
    table: pd.DataFrame,
    contract: FeatureContract,
    data_version: str | None = None,
) -> EvaluationReport:
    """The evaluate step: evaluate the latest training run's model and record the report.

    Args:
        settings: Where the tracking store, the registry and the reports are.
        params: The validated parameters (``gate``, ``evaluate``, ``train.positive_class``).
        table: The current feature table (the held-out rows are taken from it by id).
        contract: The feature contract.
        data_version: The current data version; when given, it must be the one trained on.

    Returns:
        The report (also in ``reports/evaluation/latest.json`` and on the run).

    Raises:
        TrainingRunMissingError: when there is no training run yet.
        EvaluationRefusedError: when the data changed since training.
        TrackingUnavailableError: when the tracking store cannot be reached.
    """
    import mlflow

    from ..tracking import connect
    from ..training import load_training_run

    training = load_training_run(settings)
    client = connect(settings)
    trained_on = client.get_run(training.run_id).data.tags.get(TAG_DATA_VERSION)
    if data_version is not None and trained_on not in (None, data_version):
        raise EvaluationRefusedError(
            f"run {training.run_id} was trained on data version {trained_on}, the current data "
            f"is {data_version}: run `make train` again"
        )
    folder = evaluation_dir(settings)
    report = _evaluate_run(
        client, settings, params, table, contract, training=training, folder=folder
    )
    metrics = report.flat_metrics()
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    with mlflow.start_run(run_id=training.run_id):
        mlflow.log_metrics(metrics)
        mlflow.log_text(report.to_json(), REPORT_ARTIFACT)
        mlflow.log_artifacts(str(folder / "plots"), "evaluation/plots")
        mlflow.set_tags(
            {
                "evaluation.passed": str(report.passed).lower(),
                "evaluation.failed": ",".join(report.failed) or "none",
                "evaluation.not_assessed": ",".join(report.not_assessed) or "none",
            }
        )
    return report


def evaluate_version(settings: Settings, params: Params, version: str) -> EvaluationReport:
    """Evaluate a registered model version on the current data and tag it with the verdict.

    What the registry sensor starts for each new version (see ``orchestration``): a version
    registered outside the loop (from a notebook, another pipeline) gets the tests and the tags
    the register step gives its own, so the promotion gate can judge it; a version the loop
    registered gets its verdict renewed against the current champion. The report goes to
    ``reports/evaluation/versions/v<version>/``; ``latest.json``, which the register step reads,
    is left alone.

    Raises:
        EvaluationRefusedError: when the version has no training run with held-out rows.
        TrackingUnavailableError: when the registry cannot be reached.
    """
    from mlflow.exceptions import MlflowException

    from ..contract import load_contract
    from ..data.warehouse import load_feature_table
    from ..gate import version_tags
    from ..tracking import connect
    from ..training import TrainingRun

    client = connect(settings)
    name = settings.model_name
    registered = client.get_model_version(name, version)
    if not registered.run_id or not registered.source:
        raise EvaluationRefusedError(
            f"{name} v{version} was not logged from an MLflow run: there are no held-out rows to "
            "evaluate it on; register models trained by `make train`"
        )
    run = client.get_run(registered.run_id)
    training = TrainingRun(
        run_id=registered.run_id,
        experiment_id=run.info.experiment_id,
        model_uri=registered.source,
        estimator=run.data.params.get("estimator", "unknown"),
        metrics={},
        seconds=0.0,
    )
    contract = load_contract(settings)
    table = load_feature_table(settings, contract, rows="labelled")
    folder = version_evaluation_dir(settings, version)
    try:
        report = _evaluate_run(
            client, settings, params, table, contract, training=training, folder=folder
        )
    except MlflowException as error:
        raise EvaluationRefusedError(
            f"{name} v{version} (run {registered.run_id}): {error.message}; only runs logged by "
            f"`make train` carry the held-out ids ({TEST_IDS_ARTIFACT})"
        ) from None
    for key, value in version_tags(run.data.tags, report).items():
        client.set_model_version_tag(name, version, key, value)
    return report


def _evaluate_run(
    client: MlflowClient,
    settings: Settings,
    params: Params,
    table: pd.DataFrame,
    contract: FeatureContract,
    *,
    training: TrainingRun,
    folder: Path,
) -> EvaluationReport:
    """Evaluate the model of `training` on its held-out rows; write the report into `folder`."""
    from ..tracking import load_sklearn_model, run_artifact_text

    test_ids = json.loads(run_artifact_text(client, training.run_id, TEST_IDS_ARTIFACT))
    frame = held_out_rows(table, contract, list(test_ids[contract.id_column]))
    model = load_sklearn_model(training.model_uri)
    champion = compare_with_champion(settings, frame, contract, params.train.positive_class)
    folder.mkdir(parents=True, exist_ok=True)
    report = evaluate_model(
        model, frame, contract, params, champion, training=training, plots=folder / "plots"
    )
    (folder / "latest.json").write_text(report.to_json(), encoding="utf-8")
    logger.info(
        "Held-out %s %.3f of %s; %d checks, failed: %s; not assessed: %s",
        HEADLINE,
        report.metrics[HEADLINE],
        training.model_uri,
        len(report.checks),
        ", ".join(report.failed) or "none",
        ", ".join(report.not_assessed) or "none",
    )
    return report
