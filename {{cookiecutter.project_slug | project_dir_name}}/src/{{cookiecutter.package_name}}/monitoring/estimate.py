"""Performance before labels arrive: precision and recall estimated from calibrated scores.

Confidence-based performance estimation (the idea of NannyML's CBPE): when a model's probabilities
are calibrated, a row scored ``q`` is positive with probability ``q``. So, for a window of scored
rows, without a single label:

* expected true positives ``TP = sum(q)`` over the rows predicted positive, and expected false
  negatives ``FN = sum(q)`` over the rows predicted negative;
* precision ``TP / (rows predicted positive)`` and recall ``TP / (TP + FN)``.

The train step checks calibration on the held-out rows and records the map that calibrates the
scores (an isotonic regression, :class:`.reference.Calibration`); ``q`` is the score through that
map. The uncertainty is the spread of the realised figure if every label were drawn from its
``q``: each row is a Bernoulli draw, so ``var(TP) = sum(q (1 - q))`` over the predicted positives
(and likewise for ``FN``; recall's variance follows by the delta method). The interval is the
estimate plus or minus ``monitor.estimate_z`` of those standard deviations, widened by the map's
out-of-fold calibration error (a map fitted on a finite sample is itself uncertain).

The estimate holds while the relation between inputs and labels holds (covariate shift: the
inputs move, ``P(label | inputs)`` does not). When the relation itself changes (concept drift),
only labels can tell: the realised figures (:mod:`.performance`) stay the final word, and the
report shows both side by side.

We write the calculation rather than depend on NannyML: it is a few lines over numpy, while
NannyML 0.13 does not import from a clean install (it needs statsmodels without declaring it) and
brings 1.9 GB of dependencies, a usage-analytics client among them (measured; see the template's
``docs/architecture.md``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import pandas as pd

    from ..params import MonitorParams
    from .reference import ReferenceProfile


class PerformanceEstimate(BaseModel):
    """A window's estimated precision and recall with their intervals, and the breach verdict."""

    model_config = ConfigDict(frozen=True)

    n_rows: int
    n_predicted_positive: int
    precision: float | None  # None: no row predicted positive
    precision_low: float | None
    precision_high: float | None
    recall: float | None  # None: no positive expected at all
    recall_low: float | None
    recall_high: float | None
    calibration_error: float  # the map's out-of-fold error, added to each interval
    breach: bool
    reasons: list[str]


def estimate_performance(
    reference: ReferenceProfile, window: pd.DataFrame, params: MonitorParams
) -> PerformanceEstimate | None:
    """Estimate the window's precision and recall from its scores (see the module docstring).

    Args:
        reference: The model version's profile: its calibration map and held-out baseline.
        window: Logged rows with ``score`` (the positive-class probability) and ``prediction``.
        params: ``estimate_z``, ``max_precision_drop`` and ``max_recall_drop``.

    Returns:
        The estimate, or None when the version recorded no calibration (trained before it was).
    """
    calibration = reference.calibration
    if calibration is None:
        return None
    scores = window["score"].astype("float64").to_numpy()
    probability = calibration.probability(scores)
    positive = window["prediction"].astype(str).to_numpy() == reference.positive_class
    true_positive, false_negative = probability[positive], probability[~positive]
    tp, fn = float(true_positive.sum()), float(false_negative.sum())
    tp_variance = float(np.sum(true_positive * (1 - true_positive)))
    fn_variance = float(np.sum(false_negative * (1 - false_negative)))
    error = calibration.error_calibrated

    precision = precision_sd = None
    if positive.any():
        precision = tp / int(positive.sum())
        precision_sd = math.sqrt(tp_variance) / int(positive.sum())
    recall = recall_sd = None
    if tp + fn > 0:
        recall = tp / (tp + fn)
        # Delta method for TP / (TP + FN), TP and FN independent.
        recall_sd = math.sqrt(fn**2 * tp_variance + tp**2 * fn_variance) / (tp + fn) ** 2

    def interval(value: float | None, sd: float | None) -> tuple[float | None, float | None]:
        if value is None or sd is None:
            return None, None
        half = params.estimate_z * math.sqrt(sd**2 + error**2)
        return round(max(value - half, 0.0), 6), round(min(value + half, 1.0), 6)

    reasons = []
    for metric, value, drop in (
        ("precision", precision, params.max_precision_drop),
        ("recall", recall, params.max_recall_drop),
    ):
        floor = reference.baseline[metric] - drop
        if value is None or value < floor:
            shown = "undefined" if value is None else f"{value:.3f}"
            reasons.append(
                f"estimated {metric} {shown} is below {floor:.3f} "
                f"(held-out {reference.baseline[metric]:.3f} - {drop:g})"
            )
    precision_low, precision_high = interval(precision, precision_sd)
    recall_low, recall_high = interval(recall, recall_sd)
    return PerformanceEstimate(
        n_rows=len(window),
        n_predicted_positive=int(positive.sum()),
        precision=None if precision is None else round(precision, 6),
        precision_low=precision_low,
        precision_high=precision_high,
        recall=None if recall is None else round(recall, 6),
        recall_low=recall_low,
        recall_high=recall_high,
        calibration_error=error,
        breach=bool(reasons),
        reasons=reasons,
    )
