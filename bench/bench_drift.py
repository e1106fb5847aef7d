"""Measure the monitor against Evidently: what it finds, how fast, how often it cries wolf.

Renders the template (or uses ``--project``), runs the loop up to a champion, then runs
``drift_scenarios.py`` with the project's own interpreter. It makes two kinds of batches and judges
each with the monitor's single entry point (``assess_window``), the shipped thresholds and the
champion's recorded reference:

* the demo generator's drift scenarios (none, sudden, gradual, incremental, recurring), each
  strength and several seeds, a series of production batches featurised by the project's dbt
  models (one build for every batch);
* faults of our own injected into clean batches (the ``none`` scenario's) in feature space, each at
  several strengths: a shift of the most (and the least) important numeric feature, unseen
  categories, a missing-value surge, out-of-bounds values, a mix shift, flipped labels.

Every batch is labelled, so each also gets the monitor's realised-performance check and a
comparison of the label-free estimate with the realised precision. ``evidently_drift.py`` runs
Evidently's default ``DataDriftPreset`` on exactly the same batches, in its own virtualenv
(``--evidently-venv``, created from ``requirements-evidently.txt`` when missing). Also measures what
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
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.conftest import project_env  # noqa: E402 - the same clean environment as the tests

BENCHMARKS = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- BENCH:drift:begin -->", "<!-- BENCH:drift:end -->"
SCENARIOS = ["none", "sudden", "gradual", "incremental", "recurring"]
LOOP = ["setup", "data", "validate", "train", "evaluate", "register", "promote"]
EVIDENTLY_REQUIREMENTS = Path(__file__).with_name("requirements-evidently.txt")
ALARMS = ["data_quality", "drift", "estimated_performance"]
# The injected faults and their strengths (sd of the reference for shifts, else a share of rows);
# drift_scenarios.py says what each does.
INJECTIONS: dict[str, list[float]] = {
    "shift": [0.1, 0.25, 0.5, 1.0],
    "shift_unimportant": [0.25],
    "unseen": [0.01, 0.05, 0.2],
    "missing": [0.05, 0.15, 0.3],
    "out_of_bounds": [0.01, 0.05],
    "mix": [0.3, 0.5],
    "label_flip": [0.1, 0.2],
}
# What each family does to P(label | inputs), the relation the label-free estimate relies on.
RELATION = {
    "none": "kept",
    "mix": "kept (whole rows resampled)",
    "shift": "broken (inputs changed, labels not)",
    "shift_unimportant": "broken (inputs changed, labels not)",
    "unseen": "broken (inputs changed, labels not)",
    "missing": "broken (inputs changed, labels not)",
    "out_of_bounds": "broken (inputs changed, labels not)",
    "label_flip": "broken (labels changed, inputs not)",
    "sudden": "not kept (hidden risk moves; inputs show it in part)",
    "gradual": "not kept (hidden risk moves; inputs show it in part)",
    "incremental": "not kept (hidden risk moves; inputs show it in part)",
    "recurring": "not kept (hidden risk moves; inputs show it in part)",
}

Record = dict[str, Any]


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run `command` in the project's clean environment; a failure stops the benchmark."""
    result = subprocess.run(
        command, cwd=cwd, env=env or project_env(), capture_output=True, text=True, check=False
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


def evidently_python(venv: Path) -> Path:
    """The Evidently virtualenv's interpreter, after creating or updating the virtualenv."""
    python = venv / "bin" / "python"
    if not python.is_file():
        print(f"creating {venv} for Evidently", file=sys.stderr)
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        run(["uv", "venv", "--quiet", "--python", version, str(venv)], cwd=REPO)
    requirements = ["-r", str(EVIDENTLY_REQUIREMENTS)]
    run(["uv", "pip", "install", "--quiet", "--python", str(python), *requirements], cwd=REPO)
    return python


def run_evidently(python: Path, exchange: Path) -> dict[int, Record]:
    """Evidently's verdict on every batch in `exchange`, by batch number."""
    env = project_env() | {"DO_NOT_TRACK": "1"}  # Evidently's telemetry switch
    script = Path(__file__).with_name("evidently_drift.py")
    output = run([str(python), str(script), str(exchange)], cwd=REPO, env=env)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return {line["number"]: line for line in lines}


# --- Summaries ----------------------------------------------------------------------------------


def alarmed(record: Record) -> bool:
    """Our monitor alarmed on the batch without labels (any of the three alarms)."""
    return bool(record["alarms"])


def evidently_alarmed(record: Record) -> bool:
    """Evidently's data-set drift verdict on the batch."""
    return bool(record["evidently"]["dataset_drift"])


def count(records: list[Record], test: Callable[[Record], bool]) -> tuple[int, int]:
    """How many of `records` pass `test`, of how many."""
    return sum(bool(test(record)) for record in records), len(records)


def first_alarms(
    records: list[Record], test: Callable[[Record], bool]
) -> tuple[int, list[int], int]:
    """Runs with an alarm on a drifted batch, the batch of each run's first one, and the runs."""
    drifting = [r for r in records if r["true_shift"] > 0]
    seeds = sorted({r["seed"] for r in records})
    delays = []
    for seed in seeds:
        flagged = [r["step"] for r in drifting if r["seed"] == seed and test(r)]
        if flagged:
            delays.append(min(flagged))
    return len(delays), delays, len(seeds)


def groups(records: Iterable[Record], order: list[str]) -> list[tuple[str, float, list[Record]]]:
    """Records grouped by (family, strength), in `order` of families, then by strength."""
    keyed: dict[tuple[str, float], list[Record]] = {}
    for record in records:
        keyed.setdefault((record["family"], record["strength"]), []).append(record)
    keys = sorted(keyed, key=lambda key: (order.index(key[0]), key[1]))
    return [(family, strength, keyed[family, strength]) for family, strength in keys]


def within(record: Record) -> bool | None:
    """The realised precision lies in the estimate's interval (None: nothing to compare)."""
    estimate, realised = record["estimate"], record["precision"]
    if estimate is None or realised is None or estimate["precision_low"] is None:
        return None
    return bool(estimate["precision_low"] <= realised <= estimate["precision_high"])


def estimate_breach(record: Record) -> bool:
    """The label-free estimate fell below a floor (precision or recall)."""
    return bool(record["estimate"] and record["estimate"]["breach"])


def estimate_error(record: Record) -> float | None:
    """|estimated - realised precision| (None: nothing to compare)."""
    estimate, realised = record["estimate"], record["precision"]
    if estimate is None or realised is None or estimate["precision"] is None:
        return None
    return abs(estimate["precision"] - realised)


# --- Markdown -----------------------------------------------------------------------------------


def fraction(value: tuple[int, int] | None) -> str:
    """``3/5 (60%)``, or ``-`` for nothing."""
    if value is None or value[1] == 0:
        return "-"
    return f"{value[0]}/{value[1]} ({value[0] / value[1]:.0%})"


def number(value: float | None, spec: str) -> str:
    """`value` formatted, or ``-`` for nothing."""
    return "-" if value is None else format(value, spec)


def strength_label(family: str, strength: float) -> str:
    """How strong an injection is, in its own unit."""
    if family == "none":
        return "-"
    if family.startswith("shift"):
        return f"+{strength:g} sd"
    return f"{strength:.0%} of {'the batch' if family == 'mix' else 'rows'}"


def injection_table(records: list[Record], meta: Record) -> list[str]:
    """Per injected family and strength (and the clean batches): who alarmed, and on what."""
    targets = meta["targets"]
    columns = {
        "none": "",
        "shift": targets["important"],
        "shift_unimportant": targets["unimportant"],
        "unseen": targets["categorical"],
        "missing": targets["important"],
        "out_of_bounds": targets["bounded"],
        "mix": targets["mix"],
        "label_flip": "label",
    }
    lines = [
        "| family | changed | strength | batches | ours: alarm (no labels) | of which quality / "
        "drift / est. perf. | ours: column flagged | ours: realised breach (labels) | "
        "Evidently: data-set drift | Evidently: column flagged |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    chosen = [r for r in records if r["family"] in columns]
    for family, strength, mine in groups(chosen, list(columns)):
        kinds = " / ".join(str(sum(kind in r["alarms"] for r in mine)) for kind in ALARMS)
        column = mine[0]["column"]
        ours_column = count(mine, lambda r: r["column_drifted"] or r["column_quality"])
        theirs_column = count(mine, lambda r, c=column: c in r["evidently"]["drifted_columns"])
        lines.append(
            f"| {family} | {f'`{columns[family]}`' if columns[family] else '-'} | "
            f"{strength_label(family, strength)} | "
            f"{len(mine)} | {fraction(count(mine, alarmed))} | {kinds} | "
            f"{fraction(ours_column) if column else '-'} | "
            f"{fraction(count(mine, lambda r: r['breach']))} | "
            f"{fraction(count(mine, evidently_alarmed))} | "
            f"{fraction(theirs_column) if column else '-'} |"
        )
    return lines


def clean_table(records: list[Record]) -> list[str]:
    """False alarms: batches of the `none` scenario, where nothing changed."""
    clean = [r for r in records if r["family"] == "none"]
    warned = count(clean, lambda r: r["warnings"] > 0)
    return [
        "| clean batches | ours: alarm (no labels) | ours: realised breach (labels) | ours: "
        "warnings only | Evidently: data-set drift | Evidently: any column flagged |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {len(clean)} | {fraction(count(clean, alarmed))} | "
        f"{fraction(count(clean, lambda r: r['breach']))} | {fraction(warned)} | "
        f"{fraction(count(clean, evidently_alarmed))} | "
        f"{fraction(count(clean, lambda r: r['evidently']['drifted_columns']))} |",
    ]


def scenario_table(records: list[Record]) -> list[str]:
    """The generator's scenarios: runs detected, first alarm, batches flagged, for both."""
    lines = [
        "| scenario | strength | runs detected, ours / Evidently | first alarm (batch, mean), "
        "ours / Evidently | drifted batches flagged, ours | drifted batches flagged, Evidently | "
        "quiet batches flagged, ours | quiet batches flagged, Evidently | realised precision, "
        "drifted |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    scenarios = [r for r in records if r["family"] in SCENARIOS and r["family"] != "none"]
    for family, strength, mine in groups(scenarios, SCENARIOS):
        drifting = [r for r in mine if r["true_shift"] > 0]
        quiet = [r for r in mine if r["true_shift"] == 0]
        ours, theirs = first_alarms(mine, alarmed), first_alarms(mine, evidently_alarmed)
        precision = [r["precision"] for r in drifting if r["precision"] is not None]
        lines.append(
            f"| {family} | {strength:g} | {ours[0]}/{ours[2]} / {theirs[0]}/{theirs[2]} | "
            f"{number(statistics.mean(ours[1]) if ours[1] else None, '.1f')} / "
            f"{number(statistics.mean(theirs[1]) if theirs[1] else None, '.1f')} | "
            f"{fraction(count(drifting, alarmed))} | "
            f"{fraction(count(drifting, evidently_alarmed))} | "
            f"{fraction(count(quiet, alarmed) if quiet else None)} | "
            f"{fraction(count(quiet, evidently_alarmed) if quiet else None)} | "
            f"{number(statistics.mean(precision) if precision else None, '.3f')} |"
        )
    return lines


def timing_table(records: list[Record]) -> list[str]:
    """Seconds per batch of each monitor, as milliseconds."""

    def quantiles(seconds: list[float]) -> str:
        ordered = sorted(seconds)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        return f"{statistics.median(ordered) * 1000:.1f} | {p95 * 1000:.1f}"

    return [
        "| monitor | batches | median ms per batch | p95 ms |",
        "|---|---:|---:|---:|",
        f"| ours (`assess_window`: quality, drift, estimate) | {len(records)} | "
        f"{quantiles([r['seconds'] for r in records])} |",
        f"| Evidently `DataDriftPreset` (`Report.run`) | {len(records)} | "
        f"{quantiles([r['evidently']['seconds'] for r in records])} |",
    ]


def estimate_table(records: list[Record]) -> list[str]:
    """The label-free estimate against the realised precision, per family and in all."""

    def row(name: str, mine: list[Record], relation: str) -> str:
        breached = [r for r in mine if r["breach"]]
        held = [r for r in mine if not r["breach"]]
        return (
            f"| {name} | {len(mine)} | {fraction(count(mine, within))} | "
            f"{number(mean_error(mine), '.3f')} | {number(mean_width(mine), '.3f')} | "
            f"{number(mean_of(mine, 'unexplained_share'), '.2f')} | "
            f"{fraction(count(breached, estimate_breach))} | "
            f"{fraction(count(held, estimate_breach))} | {relation} |"
        )

    order = SCENARIOS + list(INJECTIONS)
    compared = [r for r in records if within(r) is not None]
    lines = [
        "| family | labelled batches | realised precision in the interval | mean abs. error "
        "of the estimate | mean interval width | mean unexplained share | estimate breach where "
        "realised breach | estimate breach, no realised breach | P(label \\| inputs) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for family in sorted({r["family"] for r in compared}, key=order.index):
        lines.append(row(family, [r for r in compared if r["family"] == family], RELATION[family]))
    kept = [r for r in compared if RELATION[r["family"]].startswith("kept")]
    lines.append(row("**all**", compared, ""))
    lines.append(row("**relation kept** (clean, mix)", kept, "kept"))
    return lines


def mean_width(records: list[Record]) -> float | None:
    """Mean width of the precision interval over `records` (None: nothing to compare)."""
    widths = [
        r["estimate"]["precision_high"] - r["estimate"]["precision_low"]
        for r in records
        if within(r) is not None
    ]
    return statistics.mean(widths) if widths else None


def mean_of(records: list[Record], key: str) -> float | None:
    """Mean of an estimate's field over `records` that have an estimate."""
    values = [r["estimate"][key] for r in records if r["estimate"] is not None]
    return statistics.mean(values) if values else None


def mean_error(records: list[Record]) -> float | None:
    """Mean |estimated - realised precision| over `records` (None: nothing to compare)."""
    errors = [e for e in (estimate_error(r) for r in records) if e is not None]
    return statistics.mean(errors) if errors else None


def evidently_methods(records: list[Record]) -> str:
    """The tests Evidently chose, with the number of columns each (per batch, if they varied)."""
    chosen: dict[str, set[str]] = {}
    for record in records:
        for column, method in record["evidently"]["methods"].items():
            chosen.setdefault(column, set()).add(method)
    tally: dict[str, int] = {}
    for methods in chosen.values():
        key = " or ".join(sorted(methods))
        tally[key] = tally.get(key, 0) + 1
    return "; ".join(f"{method} on {n} column(s)" for method, n in sorted(tally.items()))


def markdown(result: Record, options: Record, seconds: Record) -> str:
    """The tables for docs/benchmarks.md."""
    meta, records = result["drift"]["meta"], result["drift"]["records"]
    targets, importance = meta["targets"], meta["importance"]
    clean = sum(r["family"] == "none" for r in records)

    def ranked(name: str) -> str:
        return f"`{name}` (importance {importance[name]:.4f})"

    lines = [
        f"Champion v{meta['model_version']} ({meta['estimator']}; held-out precision "
        f"{meta['baseline']['precision']:.3f}, recall {meta['baseline']['recall']:.3f}; "
        f"reference: its {meta['reference_rows']:,} held-out rows), shipped `monitor` thresholds; "
        f"a realised breach is precision below held-out - {meta['max_precision_drop']:g} or "
        f"recall below held-out - {meta['max_recall_drop']:g}. Batches of "
        f"{options['customers']:,} customers, all labelled. Scenarios: {options['seeds']} seeds "
        f"x {options['batches']} batches per scenario and strength ({clean} clean batches); "
        f"gradual and incremental drift complete after {options['horizon']} batches, recurring "
        f"drift is on for {options['horizon']} batches then off for {options['horizon']}. "
        f"Injections: {options['inject_batches']} clean batches per strength, the same ones for "
        f"every strength; the most important numeric feature is "
        f"{ranked(targets['important'])}, the least {ranked(targets['unimportant'])}, the "
        f"categorical one {ranked(targets['categorical'])}, the bounded one "
        f"`{targets['bounded']}` (minimum {targets['bounded_minimum']:g}); the mix shift "
        f"oversamples `{targets['mix']}` ({targets['mix_reference_share']:.1%} of the "
        f"reference). Evidently's tests, its own choice: {evidently_methods(records)}. "
        f"{len(records)} batches in all; one dbt build featurised the scenarios' batches in "
        f"{meta['build_seconds']} s; whole run {seconds['total']:.0f} s, of which Evidently "
        f"{seconds['evidently']:.0f} s (load average {seconds['load']:.1f} at the start, "
        f"{os.cpu_count()} cores).",
        "",
        "Injected faults (*column flagged*: ours names the changed column, as drifted, as a "
        "moderate shift or in a quality issue; Evidently's per-column drift test fails on it):",
        "",
        *injection_table(records, meta),
        "",
        "False alarms on clean batches:",
        "",
        *clean_table(records),
        "",
        "The generator's drift scenarios (*first alarm*: the batch of the first alarm in a run, "
        "1 = the first drifted batch; *quiet batches*: recurring drift's off phase):",
        "",
        *scenario_table(records),
        "",
        "Time per batch (the same batches; ours also checks quality and estimates performance):",
        "",
        *timing_table(records),
        "",
        "The label-free performance estimate against the realised precision of every batch "
        "(all strengths of a family together):",
        "",
        *estimate_table(records),
    ]
    log = result["log"]
    lines += [
        "",
        "Prediction log on the service's hot path (`request_log_rows` + "
        "`PredictionLogWriter.submit` per request while the background thread writes Parquet):",
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
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--customers", type=int, default=1000, help="customers per batch")
    parser.add_argument("--horizon", type=int, default=4)
    parser.add_argument("--strengths", default="0.5,1.0", help="drift strengths, comma-separated")
    parser.add_argument(
        "--inject-batches", type=int, default=5, help="clean batches per injection and strength"
    )
    parser.add_argument(
        "--mix", default="segment=corporate", help="feature=value oversampled by the mix shift"
    )
    parser.add_argument(
        "--evidently-venv",
        type=Path,
        default=Path.home() / ".cache" / "cookiecutter-mlops-bench" / "evidently",
        help="Evidently's virtualenv (created when missing)",
    )
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
        "inject_batches": args.inject_batches,
        "injections": INJECTIONS,
        "mix": args.mix,
        "log_calls": args.log_calls,
    }
    python = evidently_python(args.evidently_venv.resolve())
    load = os.getloadavg()[0]  # other work on the machine shows in every timing
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as scratch:
        project = args.project.resolve() if args.project else prepare(Path(scratch))
        exchange = Path(scratch) / "exchange"
        options["exchange"] = str(exchange)
        script = Path(__file__).with_name("drift_scenarios.py")
        package = package_of(project)
        command = ["uv", "run", "--no-sync", "python", str(script), package, json.dumps(options)]
        output = run(command, cwd=project)
        tick = time.perf_counter()
        verdicts = run_evidently(python, exchange)
        evidently_seconds = time.perf_counter() - tick
    result = json.loads(output.strip().splitlines()[-1])
    records = result["drift"]["records"]
    missing = [r["number"] for r in records if r["number"] not in verdicts]
    if missing:
        sys.exit(f"Evidently gave no verdict on batches {missing[:10]}")
    for record in records:
        record["evidently"] = verdicts[record["number"]]
    seconds = {
        "total": time.perf_counter() - started,
        "evidently": evidently_seconds,
        "load": load,
    }
    table = markdown(result, options, seconds)
    print(table)
    if args.write:
        write_into_docs(table)
    if os.environ.get("BENCH_DRIFT_JSON"):
        Path(os.environ["BENCH_DRIFT_JSON"]).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
