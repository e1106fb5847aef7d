"""After the registry: nightly batch scoring, its monitoring report, and each version's evaluation.

``predictions`` and ``monitoring_report`` are what ``make score`` and ``make monitor`` do. The
report's verdict is metadata, not a failure: the retraining sensor (``automation.py``) reads it
and starts training when the report recommends retraining.

``version_evaluation`` is partitioned by model version: the registry sensor adds a partition for
each new version and evaluates it (:func:`~..evaluation.step.evaluate_version`), so a version
registered outside the loop carries the tests and tags the promotion gate reads.
"""

from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    DynamicPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from ..batch import run_scoring
from ..evaluation.report import HEADLINE, version_evaluation_dir
from ..evaluation.step import evaluate_version
from ..monitoring.monitor import run_monitor
from .resources import ProjectResource

DEPLOY_GROUP = "deploy"
MONITOR_GROUP = "monitor"
# One partition per registered model version, added by the registry sensor.
model_versions = DynamicPartitionsDefinition(name="model_versions")


def build_deploy_assets(feature_table: AssetKey, champion: AssetKey) -> list[Any]:
    """Scoring with the champion, the monitoring report, and the per-version evaluation."""

    @asset(group_name=DEPLOY_GROUP, deps=[feature_table, champion], kinds={"duckdb"})
    def predictions(project: ProjectResource) -> MaterializeResult:
        """Score the rows whose label is not known yet with the champion (``make score``)."""
        result = run_scoring(project.settings())
        return MaterializeResult(
            metadata={
                "dagster/row_count": result.rows,
                "model_version": result.model_version,
                "run_date": str(result.run_date),
                "table": result.table,
                "seconds": round(result.seconds, 1),
            }
        )

    @asset(group_name=MONITOR_GROUP, deps=[predictions], kinds={"html"})
    def monitoring_report(project: ProjectResource) -> MaterializeResult:
        """Drift and performance of the newest predictions vs the champion (``make monitor``)."""
        settings = project.settings()
        result = run_monitor(settings, project.params())
        summary = result.summary
        metadata: dict[str, Any] = {
            "status": summary.status,
            "retrain_recommended": summary.retrain_recommended,
            "data_quality_issues": "; ".join(
                issue.message for issue in (summary.quality.issues if summary.quality else [])
            )
            or "none",
            "performance": summary.performance.status,
            "window_rows": summary.window.rows,
            "model_version": summary.model_version or "",
            "report": MetadataValue.path(str(result.html_path)),
            "summary": MetadataValue.path(str(result.json_path)),
        }
        if summary.drift is not None:  # None: too few rows in the window to judge drift
            metadata["drift_share"] = round(summary.drift.drift_share, 4)
            metadata["drifted_features"] = ", ".join(summary.drift.drifted_features) or "none"
        if summary.estimate is not None and summary.estimate.precision is not None:
            metadata["estimated_precision"] = summary.estimate.precision
        return MaterializeResult(metadata=metadata)

    @asset(group_name=MONITOR_GROUP, partitions_def=model_versions, kinds={"mlflow"})
    def version_evaluation(
        context: AssetExecutionContext, project: ProjectResource
    ) -> MaterializeResult:
        """Evaluate one registered version on the current data and tag it with the verdict."""
        settings = project.settings()
        version = context.partition_key
        report = evaluate_version(settings, project.params(), version)
        folder = version_evaluation_dir(settings, version)
        return MaterializeResult(
            metadata={
                HEADLINE: round(report.metrics[HEADLINE], 4),
                "tests_passed": report.passed,
                "tests_failed": ", ".join(report.failed) or "none",
                "compared_with_champion": report.champion.version or "none",
                "report": MetadataValue.path(str(folder / "latest.json")),
            }
        )

    return [predictions, monitoring_report, version_evaluation]
