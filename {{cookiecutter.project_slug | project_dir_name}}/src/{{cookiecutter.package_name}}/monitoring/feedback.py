"""The feedback loop: production batches in, labels back late, labelled data folded into training.

:func:`run_drift_demo` plays production for ``make drift-demo SCENARIO=...``: it emits
``monitor.demo.batches`` batches of new customers under the chosen drift
(``data.generate.generate_batch``) and builds their features with the same dbt project as
training; then, batch by batch, it scores them with the champion (logging every prediction),
releases the labels of the batches that are ``label_delay`` batches old, and runs the monitor on
the new batch.

:func:`fold_labelled_batches` is the first half of ``make retrain``: batches whose labels have
arrived are appended to the raw tables, and DVC records the result as a new version of the raw
data; the Makefile then runs the whole loop again, through the same gates.

Two simplifications of the demo, both stated where they happen: a batch is generated as of the
reference extract date (so its sales are not cut off by the extract date when folded into the
raw data), and its customer and sale ids are renumbered so that batches of several demo runs
never collide.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pandas as pd

from ..config import ConfigError
from ..params import demo_source
from .monitor import MonitorError, labels_dir, run_monitor
from .performance import write_labels

if TYPE_CHECKING:
    from ..config import Settings
    from ..data.generate import DriftKind, SourceTables
    from ..params import Params
    from .monitor import MonitorResult

logger = logging.getLogger(__name__)

BATCH_FILE = "batch.json"
# Batch `n` gets customer ids from n * ID_BLOCK + 1 (and sale ids from n * ID_BLOCK * 10 + 1),
# far above the reference extract's ids.
ID_BLOCK = 1_000_000


@dataclass
class ProductionBatch:
    """One emitted batch: where its raw tables are, and how far it went through the loop."""

    batch_id: str
    number: int
    kind: str
    step: int
    strength: float
    rows: int
    labels_released: bool = False
    folded: bool = False

    def folder(self, settings: Settings) -> Path:
        """The batch's folder (raw tables and this record)."""
        return production_dir(settings) / self.batch_id

    def save(self, settings: Settings) -> None:
        """Write the batch record next to its tables."""
        path = self.folder(settings) / BATCH_FILE
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


def production_dir(settings: Settings) -> Path:
    """Where emitted production batches are kept until they are folded into the raw data."""
    return settings.data_dir / "production"


def list_batches(settings: Settings) -> list[ProductionBatch]:
    """Every emitted batch, in emission order."""
    folder = production_dir(settings)
    batches = [
        ProductionBatch(**json.loads(path.read_text(encoding="utf-8")))
        for path in folder.glob(f"*/{BATCH_FILE}")
    ]
    return sorted(batches, key=lambda batch: batch.number)


def renumber(tables: SourceTables, number: int) -> SourceTables:
    """Give batch `number` its own block of customer and sale ids (order kept)."""
    from ..data.generate import SourceTables

    customers, sales = tables.customers.copy(), tables.sales.copy()
    customer_ids = {
        old: number * ID_BLOCK + index
        for index, old in enumerate(customers["customer_id"], start=1)
    }
    if len(customer_ids) >= ID_BLOCK:
        raise ValueError(f"a batch holds at most {ID_BLOCK - 1} customers")
    customers["customer_id"] = customers["customer_id"].map(customer_ids)
    sales["customer_id"] = sales["customer_id"].map(customer_ids)
    sales["sale_id"] = [number * ID_BLOCK * 10 + index for index in range(1, len(sales) + 1)]
    return SourceTables(customers=customers, sales=sales)


def production_tables(
    params: Params, kind: DriftKind, step: int, run: int, number: int
) -> SourceTables:
    """The raw tables of production batch `step` of drift `kind`, with batch `number`'s ids.

    Args:
        params: ``data`` (seed, sizes, extract date) and ``monitor.demo``.
        kind: The drift scenario.
        step: The batch's place in the scenario (drift grows with it; from 1).
        run: The demo run (several runs draw different customers).
        number: The batch's number among all batches (sets its id block).
    """
    from ..data.generate import generate_batch

    source, demo = demo_source(params, "`make drift-demo`"), params.monitor.demo
    # As many sales per customer as the reference extract: otherwise n_orders would "drift".
    ratio = source.n_sales / source.n_customers
    tables = generate_batch(
        seed=source.seed + run,
        n_customers=demo.customers_per_batch,
        n_sales=round(demo.customers_per_batch * ratio),
        # The generator dates batch `step` `step` weeks after the extract date it is given: give
        # it the date that lands the batch on the reference extract date (see the docstring).
        extract_date=source.extract_date - timedelta(weeks=step),
        kind=kind,
        strength=demo.strength,
        step=step,
        horizon=demo.horizon,
    )
    return renumber(tables, number)


def emit_batch(
    settings: Settings, params: Params, kind: DriftKind, step: int, run: int
) -> ProductionBatch:
    """Generate production batch `step` of drift `kind` and write its raw tables.

    Args:
        settings: Where the project is.
        params: ``data`` (seed, sizes, extract date) and ``monitor.demo``.
        kind: The drift scenario.
        step: The batch's place in the scenario (drift grows with it; from 1).
        run: The demo run (several runs draw different customers).
    """
    from ..data.generate import write_tables

    number = max((batch.number for batch in list_batches(settings)), default=0) + 1
    tables = production_tables(params, kind, step, run, number)
    batch = ProductionBatch(
        batch_id=f"batch-{number:04d}-{kind}-{step}",
        number=number,
        kind=kind,
        step=step,
        strength=params.monitor.demo.strength,
        rows=len(tables.customers),
    )
    write_tables(tables, batch.folder(settings) / "raw")
    batch.save(settings)
    return batch


def build_features(settings: Settings, params: Params, folder: Path) -> pd.DataFrame:
    """The feature table of the raw tables in ``<folder>/raw``, built by the project's dbt models.

    The warehouse is a scratch DuckDB file in `folder`, removed afterwards, whatever the project's
    target: its own warehouse is not touched.
    """
    from ..data.build import build_warehouse
    from ..data.warehouse import load_feature_table

    scratch = settings.model_copy(
        update={
            "data_dir": folder,
            "reports_dir": folder / "reports",
            "warehouse_path": folder / "warehouse.duckdb",
            "dbt_target": "duckdb",
        }
    )
    try:
        build_warehouse(scratch, params)
        return load_feature_table(scratch)
    finally:
        shutil.rmtree(folder / "reports", ignore_errors=True)
        (folder / "warehouse.duckdb").unlink(missing_ok=True)


def score_and_log(settings: Settings, table: pd.DataFrame, batch_id: str) -> tuple[str, int]:
    """Score `table` with the champion, as the score step does, and log it under `batch_id`.

    Returns:
        The champion version that scored, and the number of rows.
    """
    from ..batch import score_chunks
    from ..prediction_log import log_batch
    from ..registry import CHAMPION, fetch_registered

    model = fetch_registered(settings, CHAMPION)
    labels, scores, per_row_ms = score_chunks(model, table)
    log_batch(
        settings.prediction_log_dir,
        table,
        model.contract,
        labels,
        scores,
        model=(model.name, model.version),
        batch_id=batch_id,
        scored_at=datetime.now(tz=UTC),
        latency_ms=per_row_ms,
    )
    return model.version, len(table)


def release_labels(settings: Settings, up_to: int) -> list[str]:
    """Labels of batches numbered `up_to` or lower "arrive": written to ``data/labels/``."""
    released = []
    for batch in list_batches(settings):
        if batch.number > up_to or batch.labels_released:
            continue
        customers = pd.read_csv(batch.folder(settings) / "raw" / "customers.csv", dtype=str)
        write_labels(
            labels_dir(settings),
            batch.batch_id,
            customers["customer_id"].tolist(),
            customers["label"].tolist(),
        )
        batch.labels_released = True
        batch.save(settings)
        released.append(batch.batch_id)
    return released


def run_drift_demo(settings: Settings, params: Params, kind: str) -> list[MonitorResult]:
    """Emit, score and monitor ``monitor.demo.batches`` production batches of drift `kind`.

    Returns:
        The monitoring result of each batch, in order.

    Raises:
        ConfigError: when `kind` is not a drift kind of the generator, or the project's data
            are its own files (the batches come from the demo generator).
    """
    from ..data.generate import DRIFT_KINDS

    demo_source(params, "`make drift-demo`")
    if kind not in DRIFT_KINDS:
        raise ConfigError(f"unknown drift kind {kind!r}; choose one of {', '.join(DRIFT_KINDS)}")
    drift = cast("DriftKind", kind)
    demo = params.monitor.demo
    # Each demo run draws other customers: its number is one more than the runs before it.
    run = 1 + sum(batch.step == 1 for batch in list_batches(settings))
    steps = range(1, demo.batches + 1)
    batches = [emit_batch(settings, params, drift, step, run) for step in steps]
    results = []
    for batch, table in zip(batches, featurise(settings, params, batches), strict=True):
        version, rows = score_and_log(settings, table, batch.batch_id)
        logger.info("Scored %s: %d rows with v%s", batch.batch_id, rows, version)
        release_labels(settings, batch.number - demo.label_delay)
        results.append(run_monitor(settings, params, batch_id=batch.batch_id))
    return results


def featurise(
    settings: Settings, params: Params, batches: list[ProductionBatch]
) -> list[pd.DataFrame]:
    """Each batch's feature table, from one dbt build over the batches' raw tables together.

    One build, not one per batch: dbt's start-up is most of a small build. The batches' ids lie in
    separate blocks (:data:`ID_BLOCK`), so each batch's rows come apart again; and every feature is
    computed per customer against the one extract date of ``params.yaml``, so a row's features
    are those a build of its batch alone would give.
    """
    from ..contract import load_contract

    with tempfile.TemporaryDirectory(dir=settings.data_dir) as scratch:
        folder = Path(scratch)
        (folder / "raw").mkdir()
        for table in ("customers", "sales"):
            with (folder / "raw" / f"{table}.csv").open("w", encoding="utf-8") as together:
                for index, batch in enumerate(batches):
                    lines = (batch.folder(settings) / "raw" / f"{table}.csv").read_text("utf-8")
                    # The header once, from the first batch; the rows of every batch.
                    together.write(lines if index == 0 else lines.split("\n", 1)[1])
        features = build_features(settings, params, folder)
    block = features[load_contract(settings).id_column] // ID_BLOCK
    return [features[block == batch.number].reset_index(drop=True) for batch in batches]


def fold_labelled_batches(settings: Settings) -> list[str]:
    """Append every labelled, not yet folded batch to the raw tables; record them with DVC.

    Returns:
        The ids of the batches folded (empty when there was nothing to fold).

    Raises:
        MonitorError: when the raw tables to fold into are not there (run ``make data``).
    """
    missing = [
        name for name in ("customers", "sales") if not (settings.raw_dir / f"{name}.csv").is_file()
    ]
    if missing:
        raise MonitorError(
            f"{settings.raw_dir}: no {', '.join(missing)} table to fold into; run `make data`"
        )
    batches = [
        batch for batch in list_batches(settings) if batch.labels_released and not batch.folded
    ]
    if not batches:
        logger.info("No labelled production batch to fold into the raw data")
        return []
    for table in ("customers", "sales"):
        path = settings.raw_dir / f"{table}.csv"
        # Read as text and written back as text: the existing rows keep their exact bytes.
        frames = [pd.read_csv(path, dtype=str, keep_default_na=False)]
        frames += [
            pd.read_csv(
                batch.folder(settings) / "raw" / f"{table}.csv", dtype=str, keep_default_na=False
            )
            for batch in batches
        ]
        partial = path.with_suffix(".csv.partial")
        pd.concat(frames, ignore_index=True).to_csv(partial, index=False, lineterminator="\n")
        partial.replace(path)
    for batch in batches:
        batch.folded = True
        batch.save(settings)
    logger.info(
        "Folded %d labelled batch(es) into %s: %s",
        len(batches),
        settings.raw_dir,
        ", ".join(batch.batch_id for batch in batches),
    )
    commit_raw_data(settings)
    return [batch.batch_id for batch in batches]


def commit_raw_data(settings: Settings) -> None:
    """Record the changed raw tables as a new DVC version (``dvc commit``), when DVC is set up.

    Raises:
        DataVersioningError: when ``dvc commit`` fails (its output is in the message).
    """
    from ..data.versioning import run_dvc

    if not (settings.project_dir / ".dvc").is_dir():
        logger.warning("DVC is not set up here (run `make setup`): the raw data is not versioned")
        return
    targets = [
        str(path.relative_to(settings.project_dir))
        for path in sorted(settings.raw_dir.glob("*.csv"))
    ]
    run_dvc(settings, "commit", "--force", "--quiet", *targets)
    logger.info("DVC recorded the new raw data version (commit dvc.lock to keep it)")
