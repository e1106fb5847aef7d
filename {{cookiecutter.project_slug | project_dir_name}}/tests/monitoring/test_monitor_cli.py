"""`monitor`: the report files, the JSON summary and the exit codes that trigger retraining."""

import json

import pandas as pd
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import get_settings
from {{ cookiecutter.package_name }}.monitoring.metrics import monitoring_registry
from {{ cookiecutter.package_name }}.monitoring.monitor import EXIT_ALARM, EXIT_DATA_QUALITY, MonitoringSummary
from {{ cookiecutter.package_name }}.monitoring.performance import (
    judge_performance,
    performance_by_period,
    read_labels,
    write_labels,
)
from {{ cookiecutter.package_name }}.params import MonitorParams

runner = CliRunner()


@pytest.fixture
def logged(project, reference, log_scored, make_customers):
    """A project whose log holds a quiet batch, then a drifted one; the reference on file."""
    (project / "reference.json").write_text(reference.to_json(), encoding="utf-8")
    folder = project / "data" / "predictions" / "log"
    log_scored(folder, make_customers(1000, 0.0, 30, first_id=10_000), "quiet")
    log_scored(folder, make_customers(1000, 1.0, 31, first_id=20_000), "drifted")
    return project


def monitor(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["monitor", "--reference", "reference.json", *args], env=env)


@pytest.mark.usefixtures("logged")
def test_drift_is_reported_and_exits_3_only_when_asked() -> None:
    result = monitor()
    assert result.exit_code == 0, result.output
    assert "drift" in result.output
    flagged = monitor("--fail-on-alarm")
    assert flagged.exit_code == EXIT_ALARM
    from_env = monitor(env={"FAIL_ON_ALARM": "1"})
    assert from_env.exit_code == EXIT_ALARM


def test_a_quiet_batch_passes_the_trigger(logged) -> None:
    result = monitor("--batch-id", "quiet", "--fail-on-alarm")
    assert result.exit_code == 0, result.output
    summary = json.loads((logged / "reports/monitoring/latest.json").read_text())
    assert summary["status"] == "ok"
    assert summary["alarms"] == []
    assert summary["drift_detected"] is False
    assert summary["data_quality_alarm"] is False
    assert summary["estimated_breach"] is False
    assert summary["retrain_recommended"] is False


def test_broken_inputs_alarm_with_exit_4_and_hold_retraining_back(
    project, reference, log_scored, make_customers
) -> None:
    (project / "reference.json").write_text(reference.to_json(), encoding="utf-8")
    batch = make_customers(1000, 0.0, 32, first_id=30_000)
    batch.loc[:99, "channel"] = "carrier_pigeon"  # 10 % of rows: a value the model never saw
    log_scored(project / "data/predictions/log", batch, "broken")
    result = monitor("--fail-on-alarm")
    assert result.exit_code == EXIT_DATA_QUALITY, result.output
    assert "channel: 10.0% of rows hold 1 value(s) the model never saw" in result.output
    summary = json.loads((project / "reports/monitoring/latest.json").read_text())
    assert summary["alarms"][0] == "data_quality"
    assert summary["status"].startswith("data_quality")
    assert summary["quality"]["issues"][0]["example"] == "carrier_pigeon"
    assert summary["retrain_recommended"] is False  # repair the inputs first
    html = (project / "reports/monitoring/latest.html").read_text()
    assert "<h2>Data quality</h2>" in html
    assert "carrier_pigeon" in html
    assert "Repair the inputs before retraining" in html


def test_the_summary_and_the_report_carry_every_figure_offline(logged) -> None:
    monitor()
    folder = logged / "reports" / "monitoring"
    summary = json.loads((folder / "latest.json").read_text())
    assert summary["window"]["description"] == "newest batch drifted"
    assert summary["window"]["rows"] == 1000
    assert summary["drift_detected"] is True
    assert summary["retrain_recommended"] is True
    features = {item["feature"]: item for item in summary["drift"]["features"]}
    assert set(features) >= {"avg_payment_delay_days", "channel", "tenure_days"}
    for item in features.values():
        assert {"psi", "test", "statistic", "p_value", "missing_current", "drifted"} <= set(item)
    assert summary["drift"]["prediction"]["feature"] == "score"
    estimate = summary["estimate"]
    assert estimate["precision_low"] <= estimate["precision"] <= estimate["precision_high"]
    assert summary["estimated_breach"] is estimate["breach"]
    html = (folder / "latest.html").read_text()
    assert "<h2>Estimated performance</h2>" in html
    assert f"{estimate['precision']:.3f} ({estimate['precision_low']:.3f}" in html
    # The batch drifted: the interval spans the rows the reference does not account for.
    assert estimate["unexplained_share"] > 0
    assert f"{estimate['unexplained_share']:.0%} of rows the reference does not" in html
    assert html.count("data:image/png;base64,") >= len(features) + 1
    assert "<script" not in html
    assert "http://" not in html
    assert "https://" not in html
    assert len(list(folder.glob("*-v1.html"))) == 1  # the run's own copy beside latest.html


def test_a_small_window_is_reported_not_judged(project, reference, log_scored, make_customers):
    (project / "reference.json").write_text(reference.to_json(), encoding="utf-8")
    log_scored(project / "data/predictions/log", make_customers(50, 1.0, 5), "tiny")
    result = monitor("--fail-on-alarm")
    assert result.exit_code == 0, result.output
    summary = json.loads((project / "reports/monitoring/latest.json").read_text())
    assert summary["status"] == "insufficient_data"


def test_late_labels_reveal_a_performance_breach(logged, reference) -> None:
    log = pd.DataFrame(
        {
            "timestamp": pd.Timestamp("2025-01-01"),
            "batch_id": ["b1"] * 400 + ["b2"] * 400,
            "entity_id": [str(index) for index in range(800)],
            "prediction": ["good"] * 800,
            "model_version": "1",
        }
    )
    labels = logged / "data" / "labels"
    write_labels(labels, "b1", [str(index) for index in range(400)], ["good"] * 400)
    # The second batch: half the customers called good turned out bad.
    write_labels(labels, "b2", [str(index) for index in range(400, 800)], ["good", "bad"] * 200)
    periods = performance_by_period(log, read_labels(labels), "good")
    assert periods["precision"].tolist() == [1.0, 0.5]
    result = judge_performance(periods, reference.baseline, MonitorParams(), "1")
    assert result.breach
    assert result.judged_period == "b2"
    assert "precision 0.500" in result.reasons[0]


def test_without_labels_performance_is_not_judged(reference, tmp_path) -> None:
    periods = performance_by_period(
        pd.DataFrame(
            {
                "timestamp": [pd.Timestamp("2025-01-01")],
                "batch_id": [None],
                "entity_id": ["1"],
                "prediction": ["good"],
                "model_version": ["1"],
            }
        ),
        read_labels(tmp_path / "no-labels"),
        "good",
    )
    result = judge_performance(periods, reference.baseline, MonitorParams(), "1")
    assert result.status == "no_labels"
    assert not result.breach
    assert result.periods[0].period == "api 2025-01-01"


def test_a_runs_figures_as_prometheus_reads_them(logged) -> None:
    """What the Pushgateway gets: the verdicts, the drift share and every feature's PSI."""
    monitor()
    text = (logged / "reports/monitoring/latest.json").read_text(encoding="utf-8")
    summary = MonitoringSummary.model_validate_json(text)
    exposition = generate_latest(monitoring_registry(summary)).decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }
    assert samples[("monitor_alarm", (("alarm", "drift"),))] == 1
    assert samples[("monitor_alarm", (("alarm", "data_quality"),))] == 0
    assert samples[("monitor_alarm", (("alarm", "retrain"),))] == 1
    assert summary.drift is not None
    assert summary.estimate is not None
    for bound, value in (
        ("estimate", summary.estimate.precision),
        ("low", summary.estimate.precision_low),
        ("high", summary.estimate.precision_high),
    ):
        key = ("monitor_estimated", (("bound", bound), ("metric", "precision")))
        assert samples[key] == pytest.approx(value)
    assert samples[("monitor_drift_share", ())] == pytest.approx(summary.drift.drift_share)
    assert samples[("monitor_window_rows", ())] == summary.window.rows
    for feature in (*summary.drift.features, summary.drift.prediction):
        key = ("monitor_feature_psi", (("feature", feature.feature),))
        assert samples[key] == pytest.approx(feature.psi)


def test_an_unreachable_pushgateway_fails_the_step_and_keeps_the_report(
    logged, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_PUSHGATEWAY_URL", "http://127.0.0.1:9")
    get_settings.cache_clear()
    result = monitor()
    assert result.exit_code == 1, result.output
    assert "PROMETHEUS_PUSHGATEWAY_URL=http://127.0.0.1:9: the figures were not pushed" in (
        result.stderr
    )
    assert (logged / "reports/monitoring/latest.json").is_file()
