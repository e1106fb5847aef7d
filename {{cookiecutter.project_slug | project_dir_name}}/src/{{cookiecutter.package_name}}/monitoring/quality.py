"""Data-quality alarms: inputs that are broken, not merely moved.

Drift (:mod:`.drift`) asks whether the window's distribution moved; a small share of broken rows
hardly moves it, yet each broken row gets a prediction no one should trust. Three checks per
feature, each against the reference the model version was trained with:

* **Unseen categories**: values of a categorical feature the model never saw. The encoder maps them
  all to "unknown", so the model scores them blind. Alarm when their share of the window's rows
  exceeds ``monitor.max_unseen_share``.
* **Missing-value surge**: the missing share grew by more than ``monitor.max_missing_increase``
  (an upstream job that stopped filling a column, a renamed source field).
* **Out of bounds**: numeric values outside the contract's ``minimum``/``maximum`` (recorded in the
  reference profile at training); alarm when their share exceeds
  ``monitor.max_out_of_bounds_share``.

Each issue names the feature, the share of rows and an example value, so the alarm says where to
look. Retraining fixes none of these: they raise ``data_quality``, which alarms without
recommending a retrain.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, computed_field

from .drift import window_column

if TYPE_CHECKING:
    from ..params import MonitorParams
    from .reference import CategoricalReference, NumericReference, ReferenceProfile

logger = logging.getLogger(__name__)

IssueKind = Literal["unseen_category", "missing_increase", "out_of_bounds"]


class QualityIssue(BaseModel):
    """One feature's broken rows: what is wrong, how many, and one of them."""

    model_config = ConfigDict(frozen=True)

    feature: str
    kind: IssueKind
    share: float  # of the window's rows
    threshold: float
    example: str | None  # one offending value, as text (None: the value is missing)
    message: str


class QualityResult(BaseModel):
    """Every data-quality issue of the window; any issue is an alarm."""

    model_config = ConfigDict(frozen=True)

    n_rows: int
    issues: list[QualityIssue]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def alarm(self) -> bool:
        """At least one feature broke a data-quality threshold."""
        return bool(self.issues)


def check_quality(
    reference: ReferenceProfile, window: pd.DataFrame, params: MonitorParams
) -> QualityResult:
    """Check every model input of `window` against the reference (see the module docstring).

    Args:
        reference: The model version's reference profile.
        window: The rows to check: one column per model input (a column it lacks is missing).
        params: ``max_unseen_share``, ``max_missing_increase`` and ``max_out_of_bounds_share``.
    """
    absent = [name for name in (*reference.numeric, *reference.categorical) if name not in window]
    if absent:
        logger.warning("No logged values for %s: counted as missing", ", ".join(absent))
    issues: list[QualityIssue] = []
    for name, numeric in reference.numeric.items():
        values = window_column(window, name)
        issues += _missing(name, numeric.missing_share, values, params)
        issues += _out_of_bounds(name, numeric, values, params)
    for name, categorical in reference.categorical.items():
        values = window_column(window, name)
        issues += _missing(name, categorical.missing_share, values, params)
        issues += _unseen(name, categorical, values, params)
    return QualityResult(n_rows=len(window), issues=issues)


def _missing(
    name: str, reference_share: float, values: pd.Series, params: MonitorParams
) -> list[QualityIssue]:
    share = float(values.isna().mean()) if len(values) else 0.0
    if share - reference_share <= params.max_missing_increase:
        return []
    return [
        QualityIssue(
            feature=name,
            kind="missing_increase",
            share=round(share, 6),
            threshold=params.max_missing_increase,
            example=None,
            message=(
                f"{name}: missing in {share:.1%} of rows, {reference_share:.1%} in the reference "
                f"(a rise above {params.max_missing_increase:.0%} is an alarm)"
            ),
        )
    ]


def _out_of_bounds(
    name: str, reference: NumericReference, values: pd.Series, params: MonitorParams
) -> list[QualityIssue]:
    if reference.minimum is None and reference.maximum is None:
        return []
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    outside = pd.Series(False, index=numbers.index)
    if reference.minimum is not None:
        outside |= numbers < reference.minimum
    if reference.maximum is not None:
        outside |= numbers > reference.maximum
    share = float(outside.mean()) if len(outside) else 0.0
    if share <= params.max_out_of_bounds_share:
        return []
    bounds = f"[{_bound(reference.minimum)}, {_bound(reference.maximum)}]"
    example = numbers[outside].iloc[0]
    return [
        QualityIssue(
            feature=name,
            kind="out_of_bounds",
            share=round(share, 6),
            threshold=params.max_out_of_bounds_share,
            example=f"{example:g}",
            message=(
                f"{name}: {share:.1%} of rows outside the contract's {bounds}, e.g. {example:g}"
            ),
        )
    ]


def _unseen(
    name: str, reference: CategoricalReference, values: pd.Series, params: MonitorParams
) -> list[QualityIssue]:
    present = values.dropna().astype(str)
    unseen = present[~present.isin(list(reference.counts))]
    share = len(unseen) / len(values) if len(values) else 0.0
    if share <= params.max_unseen_share:
        return []
    counts = unseen.value_counts()
    example = str(counts.index[0])  # the most frequent one
    return [
        QualityIssue(
            feature=name,
            kind="unseen_category",
            share=round(share, 6),
            threshold=params.max_unseen_share,
            example=example,
            message=(
                f"{name}: {share:.1%} of rows hold {len(counts)} value(s) the model never saw, "
                f"e.g. {example!r}"
            ),
        )
    ]


def _bound(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:g}"
