"""Drift statistics on customers that drift on demand: strong drift is found, none stays quiet."""

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.monitoring.drift import (
    categorical_drift,
    detect_drift,
    numeric_drift,
    psi,
)
from {{ cookiecutter.package_name }}.monitoring.reference import (
    categorical_reference,
    numeric_reference,
)
from {{ cookiecutter.package_name }}.params import MonitorParams

PARAMS = MonitorParams()


def window(model, contract, table: pd.DataFrame) -> pd.DataFrame:
    """What the log holds for `table`: its features, the prediction and the score."""
    features = table[contract.feature_columns]
    return features.assign(
        prediction=model.predict(features).astype(str),
        score=model.predict_proba(features)[:, list(model.classes_).index("good")],
    )


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_shift() -> None:
    shares = np.array([0.25, 0.25, 0.5])
    assert psi(shares, shares) == pytest.approx(0.0)
    assert 0 < psi(shares, np.array([0.3, 0.3, 0.4])) < psi(shares, np.array([0.5, 0.3, 0.2]))


def test_an_empty_bin_does_not_make_psi_infinite() -> None:
    assert np.isfinite(psi(np.array([0.5, 0.5, 0.0]), np.array([0.4, 0.4, 0.2])))


def test_a_strong_sudden_drift_is_detected(make_customers, model, contract, reference) -> None:
    result = detect_drift(reference, window(model, contract, make_customers(1000, 1.0, 7)), PARAMS)
    assert result.dataset_drift
    assert result.prediction_drift
    assert result.drift_detected
    assert {"avg_payment_delay_days", "return_rate", "channel"} <= set(result.drifted_features)
    assert "tenure_days" not in result.drifted_features  # untouched by the drift


@pytest.mark.parametrize("seed", range(10, 20))
def test_no_drift_stays_quiet(make_customers, model, contract, reference, seed: int) -> None:
    result = detect_drift(
        reference, window(model, contract, make_customers(1000, 0.0, seed)), PARAMS
    )
    assert not result.drift_detected, result.to_dict()
    assert result.drifted_features == []


def test_a_shift_too_small_to_matter_is_not_drift_even_when_significant() -> None:
    rng = np.random.default_rng(0)
    profile = numeric_reference(pd.Series(rng.normal(0, 1, 5000)), bins=10)
    drift = numeric_drift("x", profile, pd.Series(rng.normal(0.08, 1, 5000)), PARAMS)
    assert drift.p_value < PARAMS.p_value
    assert drift.psi < PARAMS.psi_threshold
    assert not drift.drifted


def test_a_growing_missing_share_is_for_the_quality_check_not_drift() -> None:
    rng = np.random.default_rng(0)
    profile = numeric_reference(pd.Series(rng.normal(0, 1, 2000)), bins=10)
    values = pd.Series(rng.normal(0, 1, 1000))
    values[:200] = np.nan
    drift = numeric_drift("x", profile, values, PARAMS)
    assert not drift.drifted  # the values present did not move
    assert drift.missing_current == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("shift", "severity"), [(0.0, "stable"), (0.35, "moderate"), (0.6, "drifted")]
)
def test_a_moderate_shift_is_a_warning_between_the_two_psi_thresholds(
    shift: float, severity: str
) -> None:
    rng = np.random.default_rng(0)
    profile = numeric_reference(pd.Series(rng.normal(0, 1, 5000)), bins=10)
    drift = numeric_drift("x", profile, pd.Series(rng.normal(shift, 1, 2000)), PARAMS)
    assert drift.severity == severity, drift
    assert drift.drifted == (severity == "drifted")


def test_drift_in_the_feature_the_model_leans_on_alarms_alone(
    make_customers, model, contract, reference
) -> None:
    leaning = reference.model_copy(
        update={"importance": {"avg_payment_delay_days": 0.6, "return_rate": 0.3}}
    )
    # Shifted after scoring: the scores stay put, so only the features can raise the alarm.
    current = window(model, contract, make_customers(1000, 0.0, 8))
    shifted = current.assign(avg_payment_delay_days=current["avg_payment_delay_days"] + 3)
    result = detect_drift(leaning, shifted, PARAMS)
    assert result.drifted_features == ["avg_payment_delay_days"]
    assert result.weighted_by_importance
    assert result.importance_share == pytest.approx(0.6 / 0.9, abs=1e-4)
    assert result.feature_share == pytest.approx(1 / 12, abs=1e-4)
    assert result.dataset_drift
    # The same shift in a feature the model ignores is reported, and raises nothing.
    ignored = current.assign(tenure_days=current["tenure_days"] + 900)
    quiet = detect_drift(leaning, ignored, PARAMS)
    assert quiet.drifted_features == ["tenure_days"]
    assert quiet.importance_share == 0.0
    assert quiet.drift_share == pytest.approx(1 / 12, abs=1e-4)  # the count's view
    assert not quiet.drift_detected
    # Without importance every feature counts alike: one of many is no data-set drift.
    unweighted = detect_drift(reference, shifted, PARAMS)
    assert not unweighted.weighted_by_importance
    assert not unweighted.dataset_drift


def test_a_moderate_shift_in_a_leading_feature_alarms_and_elsewhere_warns(
    make_customers, model, contract, reference
) -> None:
    current = window(model, contract, make_customers(2000, 0.0, 9))
    spread = current["tenure_days"].std()
    moved = current.assign(tenure_days=current["tenure_days"] + 0.3 * spread)
    leading = reference.model_copy(update={"importance": {"tenure_days": 0.8, "channel": 0.2}})
    minor = reference.model_copy(update={"importance": {"tenure_days": 0.1, "channel": 0.9}})
    alarmed, warned = detect_drift(leading, moved, PARAMS), detect_drift(minor, moved, PARAMS)
    for result in (alarmed, warned):
        tenure = next(item for item in result.features if item.feature == "tenure_days")
        assert tenure.severity == "moderate", tenure
        assert any(warning.startswith("tenure_days: moderate shift") for warning in result.warnings)
    assert alarmed.dataset_drift  # 0.8 x moderate_weight 0.5 = 0.4 >= 0.25
    assert not warned.dataset_drift  # 0.1 x 0.5 = 0.05


def test_a_population_change_across_many_minor_features_alarms_by_count(
    make_customers, model, contract, reference
) -> None:
    leaning = reference.model_copy(update={"importance": {"avg_payment_delay_days": 1.0}})
    current = window(model, contract, make_customers(1000, 0.0, 10))
    moved = current.assign(
        tenure_days=current["tenure_days"] + 900,
        n_orders=current["n_orders"] + 10,
        days_since_last_order=current["days_since_last_order"] + 200,
    )
    result = detect_drift(leaning, moved, PARAMS)
    assert set(result.drifted_features) == {"tenure_days", "n_orders", "days_since_last_order"}
    assert result.importance_share == 0.0
    assert result.feature_share == pytest.approx(3 / 12, abs=1e-4)
    assert result.dataset_drift


def test_categories_never_seen_in_the_reference_count_as_drift() -> None:
    profile = categorical_reference(pd.Series(["a"] * 500 + ["b"] * 500))
    drift = categorical_drift("c", profile, pd.Series(["a"] * 300 + ["new"] * 700), PARAMS)
    assert drift.drifted
    assert drift.test == "chi2"
    assert drift.p_value < 1e-6


def test_a_feature_the_log_lacks_is_reported_missing(
    make_customers, model, contract, reference
) -> None:
    current = window(model, contract, make_customers(500, 0.0, 3)).drop(columns=["segment"])
    result = detect_drift(reference, current, PARAMS)
    segment = next(item for item in result.features if item.feature == "segment")
    assert segment.missing_current == 1.0
    assert not segment.drifted  # no value to compare; the quality check alarms on it
