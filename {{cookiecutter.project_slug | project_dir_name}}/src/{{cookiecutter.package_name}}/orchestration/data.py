"""The data run as assets: raw tables -> the dbt project -> the feature table's gate.

* ``raw/<table>``: the raw files, up to date as ``make data`` leaves them (DVC regenerates the
  demo's when their parameters change; a team's own files are used as DVC recorded them).
* the dbt models (dagster-dbt, read from ``transform/target/manifest.json``, which ``make
  setup`` prepares: nothing parses dbt at import), with each dbt test as an asset check. They
  are built exactly as ``make data`` builds them (:func:`~..data.build.warehouse_build`): into
  a scratch warehouse that replaces the current one only when every model and test passed.
* ``great_expectations``: the Great Expectations gate, a *blocking* check on the feature table;
  when it fails, nothing downstream (training, scoring) runs. When it passes, the data run is
  recorded, as ``make validate`` does.
"""

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    Output,
    asset_check,
    multi_asset,
)
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from ..data.build import dbt_environment, warehouse_build
from ..data.record import file_md5, record_data_run
from ..data.versioning import record_stage, refresh_raw_data
from ..validation import run_validation, validation_report_path
from .resources import ProjectResource

DATA_GROUP = "data"
WAREHOUSE_GROUP = "warehouse"


class Translator(DagsterDbtTranslator):
    """dbt's default keys (a model's name, ``<source>/<table>`` for a source); one group."""

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> AssetSpec:
        """The default spec, with every dbt model in the ``warehouse`` group."""
        spec = super().get_asset_spec(manifest, unique_id, project)
        return spec.replace_attributes(group_name=WAREHOUSE_GROUP)


def read_manifest(dbt_project: DbtProject) -> dict[str, Any]:
    """The dbt manifest ``make setup`` prepared (``python -m <package> dbt parse``)."""
    path = Path(dbt_project.manifest_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no dbt manifest; prepare it with `make setup` (or `uv run python -m "
            f"{__package__.split('.')[0]} dbt parse`) before loading the Dagster definitions"
        )
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


def build_raw_tables(dbt_project: DbtProject, manifest: Mapping[str, Any]) -> AssetsDefinition:
    """One asset per dbt source table, upstream of the dbt models that read it."""
    translator = Translator()
    specs = [
        AssetSpec(
            translator.get_asset_spec(manifest, unique_id, dbt_project).key,
            group_name=DATA_GROUP,
            description=node.get("description") or f"Raw table {node['name']} (data/raw/).",
            kinds={"csv", "dvc"},
        )
        for unique_id, node in sorted(manifest.get("sources", {}).items())
    ]
    names = {spec.key: spec.key.path[-1] for spec in specs}

    @multi_asset(specs=specs, name="raw_tables")
    def raw_tables(project: ProjectResource) -> Iterator[MaterializeResult]:
        """Refuse hand edits, let DVC regenerate the demo's tables if needed; describe each file."""
        settings = project.settings()
        paths = refresh_raw_data(settings, project.params())
        for key, name in names.items():
            path = paths[name]
            yield MaterializeResult(
                asset_key=key,
                metadata={
                    "path": MetadataValue.path(str(path)),
                    "md5": file_md5(path),
                    "bytes": path.stat().st_size,
                },
            )

    return raw_tables


def build_warehouse_assets(dbt_project: DbtProject) -> AssetsDefinition:
    """The dbt models as assets and the dbt tests as their checks."""

    @dbt_assets(
        manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=Translator()
    )
    def warehouse(
        context: AssetExecutionContext, dbt: DbtCliResource, project: ProjectResource
    ) -> Iterator[Any]:
        """``dbt build`` into a scratch warehouse, put in place only when everything passed."""
        settings = project.settings()
        with (
            warehouse_build(settings, project.params()) as build,
            dbt_environment(settings, build.duckdb_path),
        ):
            invocation = dbt.cli(build.dbt_args, context=context, raise_on_error=False)
            # Held back until the build is judged: a failed build replaces nothing, and so
            # reports no materialization either.
            events = list(invocation.stream())
            log = invocation.target_path / "dbt.log"
            result = build.finish(
                invocation.process.wait(),
                invocation.target_path,
                log.read_text(encoding="utf-8") if log.is_file() else "",
            )
        record_stage(settings, "transform")  # dvc.lock now vouches for the new warehouse
        for event in events:
            if isinstance(event, Output):
                model = context.asset_key_for_output(event.output_name).path[-1]
                rows = result.row_counts.get(model)
                extra = {"dagster/row_count": rows} if rows is not None else {}
                event = event.with_metadata(  # noqa: PLW2901 (the same event, with its row count)
                    {**event.metadata, **extra, "dbt_invocation_id": result.invocation_id}
                )
            yield event

    return warehouse


def build_feature_gate(feature_table: AssetKey) -> Any:  # noqa: ANN401 (Dagster's check type)
    """The Great Expectations gate as a blocking check on the feature table."""

    @asset_check(
        asset=feature_table,
        name="great_expectations",
        blocking=True,
        description="The Great Expectations suite from the contract and params.yaml "
        "(validation:); training and scoring wait for it and do not run when it fails.",
    )
    def great_expectations(
        context: AssetCheckExecutionContext, project: ProjectResource
    ) -> AssetCheckResult:
        """Validate the labelled rows; when they pass, record the data run (``make validate``)."""
        settings = project.settings()
        report = run_validation(settings, project.params().validation)
        metadata: dict[str, Any] = {
            "rows": report.rows,
            "expectations": report.evaluated,
            "failed": len(report.failed),
            "report": MetadataValue.path(str(validation_report_path(settings))),
        }
        if report.failed:
            metadata["failures"] = MetadataValue.md(
                "\n".join(f"- {outcome.describe()}" for outcome in report.failed)
            )
        else:
            metadata["data_run"] = MetadataValue.path(str(record_data_run(settings, report)))
            record_stage(settings, "validate")
        context.log.info(
            "Great Expectations: %d of %d expectations held on %d rows",
            report.evaluated - len(report.failed),
            report.evaluated,
            report.rows,
        )
        return AssetCheckResult(
            passed=report.success, severity=AssetCheckSeverity.ERROR, metadata=metadata
        )

    return great_expectations
