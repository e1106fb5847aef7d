"""The evaluate step: held-out metrics, plots and the post-train tests that gate promotion.

The tests are of four kinds, each a named :class:`Check` with a reason:

* thresholds on held-out metrics (``gate.min_precision``, ``gate.min_roc_auc``); precision of the
  positive class is the headline;
* behaviour: invariance (the id and the sensitive attributes are not model inputs, and shuffling
  them moves no prediction), directional expectations and minimum-functionality cases from
  ``evaluate`` in params.yaml;
* slices and fairness on each sensitive attribute: per-slice precision, demographic-parity and
  equalized-odds differences (fairlearn) within ``gate`` bounds;

A check with nothing to judge (no sensitive column, no slice large enough, no expectation listed)
is *not assessed*, with the reason: never "passed". Whether that blocks promotion is the gate's
call (``gate.block_not_assessed``).
* the current ``champion`` scored on the same held-out rows: the candidate may trail it by at most
  ``gate.tolerance``.

The report goes to the training run in MLflow and to ``reports/evaluation/`` (JSON, DVC metrics
and plots).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .provenance import TAG_DATA_VERSION
from .training import TEST_IDS_ARTIFACT, load_training_run, model_input

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mlflow import MlflowClient
    from sklearn.pipeline import Pipeline

    from .config import EvaluateParams, GateParams, Params, Settings
    from .contract import FeatureContract

logger = logging.getLogger(__name__)

HEADLINE = "precision"
REPORT_FILE = "latest.json"
METRICS_FILE = "metrics.json"
PERMUTATION_ROWS = 1_000
# A directional violation is a probability that moves the wrong way by more than this.
DIRECTION_SLACK = 0.01
# Rates are compared and printed to this many decimals (0.1%).
RATE_DIGITS = 3


class EvaluationRefusedError(RuntimeError):
    """The model cannot be evaluated as asked (no run to evaluate, data changed since training)."""


CheckStatus = Literal["pass", "fail", "not_assessed"]


@dataclass(frozen=True)
class Check:
    """One post-train test: its name, its verdict, and why, in a sentence.

    ``not_assessed`` means there was nothing to judge; `detail` says why.
    """

    name: str
    status: CheckStatus
    detail: str

    @property
    def passed(self) -> bool:
        """True only for a check that was assessed and held."""
        return self.status == "pass"

    @classmethod
    def judged(cls, name: str, *, passed: bool, detail: str) -> Check:
        """A check that was assessed: it passed or it failed."""
        return cls(name, "pass" if passed else "fail", detail)

    @classmethod
    def not_assessed(cls, name: str, reason: str) -> Check:
        """A check with nothing to judge, and the reason."""
        return cls(name, "not_assessed", reason)


@dataclass(frozen=True)
class ChampionComparison:
    """The champion scored on the candidate's held-out rows."""

    version: str | None
    metrics: dict[str, float]
    error: str | None = None


def positive_probability(model: Pipeline, frame: pd.DataFrame, positive_class: str) -> np.ndarray:
    """The model's probability of `positive_class` for each row of model input `frame`."""
    classes = [str(label) for label in model.classes_]
    column = classes.index(positive_class)
    probabilities: np.ndarray = model.predict_proba(frame)[:, column]
    return probabilities


def classification_metrics(
    model: Pipeline, frame: pd.DataFrame, contract: FeatureContract, positive_class: str
) -> dict[str, float]:
    """Held-out metrics of the positive class: precision (the headline), recall, F1, AUCs."""
    from sklearn.metrics import (  # noqa: PLC0415
        accuracy_score,
        average_precision_score,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    truth = frame[contract.label_column].astype(str).to_numpy() == positive_class
    features = model_input(frame, contract)
    predicted = model.predict(features).astype(str) == positive_class
    score = positive_probability(model, features, positive_class)
    return {
        "precision": float(precision_score(truth, predicted, zero_division=0)),
        "recall": float(recall_score(truth, predicted, zero_division=0)),
        "f1": float(f1_score(truth, predicted, zero_division=0)),
        "accuracy": float(accuracy_score(truth, predicted)),
        "roc_auc": float(roc_auc_score(truth, score)),
        "average_precision": float(average_precision_score(truth, score)),
        "positive_rate": float(predicted.mean()),
        "n_rows": float(len(frame)),
    }


def threshold_checks(metrics: Mapping[str, float], gate: GateParams) -> list[Check]:
    """Held-out metrics against the gate's minimums."""
    checks = []
    for metric, minimum in (("precision", gate.min_precision), ("roc_auc", gate.min_roc_auc)):
        value = metrics[metric]
        checks.append(
            Check.judged(
                f"threshold.{metric}",
                passed=value >= minimum,
                detail=f"held-out {metric} {value:.3f} (minimum {minimum:.3f})",
            )
        )
    return checks


def invariance_check(
    model: Pipeline,
    frame: pd.DataFrame,
    contract: FeatureContract,
    positive_class: str,
    seed: int,
) -> Check:
    """The id and the sensitive attributes never change a prediction.

    Two tests, each able to fail: the fitted pipeline's input columns (``feature_names_in_``)
    must exclude them; and the held-out rows scored with *every* column of the feature table,
    then again with the id and the sensitive attributes shuffled, must get the same
    probabilities (a pipeline that picks a sensitive column by name would move).
    """
    ignored = [contract.id_column, *contract.sensitive_columns]
    inputs = [str(name) for name in getattr(model, "feature_names_in_", ())]
    leaked = [name for name in ignored if name in inputs]
    if leaked:
        return Check.judged(
            "behaviour.invariance",
            passed=False,
            detail=f"the model reads {', '.join(leaked)}, which must never be model inputs",
        )
    whole = frame[[name for name in contract.column_names if name != contract.label_column]]
    shuffled = whole.copy()
    rng = np.random.default_rng(seed)
    for column in ignored:
        shuffled[column] = rng.permutation(shuffled[column].to_numpy())
    before = positive_probability(model, whole, positive_class)
    after = positive_probability(model, shuffled, positive_class)
    moved = int((np.abs(before - after) > 1e-12).sum())  # noqa: PLR2004 (float equality)
    return Check.judged(
        "behaviour.invariance",
        passed=moved == 0,
        detail=(
            f"not model inputs: {', '.join(ignored)}; {moved} of {len(frame)} predictions moved "
            "when they were shuffled"
        ),
    )


def directional_checks(
    model: Pipeline,
    frame: pd.DataFrame,
    contract: FeatureContract,
    positive_class: str,
    params: EvaluateParams,
) -> list[Check]:
    """Each ``evaluate.directional`` expectation, on every held-out row."""
    if not params.directional:
        return [
            Check.not_assessed(
                "behaviour.directional", "evaluate.directional lists no expectation to test"
            )
        ]
    features = model_input(frame, contract)
    before = positive_probability(model, features, positive_class)
    checks = []
    for expectation in params.directional:
        changed = features.copy()
        changed[expectation.feature] = changed[expectation.feature] + expectation.change
        after = positive_probability(model, changed, positive_class)
        moved = after - before if expectation.expect == "not_more_likely" else before - after
        wrong = int((moved > DIRECTION_SLACK).sum())
        # Compared at the precision it is printed with: "5.0% (at most 5.0%)" is a pass.
        rate = round(wrong / len(frame), RATE_DIGITS)
        allowed = round(params.max_violation_rate, RATE_DIGITS)
        checks.append(
            Check.judged(
                f"behaviour.directional.{expectation.feature}",
                passed=rate <= allowed,
                detail=(
                    f"{expectation.feature} {expectation.change:+g}: {positive_class!r} "
                    f"{expectation.expect.replace('_', ' ')}; {wrong} of {len(frame)} rows "
                    f"({rate:.1%}) moved the wrong way (at most {allowed:.1%})"
                ),
            )
        )
    return checks


def typical_row(frame: pd.DataFrame, contract: FeatureContract) -> pd.DataFrame:
    """One made-up customer: the median of each numeric feature, the mode of each category."""
    row: dict[str, Any] = {}
    for column in contract.numeric_features:
        row[column] = float(frame[column].median())
    for column in contract.categorical_features:
        row[column] = frame[column].mode().iloc[0]
    return pd.DataFrame([row])[contract.feature_columns]


def minimum_functionality_checks(
    model: Pipeline, frame: pd.DataFrame, contract: FeatureContract, params: EvaluateParams
) -> list[Check]:
    """Each hand-made ``evaluate.cases`` customer must get the label it expects."""
    if not params.cases:
        return [Check.not_assessed("behaviour.cases", "evaluate.cases lists no case to test")]
    base = typical_row(frame, contract)
    checks = []
    for case in params.cases:
        row = base.copy()
        for column, value in case.features.items():
            row[column] = value if column in contract.categorical_features else float(value or 0)
        predicted = str(model.predict(row)[0])
        checks.append(
            Check.judged(
                f"behaviour.case.{case.name}",
                passed=predicted == case.expect,
                detail=f"{case.name}: predicted {predicted!r}, expected {case.expect!r}",
            )
        )
    return checks


def slice_report(
    model: Pipeline,
    frame: pd.DataFrame,
    contract: FeatureContract,
    positive_class: str,
    params: Params,
) -> tuple[dict[str, Any], list[Check]]:
    """Per-slice metrics and fairness differences for each sensitive attribute.

    Returns:
        The report (per attribute: per-slice precision, recall, selection rate, size; the
        demographic-parity and equalized-odds differences) and the checks against ``gate``.
    """
    from fairlearn.metrics import (  # noqa: PLC0415
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        selection_rate,
    )
    from sklearn.metrics import precision_score, recall_score  # noqa: PLC0415

    gate = params.gate
    truth = (frame[contract.label_column].astype(str) == positive_class).astype(int).to_numpy()
    predicted = (model.predict(model_input(frame, contract)).astype(str) == positive_class).astype(
        int
    )
    report: dict[str, Any] = {}
    checks = []
    for attribute in contract.sensitive_columns:
        groups = frame[attribute].astype(str).to_numpy()
        by_group = MetricFrame(
            metrics={
                "precision": lambda t, p: precision_score(t, p, zero_division=0),
                "recall": lambda t, p: recall_score(t, p, zero_division=0),
                "selection_rate": selection_rate,
                "count": lambda t, _p: len(t),
            },
            y_true=truth,
            y_pred=predicted,
            sensitive_features=groups,
        ).by_group
        slices = {
            str(group): {name: float(value) for name, value in row.items()}
            for group, row in by_group.iterrows()
        }
        parity = float(demographic_parity_difference(truth, predicted, sensitive_features=groups))
        odds = float(equalized_odds_difference(truth, predicted, sensitive_features=groups))
        report[attribute] = {
            "slices": slices,
            "demographic_parity_difference": parity,
            "equalized_odds_difference": odds,
        }
        gated = {
            group: values
            for group, values in slices.items()
            if values["count"] >= params.evaluate.min_slice_size
        }
        if gated:
            weakest = min(gated, key=lambda group: gated[group]["precision"])
            checks.append(
                Check.judged(
                    f"slices.{attribute}.min_precision",
                    passed=gated[weakest]["precision"] >= gate.min_slice_precision,
                    detail=(
                        f"weakest {attribute} slice {weakest!r}: precision "
                        f"{gated[weakest]['precision']:.3f} (minimum "
                        f"{gate.min_slice_precision:.3f})"
                    ),
                )
            )
        else:
            checks.append(
                Check.not_assessed(
                    f"slices.{attribute}.min_precision",
                    f"no {attribute} slice has {params.evaluate.min_slice_size} held-out rows "
                    "(evaluate.min_slice_size)",
                )
            )
        if len(slices) < 2:  # noqa: PLR2004 (a difference needs two groups)
            reason = f"the held-out rows hold {len(slices)} {attribute} group(s): none to compare"
            checks.append(Check.not_assessed(f"fairness.{attribute}.demographic_parity", reason))
            checks.append(Check.not_assessed(f"fairness.{attribute}.equalized_odds", reason))
            continue
        checks.append(
            Check.judged(
                f"fairness.{attribute}.demographic_parity",
                passed=parity <= gate.max_demographic_parity_difference,
                detail=(
                    f"demographic-parity difference {parity:.3f} "
                    f"(maximum {gate.max_demographic_parity_difference:.3f})"
                ),
            )
        )
        checks.append(
            Check.judged(
                f"fairness.{attribute}.equalized_odds",
                passed=odds <= gate.max_equalized_odds_difference,
                detail=(
                    f"equalized-odds difference {odds:.3f} "
                    f"(maximum {gate.max_equalized_odds_difference:.3f})"
                ),
            )
        )
    if not contract.sensitive_columns:
        checks.append(
            Check.not_assessed(
                "fairness",
                "the contract marks no column `meta.role: sensitive`: slices and fairness were "
                "not assessed",
            )
        )
    return report, checks


def champion_check(
    metrics: Mapping[str, float], champion: ChampionComparison, tolerance: float
) -> Check:
    """The candidate's headline metric may trail the champion's by at most `tolerance`."""
    if champion.version is None:
        # A rule, not a gap: the first model that passes its other checks becomes champion.
        return Check.judged(
            "champion.comparison", passed=True, detail="no champion yet: nothing to beat"
        )
    if champion.error is not None:
        return Check.judged(
            "champion.comparison",
            passed=False,
            detail=f"champion v{champion.version} could not score the held-out rows: "
            f"{champion.error}",
        )
    ours, theirs = metrics[HEADLINE], champion.metrics[HEADLINE]
    return Check.judged(
        "champion.comparison",
        passed=ours >= theirs - tolerance,
        detail=(
            f"{HEADLINE} {ours:.3f} vs champion v{champion.version} {theirs:.3f} on the same "
            f"held-out rows (tolerance {tolerance:.3f})"
        ),
    )


def compare_with_champion(
    client: MlflowClient,
    model_name: str,
    frame: pd.DataFrame,
    contract: FeatureContract,
    positive_class: str,
) -> ChampionComparison:
    """Score the current ``champion`` (if any) on the candidate's held-out rows."""
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    from .registry import CHAMPION, alias_version  # noqa: PLC0415
    from .tracking import load_sklearn_model  # noqa: PLC0415

    version = alias_version(client, model_name, CHAMPION)
    if version is None:
        return ChampionComparison(version=None, metrics={})
    try:
        champion = load_sklearn_model(f"models:/{model_name}/{version}")
        metrics = classification_metrics(champion, frame, contract, positive_class)
    except (MlflowException, KeyError, ValueError) as error:
        return ChampionComparison(version=version, metrics={}, error=str(error))
    return ChampionComparison(version=version, metrics=metrics)


def write_plots(
    model: Pipeline,
    frame: pd.DataFrame,
    contract: FeatureContract,
    params: Params,
    folder: Path,
) -> dict[str, float]:
    """Confusion matrix, ROC, precision-recall and permutation importance, as PNG and CSV.

    Returns:
        The mean permutation importance of each feature (drop in average precision).
    """
    import matplotlib as mpl  # noqa: PLC0415

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from sklearn.inspection import permutation_importance  # noqa: PLC0415
    from sklearn.metrics import (  # noqa: PLC0415
        ConfusionMatrixDisplay,
        PrecisionRecallDisplay,
        RocCurveDisplay,
        average_precision_score,
        make_scorer,
        precision_recall_curve,
        roc_curve,
    )

    folder.mkdir(parents=True, exist_ok=True)
    positive_class = params.train.positive_class
    features = model_input(frame, contract)
    truth = frame[contract.label_column].astype(str).to_numpy()
    predicted = model.predict(features).astype(str)
    score = positive_probability(model, features, positive_class)
    is_positive = truth == positive_class

    pd.DataFrame({"actual": truth, "predicted": predicted}).to_csv(
        folder / "confusion.csv", index=False
    )
    fpr, tpr, _ = roc_curve(is_positive, score)
    pd.DataFrame({"fpr": fpr, "tpr": tpr}).to_csv(folder / "roc.csv", index=False)
    precision, recall, _ = precision_recall_curve(is_positive, score)
    pd.DataFrame({"recall": recall, "precision": precision}).to_csv(
        folder / "precision_recall.csv", index=False
    )

    figure, axes = plt.subplots(figsize=(5, 4))
    ConfusionMatrixDisplay.from_predictions(truth, predicted, ax=axes, colorbar=False)
    _save(figure, folder / "confusion_matrix.png", "Confusion matrix (held-out)")
    figure, axes = plt.subplots(figsize=(5, 4))
    RocCurveDisplay.from_predictions(is_positive, score, ax=axes, name=positive_class)
    _save(figure, folder / "roc.png", "ROC (held-out)")
    figure, axes = plt.subplots(figsize=(5, 4))
    PrecisionRecallDisplay.from_predictions(is_positive, score, ax=axes, name=positive_class)
    _save(figure, folder / "precision_recall.png", "Precision-recall (held-out)")

    scorer = make_scorer(
        average_precision_score, response_method="predict_proba", pos_label=positive_class
    )
    importance = permutation_importance(
        model,
        features,
        truth,
        scoring=scorer,
        n_repeats=params.evaluate.permutation_repeats,
        random_state=params.train.seed,
        # Each repeat scores the whole pipeline once per feature: a sample keeps it to seconds.
        max_samples=min(len(features), PERMUTATION_ROWS),
    )
    means = pd.Series(importance.importances_mean, index=features.columns).sort_values()
    figure, axes = plt.subplots(figsize=(6, 0.3 * len(means) + 1.5))
    axes.barh(means.index, means.to_numpy())
    axes.set_xlabel("drop in average precision when shuffled")
    _save(figure, folder / "permutation_importance.png", "Permutation importance (held-out)")
    return {str(name): float(value) for name, value in means.sort_values(ascending=False).items()}


def _save(figure: Any, path: Path, title: str) -> None:  # noqa: ANN401 (matplotlib Figure)
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


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


def evaluate_model(
    model: Pipeline,
    frame: pd.DataFrame,
    contract: FeatureContract,
    params: Params,
    champion: ChampionComparison,
) -> dict[str, Any]:
    """Metrics, behaviour, slices, fairness and the champion comparison of one model.

    Returns:
        The report: ``metrics``, ``slices``, ``champion``, ``checks`` and ``passed``.
    """
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
    return {
        "headline": HEADLINE,
        "positive_class": positive,
        "metrics": metrics,
        "slices": slices,
        "champion": asdict(champion),
        "checks": [asdict(check) for check in checks],
        "failed": [check.name for check in checks if check.status == "fail"],
        "not_assessed": [check.name for check in checks if check.status == "not_assessed"],
        # No assessed check failed; what the not-assessed ones mean is the gate's decision.
        "passed": not any(check.status == "fail" for check in checks),
    }


def run_evaluation(
    settings: Settings,
    params: Params,
    table: pd.DataFrame,
    contract: FeatureContract,
    data_version: str | None = None,
) -> dict[str, Any]:
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
        EvaluationRefusedError: when there is no training run, or the data changed since.
        TrackingUnavailableError: when the tracking store cannot be reached.
    """
    import mlflow  # noqa: PLC0415

    from .tracking import connect, load_sklearn_model  # noqa: PLC0415

    training = load_training_run(settings)
    client = connect(settings)
    run = client.get_run(training.run_id)
    trained_on = run.data.tags.get(TAG_DATA_VERSION)
    if data_version is not None and trained_on not in (None, data_version):
        raise EvaluationRefusedError(
            f"run {training.run_id} was trained on data version {trained_on}, the current data "
            f"is {data_version}: run `make train` again"
        )
    test_ids = mlflow.artifacts.load_dict(f"runs:/{training.run_id}/{TEST_IDS_ARTIFACT}")
    frame = held_out_rows(table, contract, list(test_ids[contract.id_column]))
    model = load_sklearn_model(training.model_uri)
    champion = compare_with_champion(
        client, settings.model_name, frame, contract, params.train.positive_class
    )
    report = evaluate_model(model, frame, contract, params, champion)
    folder = settings.reports_dir / "evaluation"
    importance = write_plots(model, frame, contract, params, folder / "plots")
    report = {
        "run_id": training.run_id,
        "model_uri": training.model_uri,
        **report,
        "permutation_importance": importance,
    }
    (folder / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    flat = {f"test_{name}": value for name, value in report["metrics"].items()}
    flat["checks_failed"] = float(len(report["failed"]))
    (folder / METRICS_FILE).write_text(json.dumps(flat, indent=2) + "\n", encoding="utf-8")
    with mlflow.start_run(run_id=training.run_id):
        mlflow.log_metrics(flat)
        mlflow.log_dict(report, "evaluation/report.json")
        mlflow.log_artifacts(str(folder / "plots"), "evaluation/plots")
        mlflow.set_tags(
            {
                "evaluation.passed": str(report["passed"]).lower(),
                "evaluation.failed": ",".join(report["failed"]) or "none",
                "evaluation.not_assessed": ",".join(report["not_assessed"]) or "none",
            }
        )
    logger.info(
        "Held-out %s %.3f; %d checks, failed: %s; not assessed: %s",
        HEADLINE,
        report["metrics"][HEADLINE],
        len(report["checks"]),
        ", ".join(report["failed"]) or "none",
        ", ".join(report["not_assessed"]) or "none",
    )
    return report
