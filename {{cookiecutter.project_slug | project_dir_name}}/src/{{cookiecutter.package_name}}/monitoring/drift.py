"""Drift statistics: a window of current rows against a model version's reference profile.

Per feature, two views of the same shift:

* **PSI** (population stability index) says how *large* it is, on the reference's quantile bins
  (numeric) or categories (categorical): ``sum((cur - ref) * ln(cur / ref))``; 0.1 is a moderate
  shift and 0.2 a large one by the usual reading.
* A **test** says whether it is *real*: two-sample Kolmogorov-Smirnov for numeric features,
  chi-square on the reference-vs-current contingency table for categorical ones.

A feature drifts when its shift is both real and large (``p < monitor.p_value`` and
``PSI >= monitor.psi_threshold``): with thousands of rows a test alone flags shifts too small to
matter, and PSI alone flags noise in small windows. A real shift with a PSI between
``monitor.psi_moderate`` and ``monitor.psi_threshold`` is *moderate*: reported as a warning.

The data set is judged two ways, each counting the drifted features fully and the moderate ones at
``monitor.moderate_weight``, and it drifts when either reaches ``monitor.drift_share``:

* by **importance**: each feature weighs its share of the model's permutation importance (recorded
  by the evaluate step). A shift in the feature the model leans on most alarms on its own, even a
  moderate one, while a shift in a feature the model ignores does not.
* by **count**: the share of the features. A population change that moves many inputs at once
  (a segment that grows, a new market) is worth an alarm even where the model leans on none of
  them much: the model was not trained on that population.

The predictions drift when the score distribution passes the same two tests (with
``monitor.prediction_psi_threshold``). Missing values are the data-quality check's concern
(:mod:`.quality`): PSI and the tests compare the values that are present.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, computed_field

from .reference import CategoricalReference, NumericReference, bin_shares

if TYPE_CHECKING:
    from ..params import MonitorParams
    from .reference import ReferenceProfile

Severity = Literal["stable", "moderate", "drifted"]

# Proportions are floored at this before the log in PSI: an empty bin would make it infinite.
PSI_FLOOR = 1e-4


class FeatureDrift(BaseModel):
    """How one column moved between the reference and the window."""

    model_config = ConfigDict(frozen=True)

    feature: str
    kind: Literal["numeric", "categorical", "score"]
    psi: float
    test: Literal["ks", "chi2"]
    statistic: float
    p_value: float
    missing_reference: float
    missing_current: float
    severity: Severity
    weight: float  # the feature's share of the model's importance (0 for the score)
    reason: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def drifted(self) -> bool:
        """The shift is real and large."""
        return self.severity == "drifted"


class DriftResult(BaseModel):
    """Every feature's drift, the prediction drift and the data-set verdict."""

    model_config = ConfigDict(frozen=True)

    n_reference: int
    n_current: int
    features: list[FeatureDrift]
    prediction: FeatureDrift
    positive_rate_reference: float
    positive_rate_current: float
    importance_share: float  # drifted features' share of the model's importance
    feature_share: float  # drifted features' share of the features
    drift_share: float  # the larger of the two: what the data-set verdict compares
    weighted_by_importance: bool
    dataset_drift: bool
    prediction_drift: bool

    @computed_field  # type: ignore[prop-decorator]
    @property
    def drift_detected(self) -> bool:
        """The data set or the predictions drifted."""
        return self.dataset_drift or self.prediction_drift

    @property
    def moved(self) -> bool:
        """Some column, the scores included, shifted at least moderately."""
        return any(item.severity != "stable" for item in (*self.features, self.prediction))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def drifted_features(self) -> list[str]:
        """Names of the features that drifted."""
        return [feature.feature for feature in self.features if feature.drifted]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def warnings(self) -> list[str]:
        """The moderate shifts, each in a sentence (they alarm only in the data set's shares)."""
        return [
            f"{item.feature}: moderate shift ({item.reason}; weight {item.weight:.0%})"
            if item.kind != "score"
            else f"score: moderate shift ({item.reason})"
            for item in (*self.features, self.prediction)
            if item.severity == "moderate"
        ]


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two aligned share vectors (each summing to 1)."""
    ref = np.maximum(np.asarray(reference, dtype="float64"), PSI_FLOOR)
    cur = np.maximum(np.asarray(current, dtype="float64"), PSI_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def numeric_drift(
    name: str,
    reference: NumericReference,
    values: pd.Series,
    params: MonitorParams,
    *,
    kind: Literal["numeric", "score"] = "numeric",
    psi_threshold: float | None = None,
) -> FeatureDrift:
    """PSI on the reference's quantile bins, and the two-sample KS test against its sample."""
    from scipy.stats import ks_2samp

    numbers = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
    present = numbers[~np.isnan(numbers)]
    missing = float(1 - len(present) / len(numbers)) if len(numbers) else 0.0
    psi_value, statistic, p_value = 0.0, 0.0, 1.0  # nothing to compare: no evidence of drift
    if len(present) and reference.sample:
        current_shares = bin_shares(present, np.asarray(reference.edges))
        psi_value = psi(np.asarray(reference.proportions), current_shares)
        result = ks_2samp(np.asarray(reference.sample), present)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    threshold = params.psi_threshold if psi_threshold is None else psi_threshold
    return _verdict(
        name,
        kind,
        psi_value=psi_value,
        test="ks",
        statistic=statistic,
        p_value=p_value,
        missing_reference=reference.missing_share,
        missing_current=missing,
        params=params,
        psi_threshold=threshold,
    )


def categorical_drift(
    name: str, reference: CategoricalReference, values: pd.Series, params: MonitorParams
) -> FeatureDrift:
    """PSI over the reference's categories (new ones pooled), and the chi-square test."""
    from scipy.stats import chi2_contingency

    present = values.dropna().astype(str)
    missing = float(1 - len(present) / len(values)) if len(values) else 0.0
    categories = list(reference.counts)
    current_counts = present.value_counts()
    ref = np.array([reference.counts[category] for category in categories] + [0], dtype="float64")
    cur = np.array(
        [int(current_counts.get(category, 0)) for category in categories]
        + [int(current_counts[~current_counts.index.isin(categories)].sum())],
        dtype="float64",
    )
    psi_value, statistic, p_value = 0.0, 0.0, 1.0  # nothing to compare: no evidence of drift
    # Categories seen on neither side carry no information (and break the test's expected counts).
    table = np.vstack([ref, cur])[:, (ref + cur) > 0]
    if cur.sum() and ref.sum():
        psi_value = psi(ref / ref.sum(), cur / cur.sum())
        if table.shape[1] >= 2:  # noqa: PLR2004 (one category: nothing can shift)
            result = chi2_contingency(table)
            statistic, p_value = float(result.statistic), float(result.pvalue)
    return _verdict(
        name,
        "categorical",
        psi_value=psi_value,
        test="chi2",
        statistic=statistic,
        p_value=p_value,
        missing_reference=reference.missing_share,
        missing_current=missing,
        params=params,
        psi_threshold=params.psi_threshold,
    )


def _verdict(
    name: str,
    kind: Literal["numeric", "categorical", "score"],
    *,
    psi_value: float,
    test: Literal["ks", "chi2"],
    statistic: float,
    p_value: float,
    missing_reference: float,
    missing_current: float,
    params: MonitorParams,
    psi_threshold: float,
) -> FeatureDrift:
    severity: Severity = "stable"
    reason = "stable"
    if p_value < params.p_value and psi_value >= psi_threshold:
        severity = "drifted"
        reason = f"PSI {psi_value:.3f} >= {psi_threshold:g} and {test} p {p_value:.2g}"
    elif p_value < params.p_value and psi_value >= min(params.psi_moderate, psi_threshold):
        severity = "moderate"
        reason = f"PSI {psi_value:.3f} >= {params.psi_moderate:g} and {test} p {p_value:.2g}"
    return FeatureDrift(
        feature=name,
        kind=kind,
        psi=round(psi_value, 6),
        test=test,
        statistic=round(statistic, 6),
        p_value=float(f"{p_value:.6g}"),
        missing_reference=round(missing_reference, 6),
        missing_current=round(missing_current, 6),
        severity=severity,
        weight=0.0,  # set by detect_drift, which knows every feature
        reason=reason,
    )


def detect_drift(
    reference: ReferenceProfile, current: pd.DataFrame, params: MonitorParams
) -> DriftResult:
    """Compare a window of logged rows (features, ``score``, ``prediction``) with `reference`.

    Args:
        reference: The model version's reference profile.
        current: The window: one column per model input, plus ``score`` and ``prediction``.
        params: The ``monitor`` section of params.yaml.

    Returns:
        Per-feature drift, prediction drift and the data-set verdict.
    """
    unweighted = [
        numeric_drift(name, profile, window_column(current, name), params)
        for name, profile in reference.numeric.items()
    ] + [
        categorical_drift(name, profile, window_column(current, name), params)
        for name, profile in reference.categorical.items()
    ]
    names = [item.feature for item in unweighted]
    shares = importance_shares(names, reference.importance)
    weights = shares if shares is not None else equal_weights(names)
    features = [
        item.model_copy(update={"weight": round(weights[item.feature], 6)}) for item in unweighted
    ]
    prediction = numeric_drift(
        "score",
        reference.score,
        current["score"],
        params,
        kind="score",
        psi_threshold=params.prediction_psi_threshold,
    )
    counts = {"drifted": 1.0, "moderate": params.moderate_weight, "stable": 0.0}
    # Rounded as reported: a sum of equal weights lands a hair under its threshold otherwise.
    by_importance = round(sum(item.weight * counts[item.severity] for item in features), 6)
    by_count = round(sum(counts[item.severity] for item in features) / max(len(features), 1), 6)
    share = max(by_importance, by_count)
    positive = current["prediction"].astype(str) == reference.positive_class
    return DriftResult(
        n_reference=reference.n_rows,
        n_current=len(current),
        features=features,
        prediction=prediction,
        positive_rate_reference=round(reference.positive_rate, 6),
        positive_rate_current=round(float(positive.mean()) if len(positive) else 0.0, 6),
        importance_share=by_importance,
        feature_share=by_count,
        drift_share=share,
        weighted_by_importance=shares is not None,
        dataset_drift=bool(features) and share >= params.drift_share,
        prediction_drift=prediction.drifted,
    )


def importance_shares(names: list[str], importance: dict[str, float]) -> dict[str, float] | None:
    """Each feature's share of the model's permutation importance (negative counts as none).

    None when no importance was recorded for these features, or none of it is positive (a model
    that leans on nothing measurable): then every feature counts alike.
    """
    positive = {name: max(float(importance.get(name, 0.0)), 0.0) for name in names}
    total = sum(positive.values())
    if total <= 0:
        return None
    return {name: value / total for name, value in positive.items()}


def equal_weights(names: list[str]) -> dict[str, float]:
    """Every feature counts alike."""
    return {name: 1 / len(names) for name in names}


def window_column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A model input of the window; a column the log lacks counts as entirely missing.

    The data-quality check names such a column (:func:`.quality.check_quality`).
    """
    if name in frame.columns:
        return frame[name]
    return pd.Series([None] * len(frame), index=frame.index, dtype="object")
