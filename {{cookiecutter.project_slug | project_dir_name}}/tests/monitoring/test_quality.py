"""Data-quality alarms: values the model never saw, missing-value surges, values out of bounds."""

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.monitoring.quality import check_quality
from {{ cookiecutter.package_name }}.monitoring.reference import build_reference_profile
from {{ cookiecutter.package_name }}.params import MonitorParams

PARAMS = MonitorParams()


@pytest.fixture
def clean(make_customers, contract) -> pd.DataFrame:
    """A window of the model's inputs as the reference saw them."""
    return make_customers(1000, 0.0, 40)[contract.feature_columns].reset_index(drop=True)


def set_rows(frame: pd.DataFrame, column: str, share: float, value: object) -> pd.DataFrame:
    """`frame` with the first `share` of its rows set to `value` in `column`."""
    broken = frame.copy()
    if value is None:
        broken[column] = broken[column].astype("object")
    broken.loc[: round(share * len(frame)) - 1, column] = value
    return broken


def test_a_clean_window_raises_nothing(reference, clean) -> None:
    result = check_quality(reference, clean, PARAMS)
    assert result.issues == []
    assert not result.alarm


@pytest.mark.parametrize(("share", "alarm"), [(0.005, False), (0.05, True), (0.2, True)])
def test_a_category_the_model_never_saw_alarms_above_its_share(
    reference, clean, share: float, alarm: bool
) -> None:
    result = check_quality(reference, set_rows(clean, "channel", share, "carrier_pigeon"), PARAMS)
    assert result.alarm is alarm
    if alarm:
        (issue,) = result.issues
        assert (issue.feature, issue.kind, issue.example) == (
            "channel",
            "unseen_category",
            "carrier_pigeon",
        )
        assert issue.share == pytest.approx(share)
        assert "channel" in issue.message
        assert "carrier_pigeon" in issue.message


@pytest.mark.parametrize(("share", "alarm"), [(0.03, False), (0.15, True)])
def test_a_missing_value_surge_alarms(reference, clean, share: float, alarm: bool) -> None:
    broken = set_rows(clean, "avg_payment_delay_days", share, np.nan)
    result = check_quality(reference, broken, PARAMS)
    assert result.alarm is alarm
    if alarm:
        (issue,) = result.issues
        assert (issue.feature, issue.kind, issue.example) == (
            "avg_payment_delay_days",
            "missing_increase",
            None,
        )
        assert issue.share == pytest.approx(share)


def test_a_feature_the_window_lacks_is_a_missing_surge(reference, clean) -> None:
    result = check_quality(reference, clean.drop(columns=["segment"]), PARAMS)
    assert [(issue.feature, issue.kind, issue.share) for issue in result.issues] == [
        ("segment", "missing_increase", 1.0)
    ]


def test_a_value_outside_the_contracts_bounds_alarms(make_customers, model, contract) -> None:
    bounded_contract = contract.with_ranges({"return_rate": (0.0, 1.0)})
    reference = build_reference_profile(
        make_customers(2000, 0.0, 2), model, bounded_contract, "good"
    )
    recorded = reference.numeric["return_rate"]
    assert (recorded.minimum, recorded.maximum) == (0.0, 1.0)  # from the contract, at training
    clean = make_customers(1000, 0.0, 41)[contract.feature_columns]
    assert check_quality(reference, clean, PARAMS).issues == []
    broken = set_rows(clean, "return_rate", 0.01, 1.5)
    (issue,) = check_quality(reference, broken, PARAMS).issues
    assert (issue.feature, issue.kind, issue.example) == ("return_rate", "out_of_bounds", "1.5")
    assert issue.share == pytest.approx(0.01)
    assert "[0, 1]" in issue.message
    tolerant = PARAMS.model_copy(update={"max_out_of_bounds_share": 0.02})
    assert not check_quality(reference, broken, tolerant).alarm
