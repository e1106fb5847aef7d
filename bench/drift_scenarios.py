"""Run inside a generated project (its own interpreter): drift, injected faults, logging cost.

Called by ``bench_drift.py`` as ``python drift_scenarios.py <package> <options as JSON>``; prints
one JSON document on stdout, and writes the feature columns of the reference and of every batch as
Parquet into ``options["exchange"]``, where ``evidently_drift.py`` judges the same batches.

Uses the project's own code end to end: the demo generator's production batches, the project's dbt
models for the features (one build for every batch), the champion model and the reference profile
recorded with it, the monitor's single entry point (``monitor.assess_window``) with the shipped
thresholds, and the monitor's realised-performance check for the labels. Nothing here
re-implements a step. The injected faults are this benchmark's own: each is applied in feature
space to clean production batches (the ``none`` scenario's, featurised by dbt like the rest), so
every other column and every label stays as the generator made it (see :data:`INJECTIONS`).
"""

from __future__ import annotations

import importlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

UNSEEN = "__unseen__"  # a category no training row had
BATCH_COLUMN = "_batch"  # the batch number in batches.parquet (no feature name starts with "_")


@dataclass
class Batch:
    """One batch to judge: its rows (features, id and label) and how it was made."""

    number: int
    family: str  # a drift scenario of the generator, or an injection (:data:`INJECTIONS`)
    strength: float
    seed: int
    step: int
    column: str | None = None  # the column an injection changed (None: labels, or a scenario)
    true_shift: float | None = None  # the generator's mean shift of the batch (scenarios only)
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass(frozen=True)
class Project:
    """The generated project's modules, its settings, and the champion the batches are judged by."""

    modules: SimpleNamespace
    settings: Any  # the project's Settings, Params, ...: their classes live in its package
    params: Any
    contract: Any
    version: str
    run_id: str  # the champion's training run
    reference: Any
    model: Any
    importance: dict[str, float]  # permutation importance from the champion's evaluation

    @property
    def positive(self) -> str:
        """The class whose probability is the score."""
        return str(self.reference.positive_class)


def load_project(package: str) -> Project:
    """Import the project's modules and load the champion, its reference and its evaluation."""
    name = package  # the generated package's import name
    modules = SimpleNamespace(
        config=importlib.import_module(f"{name}.config"),
        contract=importlib.import_module(f"{name}.contract"),
        evaluation=importlib.import_module(f"{name}.evaluation.step"),
        evaluation_report=importlib.import_module(f"{name}.evaluation.report"),
        feedback=importlib.import_module(f"{name}.monitoring.feedback"),
        generate=importlib.import_module(f"{name}.data.generate"),
        monitor=importlib.import_module(f"{name}.monitoring.monitor"),
        params=importlib.import_module(f"{name}.params"),
        performance=importlib.import_module(f"{name}.monitoring.performance"),
        reference=importlib.import_module(f"{name}.monitoring.reference"),
        tracking=importlib.import_module(f"{name}.tracking"),
        training=importlib.import_module(f"{name}.training"),
        warehouse=importlib.import_module(f"{name}.data.warehouse"),
    )
    modules.config.disable_telemetry()
    settings = modules.config.get_settings()
    params = modules.params.load_params(settings.params_file)
    version = modules.monitor.champion_version(settings)
    client = modules.tracking.connect(settings, create=False)
    run_id = str(client.get_model_version(settings.model_name, version).run_id)
    report = modules.evaluation_report.EvaluationReport.model_validate_json(
        modules.tracking.run_artifact_text(client, run_id, "evaluation/report.json")
    )
    return Project(
        modules=modules,
        settings=settings,
        params=params,
        contract=modules.contract.load_contract(settings),
        version=version,
        run_id=run_id,
        reference=modules.reference.recorded_reference(settings, version),
        model=modules.tracking.load_sklearn_model(f"models:/{settings.model_name}/{version}"),
        importance=dict(report.permutation_importance),
    )


def held_out_features(project: Project) -> pd.DataFrame:
    """The champion's held-out rows (its reference), found as the evaluate step finds them."""
    modules, settings, contract = project.modules, project.settings, project.contract
    client = modules.tracking.connect(settings, create=False)
    artifact = modules.training.TEST_IDS_ARTIFACT
    test_ids = json.loads(modules.tracking.run_artifact_text(client, project.run_id, artifact))
    table = modules.warehouse.load_feature_table(settings, contract, rows="labelled")
    rows = modules.evaluation.held_out_rows(table, contract, list(test_ids[contract.id_column]))
    # Both monitors must judge against the same rows: the profile was built from these.
    if len(rows) != project.reference.n_rows:
        sys.exit(f"{len(rows)} held-out rows, the reference profile has {project.reference.n_rows}")
    return rows[contract.feature_columns]


# --- The generator's drift scenarios ----------------------------------------------------------


def scenario_batches(project: Project, options: dict[str, Any]) -> list[Batch]:
    """Every (scenario, strength, seed, batch) of the generator, featurised by one dbt build."""
    modules, shipped = project.modules, project.params
    batches, tables = [], []
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
                    number = len(batches) + 1
                    tables.append(
                        modules.feedback.production_tables(params, kind, step, seed, number)
                    )
                    # The drift actually applied: the generator's mean shift at this step.
                    true_shift = modules.generate.drift_shift(
                        kind,
                        strength,
                        step=step,
                        horizon=options["horizon"],
                        n_rows=10_000,
                        rng=np.random.default_rng(0),
                    ).mean()
                    batches.append(
                        Batch(
                            number=number,
                            family=kind,
                            strength=strength,
                            seed=seed,
                            step=step,
                            true_shift=round(float(true_shift), 4),
                        )
                    )
    with tempfile.TemporaryDirectory(dir=project.settings.data_dir) as scratch:
        folder = Path(scratch)
        modules.generate.write_tables(
            modules.generate.SourceTables(
                customers=pd.concat([t.customers for t in tables], ignore_index=True),
                sales=pd.concat([t.sales for t in tables], ignore_index=True),
            ),
            folder / "raw",
        )
        features = modules.feedback.build_features(project.settings, shipped, folder)
    block = features[project.contract.id_column] // modules.feedback.ID_BLOCK
    for batch in batches:
        batch.rows = features[block == batch.number].reset_index(drop=True)
    return batches


# --- Injected faults ----------------------------------------------------------------------------
# Each injection takes a clean batch's rows and returns the changed rows; `rng` picks the rows.


@dataclass(frozen=True)
class Target:
    """The columns the injections change, chosen from the champion's importance and the contract."""

    important: str  # the numeric feature with the highest permutation importance
    unimportant: str  # the numeric feature with the lowest
    categorical: str  # the categorical feature with the highest
    bounded: str  # the most important numeric feature with a contract minimum
    mix: tuple[str, str]  # (categorical feature, value) oversampled by the mix shift


def choose_targets(project: Project, mix: str) -> Target:
    """The injected columns (see :class:`Target`); `mix` is ``feature=value``.

    Raises:
        SystemExit: when the mix value is not a category of a categorical feature in the
            reference, or no numeric feature has a minimum.
    """
    contract = project.contract

    def importance(name: str) -> float:
        return project.importance.get(name, 0.0)

    numeric = sorted(contract.numeric_features, key=importance, reverse=True)
    bounded = [name for name in numeric if contract.column(name).minimum is not None]
    feature, _, value = mix.partition("=")
    counts = project.reference.categorical.get(feature)
    if counts is None or value not in counts.counts:
        sys.exit(f"--mix {mix}: not a categorical feature=value seen in the reference")
    if not bounded:
        sys.exit("no numeric feature has a contract minimum: nothing to push out of bounds")
    return Target(
        important=numeric[0],
        unimportant=numeric[-1],
        categorical=max(contract.categorical_features, key=importance),
        bounded=bounded[0],
        mix=(feature, value),
    )


def _some(rows: pd.DataFrame, share: float, rng: np.random.Generator) -> np.ndarray:
    """A boolean mask selecting round(share * len(rows)) rows at random."""
    mask = np.zeros(len(rows), dtype=bool)
    mask[rng.choice(len(rows), round(share * len(rows)), replace=False)] = True
    return mask


def shift(project: Project, column: str) -> Callable[..., pd.DataFrame]:
    """Add `strength` reference standard deviations to every value of `column`."""
    sd = float(np.std(project.reference.numeric[column].sample))
    whole = project.contract.column(column).is_integer

    def apply(rows: pd.DataFrame, strength: float, _rng: np.random.Generator) -> pd.DataFrame:
        values = rows[column] + strength * sd
        return rows.assign(**{column: values.round() if whole else values})

    return apply


def unseen(column: str) -> Callable[..., pd.DataFrame]:
    """Write a category never seen in training into a `strength` share of the rows."""

    def apply(rows: pd.DataFrame, strength: float, rng: np.random.Generator) -> pd.DataFrame:
        return rows.assign(**{column: rows[column].where(~_some(rows, strength, rng), UNSEEN)})

    return apply


def missing(column: str) -> Callable[..., pd.DataFrame]:
    """Blank `column` in a `strength` share of the rows (NaN; the column is numeric)."""

    def apply(rows: pd.DataFrame, strength: float, rng: np.random.Generator) -> pd.DataFrame:
        return rows.assign(**{column: rows[column].mask(_some(rows, strength, rng))})

    return apply


def out_of_bounds(project: Project, column: str) -> Callable[..., pd.DataFrame]:
    """A sign error in a `strength` share of the rows: each lands below the contract's minimum.

    The value is mirrored around the minimum and one more unit below it (``minimum - 1 -
    |value - minimum|``), so a value at the minimum is out of bounds too.
    """
    low = float(project.contract.column(column).minimum)

    def apply(rows: pd.DataFrame, strength: float, rng: np.random.Generator) -> pd.DataFrame:
        broken = low - 1 - (rows[column].fillna(low) - low).abs()
        return rows.assign(**{column: rows[column].where(~_some(rows, strength, rng), broken)})

    return apply


def mix_shift(pool: pd.DataFrame, column: str, value: str) -> Callable[..., pd.DataFrame]:
    """A batch drawn from the clean pool with `column == value` making up a `strength` share.

    Whole rows are drawn (without replacement), so each keeps its own label: the inputs' mix moves,
    the relation between inputs and label does not (pure covariate shift).
    """
    chosen = pool[pool[column] == value]
    others = pool[pool[column] != value]

    def apply(rows: pd.DataFrame, strength: float, rng: np.random.Generator) -> pd.DataFrame:
        wanted = round(strength * len(rows))
        if wanted > len(chosen) or len(rows) - wanted > len(others):
            sys.exit(
                f"mix shift: the clean pool has {len(chosen)} rows with {column}={value} and "
                f"{len(others)} without; {wanted} and {len(rows) - wanted} are needed (more "
                "--seeds or --batches make a larger pool)"
            )
        picked = [
            chosen.iloc[rng.choice(len(chosen), wanted, replace=False)],
            others.iloc[rng.choice(len(others), len(rows) - wanted, replace=False)],
        ]
        return pd.concat(picked, ignore_index=True)

    return apply


def label_flip(project: Project) -> Callable[..., pd.DataFrame]:
    """Swap the label of a `strength` share of the rows (to another label value); inputs unchanged.

    Concept drift in its barest form: ``P(label | inputs)`` changes, the inputs do not.
    """
    label = project.contract.label_column
    values = list(project.contract.label_values) or sorted(project.reference.baseline)

    def apply(rows: pd.DataFrame, strength: float, rng: np.random.Generator) -> pd.DataFrame:
        mask = _some(rows, strength, rng)
        old = rows.loc[mask, label].astype(str).to_numpy()
        new = [rng.choice([v for v in values if v != current]) for current in old]
        flipped = rows[label].astype(object).copy()
        flipped.loc[mask] = new
        return rows.assign(**{label: flipped})

    return apply


INJECTIONS = {
    "shift": "the most important numeric feature + strength x its reference sd",
    "shift_unimportant": "the least important numeric feature + strength x its reference sd",
    "unseen": "a never-seen category in a share of rows of the most important categorical feature",
    "missing": "the most important numeric feature blank in a share of rows",
    "out_of_bounds": "a share of rows of a bounded numeric feature below its contract minimum",
    "mix": "a rare category oversampled to a share of the batch (rows keep their labels)",
    "label_flip": "a share of labels flipped, inputs unchanged",
}


def injected_batches(
    project: Project, clean: list[Batch], options: dict[str, Any], first_number: int
) -> tuple[list[Batch], Target]:
    """Each injection at each strength on the same `options["inject_batches"]` clean batches.

    The clean batches are spread over the seeds (step 1 of seed 1, 2, ... first), and every
    strength of a family changes the same batches, so strengths differ by the strength alone.
    """
    target = choose_targets(project, options["mix"])
    bases = sorted(clean, key=lambda batch: (batch.step, batch.seed))[: options["inject_batches"]]
    pool = pd.concat([batch.rows for batch in clean], ignore_index=True)
    makers: dict[str, tuple[str | None, Callable[..., pd.DataFrame]]] = {
        "shift": (target.important, shift(project, target.important)),
        "shift_unimportant": (target.unimportant, shift(project, target.unimportant)),
        "unseen": (target.categorical, unseen(target.categorical)),
        "missing": (target.important, missing(target.important)),
        "out_of_bounds": (target.bounded, out_of_bounds(project, target.bounded)),
        "mix": (target.mix[0], mix_shift(pool, *target.mix)),
        "label_flip": (None, label_flip(project)),
    }
    batches = []
    for index, (family, strengths) in enumerate(options["injections"].items()):
        column, inject = makers[family]
        for level, strength in enumerate(strengths):
            for base in bases:
                rng = np.random.default_rng([base.number, index, level])
                batches.append(
                    Batch(
                        number=first_number + len(batches),
                        family=family,
                        strength=strength,
                        seed=base.seed,
                        step=base.step,
                        column=column,
                        rows=inject(base.rows, strength, rng),
                    )
                )
    return batches, target


# --- Judging ------------------------------------------------------------------------------------


def judge(project: Project, batch: Batch) -> dict[str, Any]:
    """Score the batch with the champion, assess it as the monitor does, and check the labels."""
    contract, monitor_params = project.contract, project.params.monitor
    inputs = batch.rows[contract.feature_columns]
    classes = [str(c) for c in project.model.classes_]
    scores = project.model.predict_proba(inputs)[:, classes.index(project.positive)]
    predicted = np.asarray(project.model.predict(inputs)).astype(str)
    window = inputs.assign(score=scores, prediction=predicted)
    tick = time.perf_counter()
    assessment = project.modules.monitor.assess_window(project.reference, window, monitor_params)
    seconds = time.perf_counter() - tick
    drift, quality, estimate = assessment.drift, assessment.quality, assessment.estimate
    realised = realised_performance(project, batch, predicted)
    period = realised.periods[-1] if realised.periods else None
    column = batch.column
    return {
        "alarms": list(assessment.alarms),
        "warnings": len(assessment.warnings),
        "seconds": seconds,
        "drift_share": None if drift is None else drift.drift_share,
        "score_psi": None if drift is None else drift.prediction.psi,
        # Drifted or moderate (a warning): either counts towards the drift share.
        "column_drifted": column is not None
        and drift is not None
        and any(f.feature == column and f.severity != "stable" for f in drift.features),
        "column_quality": column is not None
        and quality is not None
        and any(issue.feature == column for issue in quality.issues),
        "estimate": None
        if estimate is None
        else {
            key: getattr(estimate, key)
            for key in (
                "precision",
                "precision_low",
                "precision_high",
                "recall",
                "recall_low",
                "recall_high",
                "unexplained_share",
                "breach",
            )
        },
        "precision": None if period is None else period.precision,
        "recall": None if period is None else period.recall,
        "labelled": 0 if period is None else period.n_labelled,
        "breach": realised.breach,
    }


def realised_performance(project: Project, batch: Batch, predicted: np.ndarray) -> Any:  # noqa: ANN401 (the project's PerformanceResult)
    """The monitor's realised-performance check on the batch, with every label arrived."""
    performance, contract = project.modules.performance, project.contract
    ids = batch.rows[contract.id_column].astype(str).to_numpy()
    log = pd.DataFrame(
        {
            "timestamp": pd.Timestamp("2025-07-01", tz="UTC"),
            "batch_id": f"bench-{batch.number}",
            "entity_id": ids,
            "prediction": predicted,
            "model_version": project.version,
        }
    )
    labels = pd.DataFrame(
        {"entity_id": ids, "label": batch.rows[contract.label_column].astype(str).to_numpy()}
    )
    periods = performance.performance_by_period(log, labels, project.positive)
    return performance.judge_performance(
        periods, project.reference.baseline, project.params.monitor, project.version
    )


def write_exchange(project: Project, batches: list[Batch], folder: Path) -> None:
    """The reference's and every batch's feature columns as Parquet, for evidently_drift.py."""
    contract = project.contract
    folder.mkdir(parents=True, exist_ok=True)
    held_out_features(project).to_parquet(folder / "reference.parquet", index=False)
    frames = [
        batch.rows[contract.feature_columns].assign(**{BATCH_COLUMN: batch.number})
        for batch in batches
    ]
    pd.concat(frames, ignore_index=True).to_parquet(folder / "batches.parquet", index=False)
    columns = {
        "numerical": contract.numeric_features,
        "categorical": contract.categorical_features,
        "batch": BATCH_COLUMN,
    }
    (folder / "columns.json").write_text(json.dumps(columns), encoding="utf-8")


def scenarios(package: str, options: dict[str, Any]) -> dict[str, Any]:
    """One record per batch (scenario or injection): how it was made and both verdicts' inputs."""
    project = load_project(package)
    started = time.perf_counter()
    batches = scenario_batches(project, options)
    build_seconds = time.perf_counter() - started
    clean = [batch for batch in batches if batch.family == "none"]
    injected, target = injected_batches(project, clean, options, len(batches) + 1)
    batches += injected
    write_exchange(project, batches, Path(options["exchange"]))
    records = []
    for batch in batches:
        record = {
            "number": batch.number,
            "family": batch.family,
            "strength": batch.strength,
            "seed": batch.seed,
            "step": batch.step,
            "column": batch.column,
            "true_shift": batch.true_shift,
            "rows": len(batch.rows),
        }
        records.append(record | judge(project, batch))
    seconds = [record["seconds"] for record in records]
    return {
        "meta": {
            "model_version": project.version,
            "estimator": type(project.model[-1]).__name__,
            "baseline": project.reference.baseline,
            "reference_rows": project.reference.n_rows,
            "max_precision_drop": project.params.monitor.max_precision_drop,
            "max_recall_drop": project.params.monitor.max_recall_drop,
            "build_seconds": round(build_seconds, 1),
            "assess_ms_median": round(statistics.median(seconds) * 1000, 1),
            "targets": {
                "important": target.important,
                "unimportant": target.unimportant,
                "categorical": target.categorical,
                "bounded": target.bounded,
                "bounded_minimum": project.contract.column(target.bounded).minimum,
                "mix": "=".join(target.mix),
                "mix_reference_share": _share_in_reference(project, *target.mix),
            },
            "importance": {
                name: round(project.importance.get(name, 0.0), 4)
                for name in project.contract.feature_columns
            },
        },
        "records": records,
    }


def _share_in_reference(project: Project, feature: str, value: str) -> float:
    counts = project.reference.categorical[feature].counts
    return round(counts[value] / sum(counts.values()), 4)


def log_overhead(package: str, options: dict[str, Any]) -> dict[str, Any]:
    """What logging adds to a request: building the rows and queueing them, while files are written.

    The service's hot path builds a request's rows (``prediction_log.request_log_rows``, what
    ``LoadedModel.log_rows`` calls) and queues them (``PredictionLogWriter.submit``); the
    background thread writes Parquet meanwhile. Measured per call, over many calls.
    """
    config = importlib.import_module(f"{package}.config")
    contract_module = importlib.import_module(f"{package}.contract")
    prediction_log = importlib.import_module(f"{package}.prediction_log")
    log_writer = importlib.import_module(f"{package}.serving.log_writer")
    settings = config.get_settings()
    contract = contract_module.load_contract(settings)
    record = {
        name: (1.0 if contract.column(name).is_numeric else "x")
        for name in contract.feature_columns + contract.sensitive_columns
    }
    record[contract.id_column] = 1
    calls = options["log_calls"]
    with tempfile.TemporaryDirectory() as scratch:
        log = log_writer.PredictionLogWriter(Path(scratch), flush_rows=2000, flush_seconds=1.0)
        log.start()
        timings = np.empty(calls)
        for index in range(calls):
            tick = time.perf_counter()
            log.submit(
                prediction_log.request_log_rows(
                    contract,
                    [record],
                    ["good"],
                    [0.9],
                    model=("bench", "1", "champion"),
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
