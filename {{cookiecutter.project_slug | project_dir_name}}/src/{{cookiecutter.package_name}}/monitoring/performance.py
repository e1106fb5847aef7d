"""Performance monitoring: join labels that arrive late to logged predictions, period by period.

Labels land in ``data/labels/`` as CSV files with ``entity_id,label`` (one file per delivery; the
drift demo writes one per batch when its labels "arrive"). Each logged prediction carries the
row's id, so the join needs nothing else. A period is a scoring batch (``batch_id``) or, for API
predictions, a UTC day. The latest period with enough labels is compared with the held-out
precision and recall recorded with the model version (its reference profile).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from ..params import MonitorParams

logger = logging.getLogger(__name__)

LABEL_COLUMNS = ("entity_id", "label")


class PeriodPerformance(BaseModel):
    """One period's predictions and, for those whose label arrived, precision and recall."""

    model_config = ConfigDict(frozen=True)

    period: str  # a scoring batch's id, or "api <UTC day>"
    model_version: str
    started: str
    n_predictions: int
    n_labelled: int
    precision: float | None  # None: no positive prediction (or no label) in the period
    recall: float | None
    positive_rate: float | None


class PerformanceResult(BaseModel):
    """Precision and recall per period, and whether the latest judged period breached."""

    model_config = ConfigDict(frozen=True)

    status: Literal["ok", "breach", "no_labels", "too_few_labels"]
    baseline: dict[str, float]
    periods: list[PeriodPerformance] = Field(default_factory=list)
    judged_period: str | None = None
    breach: bool = False
    reasons: list[str] = Field(default_factory=list)

    @property
    def judged(self) -> PeriodPerformance | None:
        """The period the verdict is about (the latest with enough labels), if any."""
        return next((p for p in self.periods if p.period == self.judged_period), None)


def write_labels(
    directory: Path, name: str, entity_ids: Sequence[Any], labels: Sequence[Any]
) -> Path:
    """Write one delivery of labels (``<directory>/<name>.csv``), atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.csv"
    partial = path.with_suffix(".csv.partial")
    frame = pd.DataFrame({"entity_id": [str(value) for value in entity_ids], "label": labels})
    frame.to_csv(partial, index=False, lineterminator="\n")
    partial.replace(path)
    logger.info("%d labels arrived: %s", len(frame), path)
    return path


def read_labels(directory: Path) -> pd.DataFrame:
    """Every label delivered so far (a later delivery wins for the same id)."""
    paths = sorted(directory.glob("*.csv")) if directory.is_dir() else []
    if not paths:
        return pd.DataFrame({name: pd.Series(dtype="str") for name in LABEL_COLUMNS})
    frames = [pd.read_csv(path, dtype=str)[list(LABEL_COLUMNS)] for path in paths]
    labels = pd.concat(frames, ignore_index=True)
    return labels.drop_duplicates("entity_id", keep="last").reset_index(drop=True)


def performance_by_period(
    log: pd.DataFrame, labels: pd.DataFrame, positive_class: str
) -> pd.DataFrame:
    """Precision and recall of the positive class per period, on the predictions with a label.

    Args:
        log: Prediction log rows (``timestamp``, ``batch_id``, ``entity_id``, ``prediction``,
            ``model_version``).
        labels: ``entity_id``, ``label``.
        positive_class: The class whose precision and recall are measured.

    Returns:
        One row per period, oldest first: ``period``, ``model_version``, ``started``,
        ``n_predictions``, ``n_labelled``, ``precision``, ``recall``, ``positive_rate``.
    """
    columns = [
        "period",
        "model_version",
        "started",
        "n_predictions",
        "n_labelled",
        "precision",
        "recall",
        "positive_rate",
    ]
    if log.empty:
        return pd.DataFrame(columns=columns)
    frame = log[["timestamp", "batch_id", "entity_id", "prediction", "model_version"]].copy()
    day = pd.to_datetime(frame["timestamp"], utc=True).dt.strftime("%Y-%m-%d")
    frame["period"] = frame["batch_id"].where(frame["batch_id"].notna(), "api " + day)
    frame = frame.merge(labels, on="entity_id", how="left")
    rows = []
    for (period, version), group in frame.groupby(["period", "model_version"], sort=False):
        labelled = group[group["label"].notna()]
        predicted = labelled["prediction"].astype(str).to_numpy() == positive_class
        truth = labelled["label"].astype(str).to_numpy() == positive_class
        true_positive = int(np.sum(predicted & truth))
        rows.append(
            {
                "period": str(period),
                "model_version": str(version),
                "started": pd.Timestamp(group["timestamp"].min()).isoformat(),
                "n_predictions": len(group),
                "n_labelled": len(labelled),
                "precision": true_positive / predicted.sum() if predicted.sum() else np.nan,
                "recall": true_positive / truth.sum() if truth.sum() else np.nan,
                "positive_rate": float((group["prediction"].astype(str) == positive_class).mean()),
            }
        )
    return pd.DataFrame(rows, columns=columns).sort_values("started", ignore_index=True)


def judge_performance(
    periods: pd.DataFrame,
    baseline: Mapping[str, float],
    params: MonitorParams,
    model_version: str | None,
) -> PerformanceResult:
    """Compare the latest period with enough labels with the model's held-out baseline.

    Args:
        periods: From :func:`performance_by_period`.
        baseline: ``precision`` and ``recall`` on the model's held-out rows.
        params: ``min_labelled``, ``max_precision_drop``, ``max_recall_drop``.
        model_version: Judge this version's periods only (None: every period).

    Returns:
        The result; a breach lists each metric below its floor.
    """
    records = [
        PeriodPerformance.model_validate(
            {
                str(key): (None if isinstance(value, float) and np.isnan(value) else value)
                for key, value in row.items()
            }
        )
        for row in periods.to_dict(orient="records")
    ]
    mine = periods if model_version is None else periods[periods["model_version"] == model_version]
    base = {key: float(value) for key, value in baseline.items()}
    if mine.empty or int(mine["n_labelled"].sum()) == 0:
        return PerformanceResult(status="no_labels", baseline=base, periods=records)
    judged = mine[mine["n_labelled"] >= params.min_labelled]
    if judged.empty:
        return PerformanceResult(status="too_few_labels", baseline=base, periods=records)
    latest = judged.iloc[-1]
    reasons = []
    for metric, drop in (
        ("precision", params.max_precision_drop),
        ("recall", params.max_recall_drop),
    ):
        value, floor = float(latest[metric]), base[metric] - drop
        if not value >= floor:  # NaN (no positive prediction at all) is a breach too
            reasons.append(
                f"{metric} {value:.3f} in {latest['period']} is below {floor:.3f} "
                f"(held-out {base[metric]:.3f} - {drop:g})"
            )
    return PerformanceResult(
        status="breach" if reasons else "ok",
        baseline=base,
        periods=records,
        judged_period=str(latest["period"]),
        breach=bool(reasons),
        reasons=reasons,
    )
