"""Slices and fairness: per-group metrics of each sensitive attribute, and the gate's bounds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..pipeline import model_input
from .report import AttributeSlices, Check

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from ..contract import FeatureContract
    from ..params import Params


def slice_report(
    model: Pipeline,
    frame: pd.DataFrame,
    contract: FeatureContract,
    positive_class: str,
    params: Params,
) -> tuple[dict[str, AttributeSlices], list[Check]]:
    """Per-slice metrics and fairness differences for each sensitive attribute.

    Returns:
        The report (per attribute: per-slice precision, recall, selection rate, size; the
        demographic-parity and equalized-odds differences) and the checks against ``gate``.
    """
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        selection_rate,
    )
    from sklearn.metrics import precision_score, recall_score

    gate = params.gate
    truth = (frame[contract.label_column].astype(str) == positive_class).astype(int).to_numpy()
    predicted = (model.predict(model_input(frame, contract)).astype(str) == positive_class).astype(
        int
    )
    report: dict[str, AttributeSlices] = {}
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
        report[attribute] = AttributeSlices(
            slices=slices,
            demographic_parity_difference=parity,
            equalized_odds_difference=odds,
        )
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
        bounds = {
            "demographic_parity": (parity, gate.max_demographic_parity_difference),
            "equalized_odds": (odds, gate.max_equalized_odds_difference),
        }
        for measure, (value, maximum) in bounds.items():
            name = f"fairness.{attribute}.{measure}"
            if len(slices) < 2:  # noqa: PLR2004 (a difference needs two groups)
                held = f"the held-out rows hold {len(slices)} {attribute} group(s)"
                checks.append(Check.not_assessed(name, f"{held}: none to compare"))
                continue
            checks.append(
                Check.judged(
                    name,
                    passed=value <= maximum,
                    detail=f"{measure.replace('_', '-')} difference {value:.3f} "
                    f"(maximum {maximum:.3f})",
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
