"""The post-train checks and the promotion rule, on fitted pipelines but without MLflow."""

import pytest

from {{ cookiecutter.package_name }}.evaluation import (
    ChampionComparison,
    champion_check,
    directional_checks,
    invariance_check,
    minimum_functionality_checks,
    threshold_checks,
)
from {{ cookiecutter.package_name }}.registry import (
    TAG_CHAMPION_PRECISION,
    TAG_CHECKS,
    TAG_COMPARED_WITH,
    TAG_FAILED,
    TAG_PASSED,
    TAG_PRECISION,
    promotion_reasons,
)
from {{ cookiecutter.package_name }}.training import build_pipeline, model_input


@pytest.fixture(scope="module")
def sensible(contract, table):
    pipeline = build_pipeline(contract, "logistic_regression", {}, seed=0)
    return pipeline.fit(model_input(table, contract), table["label"])


@pytest.fixture(scope="module")
def backwards(contract, table):
    """Learns that paying late makes a good customer: the behavioural tests must catch it."""
    flipped = table["label"].map({"good": "bad", "bad": "good"})
    pipeline = build_pipeline(contract, "logistic_regression", {}, seed=0)
    return pipeline.fit(model_input(table, contract), flipped)


def test_the_id_and_the_sensitive_attribute_never_change_a_prediction(sensible, contract, table):
    check = invariance_check(sensible, table, contract, "good", seed=1)
    assert check.passed, check.detail


def test_directional_and_minimum_functionality_tests_pass_a_sensible_model(
    sensible, contract, table, params
):
    checks = [
        *directional_checks(sensible, table, contract, "good", params.evaluate),
        *minimum_functionality_checks(sensible, table, contract, params.evaluate),
    ]
    assert checks
    assert all(check.passed for check in checks), [c.detail for c in checks if not c.passed]


def test_directional_and_minimum_functionality_tests_fail_a_backwards_model(
    backwards, contract, table, params
):
    checks = [
        *directional_checks(backwards, table, contract, "good", params.evaluate),
        *minimum_functionality_checks(backwards, table, contract, params.evaluate),
    ]
    assert not any(check.passed for check in checks)


def test_thresholds_name_the_metric_and_the_minimum(params):
    checks = threshold_checks({"precision": 0.5, "roc_auc": 0.9}, params.gate)
    assert [check.passed for check in checks] == [False, True]
    assert "precision 0.500 (minimum 0.700)" in checks[0].detail


@pytest.mark.parametrize(
    ("ours", "theirs", "passed"), [(0.80, 0.80, True), (0.795, 0.80, True), (0.78, 0.80, False)]
)
def test_the_champion_comparison_allows_the_tolerance(ours, theirs, passed):
    champion = ChampionComparison(version="3", metrics={"precision": theirs})
    assert champion_check({"precision": ours}, champion, tolerance=0.01).passed is passed


def test_a_champion_that_cannot_score_the_held_out_rows_fails_the_comparison():
    champion = ChampionComparison(version="3", metrics={}, error="missing column")
    check = champion_check({"precision": 0.9}, champion, tolerance=0.01)
    assert not check.passed
    assert "missing column" in check.detail


PASSING = {
    TAG_PASSED: "true",
    TAG_FAILED: "none",
    TAG_CHECKS: "threshold.precision=pass",
    TAG_PRECISION: "0.800000",
    TAG_COMPARED_WITH: "1",
    TAG_CHAMPION_PRECISION: "0.800000",
}


def test_a_passing_challenger_may_be_promoted():
    assert promotion_reasons(PASSING, champion="1", tolerance=0.01) == []
    first = {**PASSING, TAG_COMPARED_WITH: "none", TAG_CHAMPION_PRECISION: "none"}
    assert promotion_reasons(first, champion=None, tolerance=0.01) == []


def test_every_reason_to_refuse_is_listed():
    failing = {
        **PASSING,
        TAG_PASSED: "false",
        TAG_FAILED: "behaviour.invariance",
        TAG_CHECKS: "threshold.precision=pass;behaviour.invariance=FAIL",
    }
    reasons = promotion_reasons(failing, champion="2", tolerance=0.01)
    assert any("behaviour.invariance" in reason for reason in reasons)
    assert any("champion is now v2" in reason for reason in reasons)
    worse = {**PASSING, TAG_PRECISION: "0.700000"}
    assert any("worse than champion" in r for r in promotion_reasons(worse, "1", 0.01))
