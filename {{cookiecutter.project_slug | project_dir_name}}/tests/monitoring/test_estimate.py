"""Performance estimated before labels: calibrated at training, covered by its interval."""

import numpy as np
import pandas as pd

from {{ cookiecutter.package_name }}.monitoring.estimate import estimate_performance, unexplained
from {{ cookiecutter.package_name }}.monitoring.monitor import assess_window
from {{ cookiecutter.package_name }}.monitoring.reference import calibrate, calibration_error
from {{ cookiecutter.package_name }}.params import MonitorParams

PARAMS = MonitorParams()


def scored(model, contract, table: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The logged window of `table` (features, prediction, score) and whether each row is good."""
    features = table[contract.feature_columns]
    window = features.assign(
        prediction=model.predict(features).astype(str),
        score=model.predict_proba(features)[:, list(model.classes_).index("good")],
    )
    return window, table[contract.label_column].to_numpy() == "good"


def realised_precision(window: pd.DataFrame, truth: np.ndarray) -> float:
    predicted = window["prediction"].to_numpy() == "good"
    return float((predicted & truth).sum() / predicted.sum())


def test_training_records_how_well_the_scores_are_calibrated(reference) -> None:
    calibration = reference.calibration
    assert calibration is not None
    assert calibration.scores == sorted(calibration.scores)
    assert calibration.probabilities == sorted(calibration.probabilities)  # isotonic
    assert 0 < calibration.error_calibrated < 0.1


def test_the_calibration_map_corrects_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    truth_probability = rng.uniform(0, 1, 4000)
    truth = rng.random(4000) < truth_probability
    overconfident = np.clip(0.5 + 1.8 * (truth_probability - 0.5), 0, 1)
    calibration = calibrate(overconfident, truth)
    assert calibration.error_raw > 0.1
    corrected = calibration.probability(overconfident)
    assert calibration_error(corrected, truth) < 0.05


def test_the_estimate_covers_the_realised_precision_on_clean_batches(
    make_customers, model, contract, reference
) -> None:
    covered, errors = 0, []
    for seed in range(50, 70):
        window, truth = scored(model, contract, make_customers(1000, 0.0, seed))
        estimate = estimate_performance(reference, window, PARAMS)
        assert estimate is not None
        assert not estimate.breach, estimate.reasons
        realised = realised_precision(window, truth)
        covered += estimate.precision_low <= realised <= estimate.precision_high
        errors.append(abs(estimate.precision - realised))
    assert covered >= 18  # a 95 % interval: at least 90 % of 20 batches
    assert np.mean(errors) < 0.03


def test_a_shift_towards_uncertain_rows_predicts_a_breach_before_labels(
    make_customers, model, contract, reference
) -> None:
    window, truth = scored(model, contract, make_customers(1000, 1.0, 71))
    estimate = estimate_performance(reference, window, PARAMS)
    assert estimate is not None
    assert estimate.breach
    assert any(reason.startswith("estimated precision") for reason in estimate.reasons)
    # The labels, when they come, agree: precision fell as far as estimated.
    realised = realised_precision(window, truth)
    assert realised < reference.baseline["precision"] - PARAMS.max_precision_drop
    assert estimate.precision_low <= realised <= estimate.precision_high


def test_without_a_recorded_calibration_there_is_no_estimate(
    make_customers, model, contract, reference
) -> None:
    window, _ = scored(model, contract, make_customers(500, 0.0, 72))
    older = reference.model_copy(update={"calibration": None})
    assert estimate_performance(older, window, PARAMS) is None


def test_moved_inputs_widen_the_interval_over_what_the_reference_does_not_explain(
    make_customers, model, contract, reference
) -> None:
    """The demo's drift moves a hidden risk the inputs show only in part, so the relation between
    inputs and labels changes: the calibrated interval alone misses, the widened one covers."""
    plain, widened = 0, 0
    for seed in range(80, 100):
        window, truth = scored(model, contract, make_customers(1000, 1.0, seed))
        calibrated = estimate_performance(reference, window, PARAMS)
        moved = estimate_performance(reference, window, PARAMS, inputs_moved=True)
        assert calibrated is not None
        assert moved is not None
        assert moved.unexplained_share > 0.3
        assert calibrated.unexplained_share == 0
        # The same point estimate and verdict; only the stated uncertainty widens.
        assert (moved.precision, moved.recall, moved.breach) == (
            calibrated.precision,
            calibrated.recall,
            calibrated.breach,
        )
        assert moved.precision_low < calibrated.precision_low
        assert moved.precision_high > calibrated.precision_high
        assert moved.recall_low < calibrated.recall_low
        realised = realised_precision(window, truth)
        plain += calibrated.precision_low <= realised <= calibrated.precision_high
        widened += moved.precision_low <= realised <= moved.precision_high
    assert plain <= 15
    assert widened >= 19


def test_the_monitor_widens_the_interval_only_when_the_inputs_moved(
    make_customers, model, contract, reference
) -> None:
    clean, _ = scored(model, contract, make_customers(1000, 0.0, 101))
    assessed = assess_window(reference, clean, PARAMS)
    assert assessed.drift is not None
    assert assessed.estimate is not None
    assert not assessed.drift.moved
    assert assessed.estimate.unexplained_share == 0

    drifted, _ = scored(model, contract, make_customers(1000, 1.0, 101))
    assessed = assess_window(reference, drifted, PARAMS)
    assert assessed.drift is not None
    assert assessed.estimate is not None
    assert assessed.drift.moved
    assert assessed.estimate.unexplained_share > 0.3


def test_the_unexplained_share_is_the_distance_between_the_score_distributions(
    reference,
) -> None:
    # The reference's own scores: nothing unexplained.
    assert unexplained(reference, np.asarray(reference.score.sample)) < 1e-9
    # Every score in the top bin: all but the reference's share of that bin.
    top = np.full(500, reference.score.edges[-1] + 1e-6)
    assert np.isclose(unexplained(reference, top), 1 - reference.score.proportions[-1])
