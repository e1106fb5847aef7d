"""Run inside a generated project (its own interpreter): drift scenarios and prediction-log cost.

Called by ``bench_drift.py`` as ``python drift_scenarios.py <package> <options as JSON>``; prints
one JSON document on stdout. Uses the project's own code end to end: the demo generator's
production batches, the project's dbt models for the features (one build for every batch), the
champion model and its reference profile, and the monitor's drift test with the shipped
thresholds. Nothing here re-implements a step.
"""

from __future__ import annotations

import importlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any


def scenarios(package: str, options: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per (scenario, strength, seed, batch): the verdict and the figures behind it."""
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    config = importlib.import_module(f"{package}.config")
    contract_module = importlib.import_module(f"{package}.contract")
    generate = importlib.import_module(f"{package}.data.generate")
    feedback = importlib.import_module(f"{package}.monitoring.feedback")
    monitor = importlib.import_module(f"{package}.monitoring.monitor")
    reference_module = importlib.import_module(f"{package}.monitoring.reference")
    drift_module = importlib.import_module(f"{package}.monitoring.drift")
    tracking = importlib.import_module(f"{package}.tracking")

    config.disable_telemetry()
    settings = config.get_settings()
    shipped = config.load_params(settings.params_file)
    version = monitor.champion_version(settings)
    reference = reference_module.ensure_reference(settings, version, shipped.monitor.bins)
    tracking.connect(settings)
    model = tracking.load_sklearn_model(f"models:/{settings.model_name}/{version}")
    contract = contract_module.load_contract(settings)
    positive = reference.positive_class

    records, tables, number = [], [], 0
    for kind in options["scenarios"]:
        for strength in options["strengths"] if kind != "none" else [0.0]:
            demo = shipped.monitor.demo.model_copy(
                update={
                    "strength": strength,
                    "customers_per_batch": options["customers"],
                    "horizon": options["horizon"],
                }
            )
            params = shipped.model_copy(
                update={"monitor": shipped.monitor.model_copy(update={"demo": demo})}
            )
            for seed in range(1, options["seeds"] + 1):
                for step in range(1, options["batches"] + 1):
                    number += 1
                    tables.append(feedback.production_tables(params, kind, step, seed, number))
                    # The drift actually applied: the mean shift of the batch's rows.
                    rng = np.random.default_rng(0)
                    true_shift = float(
                        generate.drift_shift(
                            kind,
                            strength,
                            step=step,
                            horizon=options["horizon"],
                            n_rows=10_000,
                            rng=rng,
                        ).mean()
                    )
                    records.append(
                        {
                            "number": number,
                            "scenario": kind,
                            "strength": strength,
                            "seed": seed,
                            "step": step,
                            "true_shift": round(true_shift, 4),
                        }
                    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=settings.data_dir) as scratch:
        folder = Path(scratch)
        generate.write_tables(
            generate.SourceTables(
                customers=pd.concat([t.customers for t in tables], ignore_index=True),
                sales=pd.concat([t.sales for t in tables], ignore_index=True),
            ),
            folder / "raw",
        )
        features = feedback.build_features(settings, shipped, folder)
    build_seconds = time.perf_counter() - started
    block = features[contract.id_column] // feedback.ID_BLOCK
    detect_seconds = []
    for record in records:
        rows = features[block == record["number"]]
        inputs = rows[contract.feature_columns]
        scores = model.predict_proba(inputs)[:, [str(c) for c in model.classes_].index(positive)]
        predicted = np.asarray(model.predict(inputs)).astype(str)
        window = inputs.assign(prediction=predicted, score=scores)
        tick = time.perf_counter()
        result = drift_module.detect_drift(reference, window, shipped.monitor)
        detect_seconds.append(time.perf_counter() - tick)
        truth = rows[contract.label_column].astype(str).to_numpy() == positive
        flagged = predicted == positive
        record.update(
            {
                "rows": len(rows),
                "drift_detected": result.drift_detected,
                "dataset_drift": result.dataset_drift,
                "prediction_drift": result.prediction_drift,
                "drift_share": result.drift_share,
                "score_psi": result.prediction.psi,
                "precision": float((truth & flagged).sum() / max(flagged.sum(), 1)),
            }
        )
    return [
        {
            "build_seconds": round(build_seconds, 1),
            "detect_ms_median": round(statistics.median(detect_seconds) * 1000, 1),
            "baseline_precision": reference.baseline["precision"],
            "model_version": version,
        },
        *records,
    ]


def log_overhead(package: str, options: dict[str, Any]) -> dict[str, Any]:
    """What logging adds to a request: building the row and queueing it, while files are written.

    The service's hot path calls ``log_rows`` and ``PredictionLog.submit`` per request; the
    background thread writes Parquet meanwhile. Measured per call, over many calls.
    """
    import numpy as np  # noqa: PLC0415

    config = importlib.import_module(f"{package}.config")
    contract_module = importlib.import_module(f"{package}.contract")
    predlog = importlib.import_module(f"{package}.serving.predlog")
    settings = config.get_settings()
    contract = contract_module.load_contract(settings)
    served = SimpleNamespace(name="bench", version="1", alias="champion", contract=contract)
    record = {
        name: (1.0 if contract.column(name).is_numeric else "x")
        for name in contract.feature_columns + contract.sensitive_columns
    }
    record[contract.id_column] = 1
    calls = options["log_calls"]
    with tempfile.TemporaryDirectory() as scratch:
        log = predlog.PredictionLog(Path(scratch), flush_rows=2000, flush_seconds=1.0)
        log.start()
        timings = np.empty(calls)
        for index in range(calls):
            tick = time.perf_counter()
            log.submit(
                predlog.log_rows(
                    served,
                    [record],
                    ["good"],
                    [0.9],
                    request_id=str(index),
                    source="api",
                    latency_ms=1.0,
                )
            )
            timings[index] = time.perf_counter() - tick
        drain = time.perf_counter()
        log.stop()
        drain_seconds = time.perf_counter() - drain
        files = len(list(Path(scratch).rglob("*.parquet")))
    return {
        "calls": calls,
        "median_us": round(float(np.median(timings)) * 1e6, 1),
        "p99_us": round(float(np.quantile(timings, 0.99)) * 1e6, 1),
        "max_ms": round(float(timings.max()) * 1000, 2),
        "written": log.written_rows,
        "dropped": log.dropped_rows,
        "files": files,
        "drain_seconds": round(drain_seconds, 2),
    }


def main() -> None:
    package, options = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps({"log": log_overhead(package, options), "drift": scenarios(package, options)}))


if __name__ == "__main__":
    main()
