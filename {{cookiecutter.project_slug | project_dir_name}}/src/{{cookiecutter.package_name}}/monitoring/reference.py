"""The reference a model version is monitored against: what its inputs and scores looked like.

A :class:`ReferenceProfile` is built from the model's held-out rows (recorded by the train step as
``split/test_ids.json``): per numeric feature, PSI bin edges at the reference quantiles, the share
of rows in each bin and a sample of values for the KS test; per categorical feature, the count of
each category; the missing share of every feature; the distribution of the model's scores; and the
held-out precision and recall that performance is compared with; the contract's bounds of each
numeric feature (the data-quality check's limits); and how well the scores are calibrated, with
the map that calibrates them (what the label-free performance estimate reads). Held-out rows, not
training rows, because the model's scores on rows it was fitted to are sharper than on any new data.

The train step builds the profile from the held-out rows of its own split and records it as
``monitoring/reference.json`` on the run (:func:`log_reference_profile`), so every model version
carries the reference it was judged on. The monitor reads it back (:func:`recorded_reference`);
it never rebuilds one from today's feature table, which after a retrain holds other rows. The
evaluate step's permutation importance (``evaluation/report.json`` on the same run) joins the
profile when it is read back: it weighs each feature's drift.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from ..config import ConfigError
from ..errors import StepError

if TYPE_CHECKING:
    from pathlib import Path

    from sklearn.pipeline import Pipeline

    from ..config import Settings
    from ..contract import FeatureContract

logger = logging.getLogger(__name__)

REFERENCE_ARTIFACT = "monitoring/reference.json"
# KS needs raw values; beyond this many the sample is thinned (the test's power hardly changes).
MAX_SAMPLE = 5_000


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NumericReference(_Frozen):
    """A numeric column in the reference: bins, their shares, a sample and the missing share."""

    edges: list[float]  # interior PSI bin edges (reference quantiles, distinct)
    proportions: list[float]  # share of non-missing values per bin (len(edges) + 1)
    sample: list[float]  # non-missing values, for the KS test and the plots
    missing_share: float
    count: int
    minimum: float | None = None  # the contract's bounds (None: unbounded, or not recorded)
    maximum: float | None = None


class CategoricalReference(_Frozen):
    """A categorical column in the reference: the count of each value and the missing share."""

    counts: dict[str, int]
    missing_share: float
    count: int


class Calibration(_Frozen):
    """How well the model's scores match the rate of positives, and the map that corrects them.

    The map is an isotonic regression of the held-out labels on the scores, kept as its
    breakpoints: ``numpy.interp(score, scores, probabilities)`` is the calibrated probability.
    The errors are expected calibration errors (10 equal-width bins) on the held-out rows, before
    and after the map; the map's own error is measured out of fold (fitted on one half, measured
    on the other), so it is not flattered by being fitted to the same rows.
    """

    scores: list[float]
    probabilities: list[float]
    error_raw: float
    error_calibrated: float

    def probability(self, scores: np.ndarray) -> np.ndarray:
        """The calibrated probability of the positive class for each score."""
        return np.asarray(np.interp(scores, self.scores, self.probabilities), dtype="float64")


class ReferenceProfile(_Frozen):
    """What a model version's inputs and outputs looked like on its held-out rows."""

    model_name: str
    model_version: str | None
    run_id: str | None
    created_at: str
    positive_class: str
    n_rows: int
    numeric: dict[str, NumericReference]
    categorical: dict[str, CategoricalReference]
    score: NumericReference
    positive_rate: float
    baseline: dict[str, float]  # held-out precision and recall of the positive class
    calibration: Calibration | None = None  # None: recorded before calibration was
    # The evaluate step's permutation importance per feature; joined when read back (empty: none).
    importance: dict[str, float] = {}

    def to_json(self) -> str:
        """The profile as JSON."""
        return self.model_dump_json(indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ReferenceProfile:
        """Read a profile written by :meth:`to_json`."""
        return cls.model_validate_json(text)


def numeric_reference(
    values: pd.Series,
    bins: int,
    seed: int = 0,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> NumericReference:
    """Bin edges at the quantiles of `values`, the share per bin, and a sample of the values.

    Args:
        values: The reference values (missing ones count towards ``missing_share`` only).
        bins: Number of quantile bins; tied quantiles merge, so there may be fewer.
        seed: Seed of the thinning when there are more than :data:`MAX_SAMPLE` values.
        minimum: The smallest value the contract allows (recorded for the data-quality check).
        maximum: The largest.
    """
    numbers = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
    present = numbers[~np.isnan(numbers)]
    missing = float(1 - len(present) / len(numbers)) if len(numbers) else 0.0
    if len(present) == 0:
        return NumericReference(
            edges=[],
            proportions=[1.0],
            sample=[],
            missing_share=missing,
            count=0,
            minimum=minimum,
            maximum=maximum,
        )
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
    proportions = bin_shares(present, edges)
    sample = present
    if len(present) > MAX_SAMPLE:
        sample = np.random.default_rng(seed).choice(present, MAX_SAMPLE, replace=False)
    return NumericReference(
        edges=[float(edge) for edge in edges],
        proportions=[float(share) for share in proportions],
        sample=[float(value) for value in sample],
        missing_share=missing,
        count=len(present),
        minimum=minimum,
        maximum=maximum,
    )


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The share of `values` in each bin; bin ``i`` holds ``edges[i-1] <= v < edges[i]``."""
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    total = counts.sum()
    return counts / total if total else counts.astype("float64")


def categorical_reference(values: pd.Series) -> CategoricalReference:
    """The count of each category (as text) and the missing share."""
    present = values.dropna().astype(str)
    missing = float(1 - len(present) / len(values)) if len(values) else 0.0
    counts = present.value_counts()
    return CategoricalReference(
        counts={str(key): int(value) for key, value in counts.items()},
        missing_share=missing,
        count=len(present),
    )


def build_reference_profile(
    frame: pd.DataFrame,
    model: Pipeline,
    contract: FeatureContract,
    positive_class: str,
    *,
    bins: int = 10,
    model_name: str = "",
    model_version: str | None = None,
    run_id: str | None = None,
) -> ReferenceProfile:
    """Profile `frame` (held-out rows with their labels) and `model`'s scores on it.

    Args:
        frame: Rows the model was not fitted to, with the contract's features and label.
        model: The fitted pipeline.
        contract: The feature contract (which columns are numeric, categorical, the label).
        positive_class: The label whose probability is the score.
        bins: PSI bins per numeric feature.
        model_name: Registered model name (recorded in the profile).
        model_version: Registered version, when known.
        run_id: The training run.

    Returns:
        The profile.
    """
    from sklearn.metrics import precision_score, recall_score

    features = frame[contract.feature_columns]
    classes = [str(label) for label in model.classes_]
    scores = model.predict_proba(features)[:, classes.index(positive_class)]
    predicted = np.asarray(model.predict(features)).astype(str) == positive_class
    truth = frame[contract.label_column].astype(str).to_numpy() == positive_class
    return ReferenceProfile(
        model_name=model_name,
        model_version=model_version,
        run_id=run_id,
        created_at=datetime.now(tz=UTC).isoformat(timespec="seconds"),
        positive_class=positive_class,
        n_rows=len(frame),
        numeric={
            name: numeric_reference(
                frame[name],
                bins,
                minimum=contract.column(name).minimum,
                maximum=contract.column(name).maximum,
            )
            for name in contract.numeric_features
        },
        categorical={
            name: categorical_reference(frame[name]) for name in contract.categorical_features
        },
        score=numeric_reference(pd.Series(scores), bins),
        positive_rate=float(predicted.mean()) if len(predicted) else math.nan,
        baseline={
            "precision": float(precision_score(truth, predicted, zero_division=0)),
            "recall": float(recall_score(truth, predicted, zero_division=0)),
        },
        calibration=calibrate(scores, truth) if 0 < truth.sum() < len(truth) else None,
    )


def calibrate(scores: np.ndarray, truth: np.ndarray, bins: int = 10) -> Calibration:
    """Fit the map from `scores` to the rate of positives (`truth`) and measure calibration.

    Args:
        scores: The model's positive-class scores on held-out rows.
        truth: Whether each row is positive.
        bins: Equal-width bins of the expected calibration error.
    """
    from sklearn.isotonic import IsotonicRegression

    def fitted(rows: np.ndarray) -> IsotonicRegression:
        isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        return isotonic.fit(scores[rows], truth[rows].astype("float64"))

    # Out of fold: each half is calibrated by the map fitted on the other.
    halves = np.arange(len(scores)) % 2 == 0
    out_of_fold = np.empty(len(scores))
    for half in (halves, ~halves):
        out_of_fold[half] = fitted(~half).predict(scores[half])
    everything = fitted(np.ones(len(scores), dtype=bool))
    return Calibration(
        scores=[float(value) for value in everything.X_thresholds_],
        probabilities=[float(value) for value in everything.y_thresholds_],
        error_raw=round(calibration_error(scores, truth, bins), 6),
        error_calibrated=round(calibration_error(out_of_fold, truth, bins), 6),
    )


def calibration_error(probabilities: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the row-weighted gap between probability and positive rate."""
    which = np.minimum((probabilities * bins).astype(int), bins - 1)
    gaps = [
        abs(float(probabilities[which == index].mean()) - float(truth[which == index].mean()))
        * float(np.mean(which == index))
        for index in range(bins)
        if np.any(which == index)
    ]
    return float(sum(gaps))


def log_reference_profile(profile: ReferenceProfile) -> None:
    """Record `profile` on the active MLflow run (the train step does this for every model)."""
    import mlflow

    mlflow.log_text(profile.to_json(), REFERENCE_ARTIFACT)


class ReferenceMissingError(StepError):
    """The model version carries no recorded reference profile; the message says what to run."""


def recorded_reference(settings: Settings, version: str) -> ReferenceProfile:
    """The reference profile recorded with registered version `version` at training time.

    Raises:
        ReferenceMissingError: when its run has none (a model trained before references were
            recorded, or logged by other code): retrain and register it.
    """
    from mlflow.exceptions import MlflowException

    from ..evaluation.report import REPORT_ARTIFACT, EvaluationReport
    from ..tracking import connect, run_artifact_text

    client = connect(settings, create=False)
    run_id = str(client.get_model_version(settings.model_name, version).run_id)
    try:
        text = run_artifact_text(client, run_id, REFERENCE_ARTIFACT)
    except (MlflowException, OSError) as error:
        raise ReferenceMissingError(
            f"{settings.model_name} v{version} (run {run_id}) has no {REFERENCE_ARTIFACT}: the "
            "train step records it; train, register and promote a new version (make all)"
        ) from error
    update: dict[str, object] = {"model_version": version}
    try:
        evaluation = run_artifact_text(client, run_id, REPORT_ARTIFACT)
        update["importance"] = EvaluationReport.model_validate_json(
            evaluation
        ).permutation_importance
    except (MlflowException, OSError, ValidationError):
        # Registered without the evaluate step's report: every feature's drift counts alike.
        logger.warning(
            "v%s has no %s: drift is not weighted by importance", version, REPORT_ARTIFACT
        )
    return ReferenceProfile.from_json(text).model_copy(update=update)


def load_reference_file(path: Path) -> ReferenceProfile:
    """A profile from a JSON file (``monitor --reference``).

    Raises:
        ConfigError: when the file is missing or is not a reference profile.
    """
    try:
        return ReferenceProfile.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError) as error:
        raise ConfigError(
            f"--reference {path}: not a readable reference profile ({error})"
        ) from error
