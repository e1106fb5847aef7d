"""Evidently's default data-drift check on the batches ``drift_scenarios.py`` wrote: the comparison.

Runs in its own virtualenv (``bench/requirements-evidently.txt``: Evidently 0.7 does not import
with pandas 3, which the generated projects use); ``bench_drift.py`` calls it as
``python evidently_drift.py <exchange folder>``. The folder holds ``reference.parquet`` (the
champion's held-out rows), ``batches.parquet`` (every batch, numbered) and ``columns.json`` (the
model's numeric and categorical inputs: the columns our monitor judges).

Each batch gets ``Report([DataDriftPreset()])`` against the reference, every option at Evidently's
default: the per-column test is Evidently's choice (by the reference's size and the column's
type), and the data set drifts when the share of drifted columns reaches the preset's
``drift_share`` (0.5). ``include_tests=True`` only adds the per-column verdicts to the results; it
changes no computation. Prints one JSON line per batch: the data-set verdict, the drifted columns,
the test used on each column and the seconds the report took.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

DRIFTED_COUNT = "evidently:metric_v2:DriftedColumnsCount"
VALUE_DRIFT = "evidently:metric_v2:ValueDrift"


def verdict(result: dict[str, Any], drift_share: float) -> dict[str, Any]:
    """The data-set verdict, the drifted columns and each column's test, from a snapshot."""
    count = next(m for m in result["metrics"] if m["config"]["type"] == DRIFTED_COUNT)["value"]
    drifted = sorted(
        test["metric_config"]["params"]["column"]
        for test in result["tests"]
        if test["metric_config"]["params"]["type"] == VALUE_DRIFT and test["status"] == "FAIL"
    )
    if len(drifted) != round(count["count"]):  # the two views of one computation must agree
        sys.exit(f"Evidently: {count['count']} drifted columns counted, {drifted} flagged")
    # The test Evidently chose per column, with its threshold (from the reference's size and type).
    methods = {
        m["config"]["column"]: f"{m['config']['method']}, threshold {m['config']['threshold']:g}"
        for m in result["metrics"]
        if m["config"]["type"] == VALUE_DRIFT
    }
    return {
        "dataset_drift": bool(count["share"] >= drift_share),
        "drift_share": round(float(count["share"]), 6),
        "drifted_columns": drifted,
        "methods": methods,
    }


def main() -> None:
    # Evidently's usage telemetry (evidently/telemetry.py) asks DO_NOT_TRACK before each event.
    os.environ.setdefault("DO_NOT_TRACK", "1")

    folder = Path(sys.argv[1])
    columns = json.loads((folder / "columns.json").read_text(encoding="utf-8"))
    definition = DataDefinition(
        numerical_columns=columns["numerical"], categorical_columns=columns["categorical"]
    )
    inputs = columns["numerical"] + columns["categorical"]
    reference = Dataset.from_pandas(
        pd.read_parquet(folder / "reference.parquet")[inputs], data_definition=definition
    )
    batches = pd.read_parquet(folder / "batches.parquet")
    for number, rows in batches.groupby(columns["batch"], sort=True):
        preset = DataDriftPreset()
        tick = time.perf_counter()
        current = Dataset.from_pandas(
            rows[inputs].reset_index(drop=True), data_definition=definition
        )
        result = Report([preset], include_tests=True).run(current, reference).dict()
        seconds = time.perf_counter() - tick
        line = {"number": int(number), **verdict(result, preset.drift_share), "seconds": seconds}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
