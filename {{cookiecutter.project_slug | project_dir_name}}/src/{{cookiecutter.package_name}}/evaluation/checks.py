"""The post-train checks on one model: thresholds, behaviour, and the champion comparison.

Behaviour is tested as the model is used: invariance (the id and the sensitive attributes never
change a prediction), directional expectations (changing a feature must not move the positive
class's probability the wrong way) and minimum-functionality cases (hand-made customers that must
get a given label), all from ``evaluate`` in params.yaml.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..pipeline import model_input
from .metrics import positive_probability
from .report import HEADLINE, ChampionComparison, Check

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sklearn.pipeline import Pipeline

    from ..contract import FeatureContract
    from ..params import EvaluateParams, GateParams

# A directional violation is a probability that moves the wrong way by more than this.
DIRECTION_SLACK = 0.01
# Rates are compared and printed to this many decimals (0.1%).
RATE_DIGITS = 3


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


def champion_check(
    metrics: Mapping[str, float], champion: ChampionComparison, tolerance: float
) -> Check:
    """The candidate's headline metric may trail the champion's by at most `tolerance`."""
    if champion.version is None:
        # A rule, not a gap: the first model that passes its other checks becomes champion.
        return Check.judged(
            "champion.comparison", passed=True, detail="no champion yet: nothing to beat"
        )
    if champion.other_task is not None:
        return Check.not_assessed(
            "champion.comparison",
            f"champion v{champion.version} is for another task ({champion.other_task}): "
            "nothing to compare; the thresholds decide",
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
