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


def test_a_growing_missing_share_is_drift_on_its_own() -> None:
    rng = np.random.default_rng(0)
    profile = numeric_reference(pd.Series(rng.normal(0, 1, 2000)), bins=10)
    values = pd.Series(rng.normal(0, 1, 1000))
    values[:200] = np.nan
    drift = numeric_drift("x", profile, values, PARAMS)
    assert drift.drifted
    assert "missing share" in drift.reason
    assert drift.missing_current == pytest.approx(0.2)


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
    assert segment.drifted
