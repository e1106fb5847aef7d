"""The prediction log as monitoring reads it: batches, shadow rows, restarts."""

import time
from datetime import UTC, datetime

from {{ cookiecutter.package_name }}.prediction_log import has_log, read_prediction_log
from {{ cookiecutter.package_name }}.serving.log_writer import PredictionLogWriter


def api_row(request_id: str, version: str, *, shadow: bool = False) -> dict:
    return {
        "request_id": request_id,
        "timestamp": datetime.now(tz=UTC).replace(tzinfo=None),
        "source": "api",
        "model_name": "customer_quality",
        "model_version": version,
        "model_alias": "champion",
        "shadow": shadow,
        "entity_id": "7",
        "tenure_days": 100.0,
        "channel": "web",
        "prediction": "good",
        "score": 0.9,
        "latency_ms": 1.5,
    }


def test_an_empty_log_reads_as_an_empty_frame(tmp_path) -> None:
    frame = read_prediction_log(tmp_path / "log")
    assert frame.empty
    assert {"request_id", "batch_id", "score", "entity_id"} <= set(frame.columns)
    assert not has_log(tmp_path / "log")


def test_batches_are_logged_and_read_back_by_id(make_customers, tmp_path, log_scored) -> None:
    folder = tmp_path / "log"
    log_scored(folder, make_customers(300, seed=1), "batch-a")
    log_scored(folder, make_customers(200, seed=2, first_id=1000), "batch-b")
    everything = read_prediction_log(folder)
    assert len(everything) == 500
    assert set(everything["batch_id"]) == {"batch-a", "batch-b"}
    only_b = read_prediction_log(folder, batch_id="batch-b")
    assert len(only_b) == 200
    assert only_b["entity_id"].iloc[0] == "1000"
    assert only_b["avg_payment_delay_days"].dtype == "float64"  # features come back as columns
    assert read_prediction_log(folder, model_version="2").empty


def test_shadow_predictions_are_never_judged_and_the_log_survives_a_restart(tmp_path) -> None:
    folder = tmp_path / "log"
    writer = PredictionLogWriter(folder, flush_rows=10, flush_seconds=0.05)
    writer.start()
    started = time.perf_counter()
    for index in range(25):
        writer.submit([api_row(f"r{index}", "1"), api_row(f"r{index}", "2", shadow=True)])
    submit_seconds = time.perf_counter() - started
    writer.stop()  # a restart: the process goes away, the files stay
    frame = read_prediction_log(folder)
    assert len(frame) == 25
    assert set(frame["model_version"]) == {"1"}
    assert frame["batch_id"].isna().all()
    assert submit_seconds < 0.5  # queued, never written on the caller's time
