"""The post-train checks and the promotion rule, on fitted pipelines but without MLflow."""

import numpy as np
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.contract import ContractColumn, FeatureContract
from {{ cookiecutter.package_name }}.evaluation.checks import (
    champion_check,
    directional_checks,
    invariance_check,
    minimum_functionality_checks,
    threshold_checks,
)
from {{ cookiecutter.package_name }}.evaluation.fairness import slice_report
from {{ cookiecutter.package_name }}.evaluation.report import ChampionComparison
from {{ cookiecutter.package_name }}.evaluation.step import other_task
from {{ cookiecutter.package_name }}.gate import (
    COMPARISON,
    TAG_CHAMPION_PRECISION,
    TAG_CHECKS,
    TAG_COMPARED_WITH,
    TAG_FAILED,
    TAG_NOT_ASSESSED,
    TAG_PASSED,
    TAG_PRECISION,
    TAG_ROLLED_BACK,
    promotion_reasons,
)
from {{ cookiecutter.package_name }}.params import DirectionalExpectation
from {{ cookiecutter.package_name }}.pipeline import build_pipeline, model_input


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


def test_a_model_that_reads_a_sensitive_attribute_fails_the_invariance_check(contract, table):
    as_feature = contract.model_copy(
        update={
            "columns": tuple(
                column.model_copy(update={"role": "feature"})
                if column.name == "age_band"
                else column
                for column in contract.columns
            )
        }
    )
    pipeline = build_pipeline(as_feature, "logistic_regression", {}, seed=0)
    leaning = table["age_band"].map({"18-34": "bad"}).fillna(table["label"])
    pipeline.fit(model_input(table, as_feature), leaning)
    check = invariance_check(pipeline, table, contract, "good", seed=1)
    assert not check.passed
    assert "reads age_band" in check.detail


class ScoresByAgeBand:
    """A model that picks the sensitive column by name without declaring its inputs."""

    classes_ = np.array(["bad", "good"])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        good = np.where(frame["age_band"] == "18-34", 0.2, 0.8)
        return np.column_stack([1 - good, good])


def test_shuffling_the_sensitive_attribute_catches_a_model_that_uses_it(contract, table):
    check = invariance_check(ScoresByAgeBand(), table, contract, "good", seed=1)
    assert not check.passed
    assert "predictions moved" in check.detail


class PaysLateAboveNinetyNine:
    """P(good) rises by 0.02 once the payment delay passes 99 days: the wrong direction."""

    classes_ = np.array(["bad", "good"])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        good = 0.5 + 0.02 * (frame["avg_payment_delay_days"].to_numpy() > 99)
        return np.column_stack([1 - good, good])


def test_a_violation_rate_is_judged_at_the_precision_it_is_printed(contract, table, params):
    table = pd.concat([table, table.head(450)], ignore_index=True)  # 1,250 rows
    table["avg_payment_delay_days"] = 0.0
    table.loc[:62, "avg_payment_delay_days"] = 99.0  # 63 of 1,250 rows: 5.04%, printed 5.0%
    evaluate = params.evaluate.model_copy(
        update={
            "max_violation_rate": 0.05,
            "directional": (
                DirectionalExpectation(
                    feature="avg_payment_delay_days", change=5, expect="not_more_likely"
                ),
            ),
        }
    )
    (check,) = directional_checks(PaysLateAboveNinetyNine(), table, contract, "good", evaluate)
    assert "63 of 1250 rows (5.0%)" in check.detail
    assert "at most 5.0%" in check.detail
    assert check.passed, check.detail
    table.loc[:70, "avg_payment_delay_days"] = 99.0  # 71 rows: 5.7%
    (check,) = directional_checks(PaysLateAboveNinetyNine(), table, contract, "good", evaluate)
    assert not check.passed


def test_nothing_to_judge_is_not_assessed_never_passed(sensible, contract, table, params):
    tiny_slices = params.model_copy(
        update={"evaluate": params.evaluate.model_copy(update={"min_slice_size": 10_000})}
    )
    _, checks = slice_report(sensible, table, contract, "good", tiny_slices)
    by_name = {check.name: check for check in checks}
    assert by_name["slices.age_band.min_precision"].status == "not_assessed"
    assert "10000 held-out rows" in by_name["slices.age_band.min_precision"].detail

    no_sensitive = contract.model_copy(
        update={"columns": tuple(c for c in contract.columns if c.role != "sensitive")}
    )
    _, checks = slice_report(sensible, table, no_sensitive, "good", params)
    assert [(check.name, check.status) for check in checks] == [("fairness", "not_assessed")]

    nothing_listed = params.evaluate.model_copy(update={"directional": (), "cases": ()})
    checks = [
        *directional_checks(sensible, table, contract, "good", nothing_listed),
        *minimum_functionality_checks(sensible, table, contract, nothing_listed),
    ]
    assert [check.status for check in checks] == ["not_assessed", "not_assessed"]


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


def test_a_version_rolled_back_from_is_never_promoted_again():
    rolled_back = {**PASSING, TAG_ROLLED_BACK: "2026-01-31T02:00:00+00:00"}
    reasons = promotion_reasons(rolled_back, champion="1", tolerance=0.01)
    assert len(reasons) == 1
    assert "rolled back from champion at 2026-01-31T02:00:00+00:00" in reasons[0]
    assert promotion_reasons(PASSING, champion="1", tolerance=0.01) == []


def test_not_assessed_checks_block_promotion_only_when_the_gate_says_so():
    unjudged = {**PASSING, TAG_NOT_ASSESSED: "fairness,slices.age_band.min_precision"}
    assert promotion_reasons(unjudged, champion="1", tolerance=0.01) == []
    reasons = promotion_reasons(unjudged, champion="1", tolerance=0.01, block_not_assessed=True)
    assert reasons == [
        "checks not assessed: fairness, slices.age_band.min_precision "
        "(gate.block_not_assessed is true)"
    ]


def test_a_champion_for_another_task_is_not_compared(contract) -> None:
    adopted = FeatureContract(
        model="features",
        columns=(
            ContractColumn(name="account_no", data_type="bigint", role="id"),
            ContractColumn(name="plan", data_type="varchar", role="feature"),
            ContractColumn(
                name="churned", data_type="integer", role="label", accepted_values=("0", "1")
            ),
        ),
    )
    assert other_task(contract, contract) is None
    assert "'churned' ['0', '1'] from 'features'" in (other_task(contract, adopted) or "")
    check = champion_check(
        {"precision": 0.8}, ChampionComparison(version="3", metrics={}, other_task="x"), 0.01
    )
    assert check.status == "not_assessed"
    assert "champion v3 is for another task (x)" in check.detail

    # The new task's first model is promoted over the old task's champion on its thresholds...
    new_task = {**PASSING, TAG_CHAMPION_PRECISION: "none", TAG_NOT_ASSESSED: COMPARISON}
    assert promotion_reasons(new_task, champion="1", tolerance=0.01) == []
    # ... but a comparison that failed (the champion could not score) never lets it through.
    failed = {
        **new_task,
        TAG_PASSED: "false",
        TAG_FAILED: COMPARISON,
        TAG_NOT_ASSESSED: "none",
    }
    assert promotion_reasons(failed, champion="1", tolerance=0.01) == [
        f"post-train tests failed: {COMPARISON}"
    ]
    unrecorded = {**PASSING, TAG_CHAMPION_PRECISION: "none"}
    assert promotion_reasons(unrecorded, champion="1", tolerance=0.01) == [
        "no precision of champion v1 was recorded to compare"
    ]
