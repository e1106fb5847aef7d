"""Measure the monitor: does it find each kind of drift, how fast, and how often does it cry wolf?

Renders the template (or uses ``--project``), runs the loop up to a champion, then runs
``drift_scenarios.py`` with the project's own interpreter: for every drift scenario of the demo
generator (none, sudden, gradual, incremental, recurring), each strength and several seeds, a
series of production batches is generated, featurised by the project's dbt models, scored by the
champion and judged by the monitor's drift test with the shipped thresholds. Also measures what
prediction logging adds to a request on the service's hot path.

Prints Markdown tables and, with ``--write``, puts them into docs/benchmarks.md between the
BENCH:drift markers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.conftest import project_env  # noqa: E402 - the same clean environment as the tests

BENCHMARKS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- BENCH:drift:begin -->", "<!-- BENCH:drift:end -->"
SCENARIOS = ["none", "sudden", "gradual", "incremental", "recurring"]
LOOP = ["setup", "data", "validate", "train", "evaluate", "register", "promote"]


def run(command: list[str], cwd: Path) -> str:
    """Run `command` in the project's clean environment; a failure stops the benchmark."""
    result = subprocess.run(
        command, cwd=cwd, env=project_env(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def prepare(scratch: Path) -> Path:
    """Render the defaults and run the loop up to a champion."""
    cookiecutter = [sys.executable, "-m", "cookiecutter", "--no-input", str(REPO)]
    run([*cookiecutter, "--output-dir", str(scratch)], cwd=scratch)
    project = next(path for path in scratch.iterdir() if path.is_dir())
    for target in LOOP:
        print(f"make {target}", file=sys.stderr)
        run(["make", target], cwd=project)
    return project


def package_of(project: Path) -> str:
    """The generated package's import name."""
    return next(path.name for path in (project / "src").iterdir() if path.is_dir())


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scenario and strength: detection rate, delay, false alarms, precision."""
    rows = []
    keys = sorted(
        {(r["scenario"], r["strength"]) for r in records},
        key=lambda key: (SCENARIOS.index(key[0]), key[1]),
    )
    for scenario, strength in keys:
        mine = [r for r in records if (r["scenario"], r["strength"]) == (scenario, strength)]
        drifting = [r for r in mine if r["true_shift"] > 0]
        quiet = [r for r in mine if r["true_shift"] == 0]
        delays, detected = [], 0
        for seed in sorted({r["seed"] for r in mine}):
            flagged = [r["step"] for r in drifting if r["seed"] == seed and r["drift_detected"]]
            if flagged:
                detected += 1
                delays.append(min(flagged))
        seeds = len({r["seed"] for r in mine})
        rows.append(
            {
                "scenario": scenario,
                "strength": strength,
                "seeds": seeds,
                "batches": len(mine),
                "detection_rate": detected / seeds if drifting else None,
                "delay": statistics.mean(delays) if delays else None,
                "flagged_drifting": _share(drifting),
                "false_alarm": _share(quiet),
                "precision_drifting": statistics.mean(r["precision"] for r in drifting)
                if drifting
                else None,
                "precision_quiet": (
                    statistics.mean(r["precision"] for r in quiet) if quiet else None
                ),
            }
        )
    return rows


def _share(records: list[dict[str, Any]]) -> tuple[int, int] | None:
    return (sum(r["drift_detected"] for r in records), len(records)) if records else None


def markdown(result: dict[str, Any], options: dict[str, Any]) -> str:
    """The tables for docs/benchmarks.md."""
    meta, records = result["drift"][0], result["drift"][1:]

    def fraction(value: tuple[int, int] | None) -> str:
        return "-" if value is None else f"{value[0]}/{value[1]} ({value[0] / value[1]:.0%})"

    def number(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    lines = [
        f"{options['seeds']} seeds x {options['batches']} batches of {options['customers']:,} "
        f"customers per scenario and strength; gradual and incremental drift complete after "
        f"{options['horizon']} batches, recurring drift is on for {options['horizon']} batches "
        f"then off for {options['horizon']}. Champion v{meta['model_version']} (held-out "
        f"precision {meta['baseline_precision']:.3f}); shipped `monitor` thresholds. One dbt "
        f"build featurised every batch in {meta['build_seconds']} s; the drift test takes "
        f"{meta['detect_ms_median']} ms per batch (median).",
        "",
        "| scenario | strength | runs detected | first alarm (batch, mean) | drifting batches "
        "flagged | false alarms (batches without drift) | precision, drifting | precision, "
        "no drift |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summarise(records):
        detected = (
            "-"
            if row["detection_rate"] is None
            else f"{round(row['detection_rate'] * row['seeds'])}/{row['seeds']}"
        )
        lines.append(
            f"| {row['scenario']} | {row['strength']:g} | {detected} | "
            f"{number(row['delay'], '.1f')} | {fraction(row['flagged_drifting'])} | "
            f"{fraction(row['false_alarm'])} | {number(row['precision_drifting'], '.3f')} | "
            f"{number(row['precision_quiet'], '.3f')} |"
        )
    log = result["log"]
    lines += [
        "",
        "Prediction log on the service's hot path (`log_rows` + `PredictionLog.submit` per "
        "request while the background thread writes Parquet):",
        "",
        "| calls | median | p99 | max | rows written | dropped | files | drain at stop |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {log['calls']:,} | {log['median_us']} µs | {log['p99_us']} µs | {log['max_ms']} ms | "
        f"{log['written']:,} | {log['dropped']} | {log['files']} | {log['drain_seconds']} s |",
    ]
    return "\n".join(lines)


def write_into_docs(table: str) -> None:
    text = BENCHMARKS.read_text(encoding="utf-8")
    if BEGIN not in text:
        text = text.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    BENCHMARKS.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", type=Path, help="a rendered project with a champion")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--customers", type=int, default=1000, help="customers per batch")
    parser.add_argument("--horizon", type=int, default=4)
    parser.add_argument("--strengths", default="0.5,1.0", help="drift strengths, comma-separated")
    parser.add_argument("--log-calls", type=int, default=20_000)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    options = {
        "scenarios": SCENARIOS,
        "strengths": [float(value) for value in args.strengths.split(",")],
        "seeds": args.seeds,
        "batches": args.batches,
        "customers": args.customers,
        "horizon": args.horizon,
        "log_calls": args.log_calls,
    }
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as scratch:
        project = args.project.resolve() if args.project else prepare(Path(scratch))
        script = Path(__file__).with_name("drift_scenarios.py")
        output = run(
            [
                "uv",
                "run",
                "--no-sync",
                "python",
                str(script),
                package_of(project),
                json.dumps(options),
            ],
            cwd=project,
        )
    result = json.loads(output.strip().splitlines()[-1])
    table = markdown(result, options)
    print(table)
    if args.write:
        write_into_docs(table)
    if os.environ.get("BENCH_DRIFT_JSON"):
        Path(os.environ["BENCH_DRIFT_JSON"]).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
