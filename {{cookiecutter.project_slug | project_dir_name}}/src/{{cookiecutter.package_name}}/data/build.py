"""Transform: load the raw tables and build the warehouse with dbt (sources -> staging -> marts).

On DuckDB the warehouse is built into a fresh file next to the current one and moved into place
only when every dbt model and test passed: a failed run leaves the last good warehouse untouched.
On PostgreSQL there is no such swap: the raw tables are replaced first, a failing source test
skips the models that depend on it, but a model whose own tests fail stays built (dbt builds a
model before it tests it).

dbt runs in a child process (its own logging and globals stay out of ours) from the dbt project
folder, with the locations from :class:`~..config.Settings` passed as environment variables.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StepError
from ..params import DemoSource
from .ingest import RawTable, load_raw_tables, raw_tables

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import duckdb

    from ..config import Settings
    from ..params import Params

logger = logging.getLogger(__name__)

_MAX_REPORTED_FAILURES = 10
# The schema of the duckdb output in profiles.yml; sources load into "<schema>_raw".
DUCKDB_SCHEMA = "main"


class TransformError(StepError):
    """dbt failed: the message lists each failing model or test, its column and its row count."""


@dataclass(frozen=True)
class NodeResult:
    """One dbt node (model, test, seed) of a run."""

    unique_id: str
    resource_type: str
    status: str
    failures: int | None = None
    message: str | None = None
    column: str | None = None
    test_name: str | None = None
    relation: str | None = None

    def describe(self) -> str:
        """A one-line account a reader can act on."""
        if self.resource_type == "test":
            where = f"{self.relation}.{self.column}" if self.column else str(self.relation)
            count = f": {self.failures} failing row(s)" if self.failures else ""
            return f"test {self.test_name} on {where} {self.status}{count} ({self.unique_id})"
        return f"{self.resource_type} {self.unique_id} {self.status}: {self.message}"


@dataclass(frozen=True)
class TransformResult:
    """What a dbt run did: the data-run record keeps this."""

    invocation_id: str
    target: str
    generated_at: str
    elapsed_seconds: float
    tests: dict[str, int]
    row_counts: dict[str, int]
    raw_row_counts: dict[str, int]
    failures: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """The result as indented JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def transform_report_path(settings: Settings) -> Path:
    """Where the last successful transform's result is written."""
    return settings.reports_dir / "transform" / "latest.json"


def warehouse_pin_path(settings: Settings) -> Path:
    """Where the identity of the warehouse last built goes (an output of the transform stage)."""
    return settings.reports_dir / "transform" / "warehouse.json"


def pin_warehouse(settings: Settings) -> Path:
    """Write the identity of the warehouse `settings` name (:func:`warehouse_identity`).

    The transform step writes it with each build. Before a ``dvc repro``, ``pre-repro`` writes it
    too: when the setting changed since the last build, the output no longer matches
    ``dvc.lock``, so DVC builds again (on the new warehouse) and reruns what follows. The file is
    rewritten only when the identity changed, so an unchanged setting leaves DVC up to date.
    """
    path = warehouse_pin_path(settings)
    text = json.dumps(warehouse_identity(settings), indent=2, sort_keys=True) + "\n"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


def warehouse_identity(settings: Settings) -> dict[str, str]:
    """Which warehouse dbt builds into: the target and its location, never a credential.

    A DuckDB file inside the project is named relative to it, so every clone agrees.
    """
    if settings.dbt_target == "postgres":
        return {
            "target": "postgres",
            "host": settings.postgres_host,
            "port": str(settings.postgres_port),
            "database": settings.postgres_db,
            "schema": settings.postgres_schema,
        }
    path = settings.warehouse_path
    if path.is_relative_to(settings.project_dir):
        path = path.relative_to(settings.project_dir)
    return {"target": "duckdb", "path": path.as_posix()}


def dbt_settings_env(settings: Settings, duckdb_path: Path | None = None) -> dict[str, str]:
    """The variables ``profiles.yml`` reads: the warehouse's location and credentials."""
    return {
        "DBT_TARGET": settings.dbt_target,
        "DBT_DUCKDB_PATH": str(duckdb_path or settings.warehouse_path),
        "POSTGRES_HOST": settings.postgres_host,
        "POSTGRES_PORT": str(settings.postgres_port),
        "POSTGRES_USER": settings.postgres_user,
        "DBT_ENV_SECRET_POSTGRES_PASSWORD": settings.postgres_password.get_secret_value(),
        "POSTGRES_DB": settings.postgres_db,
        "POSTGRES_SCHEMA": settings.postgres_schema,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }


def dbt_env(settings: Settings, duckdb_path: Path | None = None) -> dict[str, str]:
    """The environment dbt runs in: ours, plus the locations ``profiles.yml`` reads."""
    return {**os.environ, **dbt_settings_env(settings, duckdb_path)}


@contextmanager
def dbt_environment(settings: Settings, duckdb_path: Path | None = None) -> Iterator[None]:
    """Set the variables ``profiles.yml`` reads in this process, and restore them after.

    For callers that start dbt themselves from this process's environment (dagster-dbt reads
    ``profiles.yml`` in-process too); :func:`run_dbt` passes them to its child directly.
    """
    updates = dbt_settings_env(settings, duckdb_path)
    saved = {name: os.environ.get(name) for name in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_dbt(
    settings: Settings, args: Sequence[str], duckdb_path: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``dbt <args>`` on the project's dbt project; its output is captured and returned."""
    # The `dbt` entry point installed beside this interpreter: the same environment as ours.
    command = [
        str(Path(sys.executable).with_name("dbt")),
        *args,
        "--project-dir",
        str(settings.transform_dir),
        "--profiles-dir",
        str(settings.transform_dir),
    ]
    logger.info("Running dbt %s (target %s)", " ".join(args), settings.dbt_target)
    result = subprocess.run(
        command,
        cwd=settings.transform_dir,
        env=dbt_env(settings, duckdb_path),
        capture_output=True,
        text=True,
        check=False,
    )
    for line in result.stdout.splitlines():
        logger.debug("dbt: %s", line)
    return result


@dataclass(frozen=True)
class WarehouseBuild:
    """A build under way: the raw tables are loaded; run dbt with `dbt_args`, then :meth:`finish`.

    ``duckdb_path`` is the scratch warehouse dbt builds into (DuckDB), or None on PostgreSQL,
    where dbt builds in place.
    """

    settings: Settings
    dbt_args: list[str]
    raw_counts: dict[str, int]
    duckdb_path: Path | None

    def finish(self, returncode: int, target_dir: Path, output: str) -> TransformResult:
        """Judge dbt's run from its artifacts; on success, put the new warehouse in place.

        Args:
            returncode: dbt's exit code.
            target_dir: The folder dbt wrote ``run_results.json`` and ``manifest.json`` to.
            output: dbt's console output (its tail is the message when dbt did not run).

        Raises:
            TransformError: when a dbt model or test failed (on DuckDB, nothing was replaced).
        """
        settings = self.settings
        result = _judge(self, returncode, target_dir, output)
        if self.duckdb_path is not None:
            self.duckdb_path.replace(settings.warehouse_path)
        report = transform_report_path(settings)
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(result.to_json(), encoding="utf-8")
        pin_warehouse(settings)
        logger.info(
            "Warehouse built (%s): %s; tests %s",
            settings.dbt_target,
            ", ".join(f"{name} {count:,} rows" for name, count in result.row_counts.items()),
            result.tests,
        )
        return result


@contextmanager
def warehouse_build(settings: Settings, params: Params) -> Iterator[WarehouseBuild]:
    """Load the raw tables into the warehouse to build; the scratch files go on leaving.

    The one place that prepares a dbt build: :func:`build_warehouse` runs dbt in a child
    process, the Dagster assets run it through dagster-dbt, and both finish with
    :meth:`WarehouseBuild.finish`.

    Args:
        settings: Where the raw files, the dbt project and the warehouse are.
        params: With the demo source, ``data.extract_date`` is passed to dbt (late-arriving
            sales are left out).

    Raises:
        RawDataError: when a raw file cannot be loaded (see :mod:`.data.ingest`).
    """
    tables = raw_tables(settings.transform_dir)
    dbt_args = ["build"]
    if isinstance(params.data, DemoSource):  # the demo's models leave out late-arriving sales
        dbt_args += ["--vars", json.dumps({"extract_date": str(params.data.extract_date)})]
    if settings.dbt_target == "postgres":
        yield WarehouseBuild(settings, dbt_args, _load_raw_into_postgres(settings, tables), None)
        return
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    # The same file name in a scratch folder beside the warehouse: DuckDB names its catalog
    # after the file, and a rename within one file system is atomic.
    build_dir = Path(
        tempfile.mkdtemp(prefix=".warehouse-build-", dir=settings.warehouse_path.parent)
    )
    try:
        building = build_dir / settings.warehouse_path.name
        raw_counts = _load_raw_into_duckdb(settings, tables, building)
        yield WarehouseBuild(settings, dbt_args, raw_counts, building)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)


def build_warehouse(settings: Settings, params: Params) -> TransformResult:
    """Load the raw tables and run ``dbt build``; on success, the new warehouse is in place.

    Returns:
        The run's result (invocation id, tests, row counts), also written to
        ``reports/transform/latest.json``.

    Raises:
        RawDataError: when a raw file cannot be loaded (see :mod:`.data.ingest`).
        TransformError: when a dbt model or test failed (on DuckDB, nothing was replaced).
    """
    with warehouse_build(settings, params) as build:
        completed = run_dbt(settings, build.dbt_args, duckdb_path=build.duckdb_path)
        return build.finish(
            completed.returncode,
            settings.transform_dir / "target",
            completed.stdout + completed.stderr,
        )


def read_node_results(target_dir: Path) -> tuple[dict[str, Any], list[NodeResult]]:
    """The metadata and per-node results of the last dbt run, from ``run_results.json``.

    Tests are described with the column and relation they check, from ``manifest.json``.
    """
    run_results = json.loads((target_dir / "run_results.json").read_text(encoding="utf-8"))
    manifest_path = target_dir / "manifest.json"
    nodes: dict[str, Any] = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        nodes = {**manifest.get("nodes", {}), **manifest.get("sources", {})}
    results = []
    for item in run_results["results"]:
        unique_id = item["unique_id"]
        node = nodes.get(unique_id, {})
        attached = nodes.get(node.get("attached_node") or "", {})
        depends = (node.get("depends_on") or {}).get("nodes") or []
        if not attached and depends:
            attached = nodes.get(depends[-1], {})
        relation = (
            f"{attached.get('source_name')}.{attached.get('name')}"
            if attached.get("resource_type") == "source"
            else attached.get("name")
        )
        results.append(
            NodeResult(
                unique_id=unique_id,
                resource_type=unique_id.split(".", 1)[0],
                status=item["status"],
                failures=item.get("failures"),
                message=item.get("message"),
                column=node.get("column_name"),
                test_name=(node.get("test_metadata") or {}).get("name") or node.get("name"),
                relation=relation,
            )
        )
    metadata = {**run_results["metadata"], "elapsed_time": run_results.get("elapsed_time", 0.0)}
    return metadata, results


def _judge(
    build: WarehouseBuild, returncode: int, target_dir: Path, output: str
) -> TransformResult:
    settings, duckdb_path = build.settings, build.duckdb_path
    if not (target_dir / "run_results.json").exists():
        raise TransformError(f"dbt did not run:\n{_tail(output)}")
    metadata, nodes = read_node_results(target_dir)
    bad = [node for node in nodes if node.status in {"error", "fail", "runtime error"}]
    if returncode != 0 or bad:
        lines = [node.describe() for node in bad[:_MAX_REPORTED_FAILURES]] or [_tail(output)]
        skipped = sum(node.status == "skipped" for node in nodes)
        kept = (
            "the warehouse was left as it was"
            if duckdb_path is not None
            else "the raw tables were reloaded; models that failed their own tests stay built"
        )
        raise TransformError(
            f"dbt build failed ({len(bad)} problem(s), {skipped} node(s) skipped); {kept}:\n  "
            + "\n  ".join(lines)
        )
    tests: dict[str, int] = {}
    for node in nodes:
        if node.resource_type == "test":
            tests[node.status] = tests.get(node.status, 0) + 1
    models = [node.unique_id.rsplit(".", 1)[-1] for node in nodes if node.resource_type == "model"]
    return TransformResult(
        invocation_id=metadata["invocation_id"],
        target=settings.dbt_target,
        generated_at=metadata["generated_at"],
        elapsed_seconds=round(float(metadata["elapsed_time"]), 2),
        tests=tests,
        row_counts=_row_counts(settings, models, duckdb_path),
        raw_row_counts=build.raw_counts,
    )


def _tail(output: str, lines: int = 30) -> str:
    return "\n".join(output.strip().splitlines()[-lines:])


def _load_raw_into_duckdb(settings: Settings, tables: list[RawTable], path: Path) -> dict[str, int]:
    import duckdb

    with duckdb.connect(str(path)) as connection:
        return load_raw_tables(connection, tables, settings.raw_dir, f"{DUCKDB_SCHEMA}_raw")


def _load_raw_into_postgres(settings: Settings, tables: list[RawTable]) -> dict[str, int]:
    """Check and type the files in DuckDB (in memory), then copy them into PostgreSQL."""
    import duckdb

    from .warehouse import connect_postgres

    schema = f"{settings.postgres_schema}_raw"
    with duckdb.connect() as local:
        counts = load_raw_tables(local, tables, settings.raw_dir, "raw")
        connection = connect_postgres(settings)
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(f'create schema if not exists "{schema}"')
                for table in tables:
                    columns = ", ".join(f'"{c.name}" {c.data_type}' for c in table.columns)
                    cursor.execute(f'drop table if exists "{schema}"."{table.name}" cascade')
                    cursor.execute(f'create table "{schema}"."{table.name}" ({columns})')
                    with tempfile.TemporaryDirectory() as scratch:
                        staged = Path(scratch) / f"{table.name}.csv"
                        local.execute(
                            f"copy raw.\"{table.name}\" to '{staged}' (header, delimiter ',')"
                        )
                        with staged.open(encoding="utf-8") as handle:
                            cursor.copy_expert(
                                f'copy "{schema}"."{table.name}" from stdin with csv header',
                                handle,
                            )
        finally:
            connection.close()
    return counts


def _row_counts(settings: Settings, models: list[str], duckdb_path: Path | None) -> dict[str, int]:
    if settings.dbt_target == "postgres":
        return _postgres_row_counts(settings, models)
    import duckdb

    with duckdb.connect(str(duckdb_path or settings.warehouse_path), read_only=True) as connection:
        return {name: _count(connection, f'{DUCKDB_SCHEMA}."{name}"') for name in models}


def _count(connection: duckdb.DuckDBPyConnection, relation: str) -> int:
    row = connection.execute(f"select count(*) from {relation}").fetchone()  # noqa: S608
    return int(row[0]) if row else 0


def _postgres_row_counts(settings: Settings, models: list[str]) -> dict[str, int]:
    from .warehouse import connect_postgres

    connection = connect_postgres(settings)
    try:
        with connection.cursor() as cursor:
            counts = {}
            for name in models:
                cursor.execute(f'select count(*) from "{settings.postgres_schema}"."{name}"')  # noqa: S608
                row = cursor.fetchone()
                counts[name] = int(row[0]) if row else 0
            return counts
    finally:
        connection.close()
