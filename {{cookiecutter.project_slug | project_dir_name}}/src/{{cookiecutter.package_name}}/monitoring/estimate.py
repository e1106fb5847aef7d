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
inputs move, ``P(label | inputs)`` does not). Nothing without labels can confirm that, and it is
most in doubt exactly when the inputs moved. So when the drift check finds any column moved (a
drifted or moderate feature, or the scores), the interval also spans the labels of the rows the
reference does not account for: that share of the window (the total variation distance between
its scores and the reference's, over the reference's bins) is taken to have unknown labels,
anywhere from all negative to all positive, a partial-identification bound in the manner of
Manski. The point estimate and its breach verdict stay the calibrated ones; only the stated
uncertainty widens, as far as the shift is large. When labels change while the inputs do not
(flipped at the source), no label-free estimate can tell: the realised figures
(:mod:`.performance`) stay the final word, and the report shows both side by side.

We write the calculation rather than depend on NannyML: it is a few lines over numpy, while
NannyML 0.13 does not import from a clean install (it needs statsmodels without declaring it) and
brings 1.9 GB of dependencies, a usage-analytics client among them (measured; see the template's
``docs/architecture.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict

from .reference import bin_shares

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
    # The inputs moved, so the interval spans rows the reference does not explain (this share).
    unexplained_share: float = 0.0
    breach: bool
    reasons: list[str]


def estimate_performance(
    reference: ReferenceProfile,
    window: pd.DataFrame,
    params: MonitorParams,
    *,
    inputs_moved: bool = False,
) -> PerformanceEstimate | None:
    """Estimate the window's precision and recall from its scores (see the module docstring).

    Args:
        reference: The model version's profile: its calibration map and held-out baseline.
        window: Logged rows with ``score`` (the positive-class probability) and ``prediction``.
        params: ``estimate_z``, ``max_precision_drop`` and ``max_recall_drop``.
        inputs_moved: The drift check found a column moved: the intervals then also span every
            labelling of the rows the reference does not explain.

    Returns:
        The estimate, or None when the version recorded no calibration (trained before it was).
    """
    calibration = reference.calibration
    if calibration is None:
        return None
    scores = window["score"].astype("float64").to_numpy()
    probability = calibration.probability(scores)
    positive = window["prediction"].astype(str).to_numpy() == reference.positive_class
    unknown = unexplained(reference, scores) if inputs_moved and len(scores) else 0.0
    tp = Positives.among(probability[positive], unknown)  # among the rows predicted positive
    fn = Positives.among(probability[~positive], unknown)  # among those predicted negative
    n_positive = int(positive.sum())

    def interval(value: float, sd: float, low: float, high: float) -> Figure:
        # The sampling spread and the map's own error, around the bounds the unexplained rows
        # allow (both bounds are the estimate itself when nothing is unexplained).
        half = params.estimate_z * math.sqrt(sd**2 + calibration.error_calibrated**2)
        return Figure(value, max(low - half, 0.0), min(high + half, 1.0))

    precision = recall = UNDEFINED
    if n_positive:
        precision = interval(
            tp.expected / n_positive,
            math.sqrt(tp.variance) / n_positive,
            (tp.expected - tp.down) / n_positive,
            (tp.expected + tp.up) / n_positive,
        )
    if tp.expected + fn.expected > 0:
        total = tp.expected + fn.expected
        recall = interval(
            tp.expected / total,
            # Delta method for TP / (TP + FN), TP and FN independent.
            math.sqrt(fn.expected**2 * tp.variance + tp.expected**2 * fn.variance) / total**2,
            share(tp.expected - tp.down, fn.expected + fn.up),
            share(tp.expected + tp.up, fn.expected - fn.down),
        )

    reasons = []
    for metric, figure, drop in (
        ("precision", precision, params.max_precision_drop),
        ("recall", recall, params.max_recall_drop),
    ):
        floor = reference.baseline[metric] - drop
        if figure.value is None or figure.value < floor:
            shown = "undefined" if figure.value is None else f"{figure.value:.3f}"
            reasons.append(
                f"estimated {metric} {shown} is below {floor:.3f} "
                f"(held-out {reference.baseline[metric]:.3f} - {drop:g})"
            )
    return PerformanceEstimate(
        n_rows=len(window),
        n_predicted_positive=n_positive,
        precision=rounded(precision.value),
        precision_low=rounded(precision.low),
        precision_high=rounded(precision.high),
        recall=rounded(recall.value),
        recall_low=rounded(recall.low),
        recall_high=rounded(recall.high),
        calibration_error=calibration.error_calibrated,
        unexplained_share=round(unknown, 6),
        breach=bool(reasons),
        reasons=reasons,
    )


@dataclass(frozen=True)
class Positives:
    """The expected positives among some rows, and their variance.

    ``down`` and ``up`` are how far the rows the reference does not explain could move the
    expected count: down if those rows were all negative, up if all positive.
    """

    expected: float
    variance: float
    down: float
    up: float

    @classmethod
    def among(cls, probability: np.ndarray, unknown: float) -> Positives:
        """From the rows' calibrated probabilities and the unexplained share (`unexplained`)."""
        expected = float(probability.sum())
        return cls(
            expected=expected,
            variance=float(np.sum(probability * (1 - probability))),
            down=unknown * expected,
            up=unknown * (len(probability) - expected),
        )


@dataclass(frozen=True)
class Figure:
    """An estimated figure and its interval; all None when the figure is undefined."""

    value: float | None
    low: float | None
    high: float | None


UNDEFINED = Figure(None, None, None)


def rounded(number: float | None) -> float | None:
    """As reported: six decimals."""
    return None if number is None else round(number, 6)


def unexplained(reference: ReferenceProfile, scores: np.ndarray) -> float:
    """The share of the window the reference does not account for, judged by the scores.

    The total variation distance between the window's and the reference's scores over the
    reference's bins: the share of rows beyond the reference's share of their bin, summed. Which
    rows those are is unknowable, so the estimate spreads the share over every row. Without a
    shift it is sampling noise, so the estimate asks for it only when the drift check found the
    inputs moved.
    """
    current = bin_shares(scores, np.asarray(reference.score.edges, dtype="float64"))
    return float(np.clip(current - np.asarray(reference.score.proportions), 0.0, None).sum())


def share(positives: float, missed: float) -> float:
    """Recall from expected true positives and false negatives (0 when there are none)."""
    total = positives + missed
    return positives / total if total > 0 else 0.0
