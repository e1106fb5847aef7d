"""The model run and the registry as assets: train -> evaluate -> challenger -> champion.

Each asset calls the package function behind the CLI command of the same step, and shows in the
UI what a reviewer looks for: the MLflow run, the headline metric and the post-train tests, the
version and its alias, the gate's verdict. A challenger that fails the gate fails the
``champion`` asset with every reason; ``champion`` stays where it was.
"""

from typing import Any

from dagster import AssetKey, MaterializeResult, MetadataValue, asset

from ..data.versioning import record_stage
from ..evaluation.report import HEADLINE, evaluation_dir
from ..evaluation.step import evaluate_latest
from ..registry import CHALLENGER, CHAMPION, alias_version, promote, register_latest
from ..training import train_model
from .resources import ProjectResource

MODEL_GROUP = "model"


def run_link(tracking_uri: str, experiment_id: str, run_id: str) -> MetadataValue | None:
    """A link to the run in the MLflow UI, when the tracking store is a server."""
    if not tracking_uri.startswith(("http://", "https://")):
        return None  # a SQLite file: `uv run mlflow ui --backend-store-uri <uri>` shows it
    base = tracking_uri.rstrip("/")
    return MetadataValue.url(f"{base}/#/experiments/{experiment_id}/runs/{run_id}")


def build_model_assets(feature_table: AssetKey) -> list[Any]:
    """The four assets of the model run, downstream of `feature_table`."""

    @asset(group_name=MODEL_GROUP, deps=[feature_table], kinds={"scikitlearn", "mlflow"})
    def model_run(project: ProjectResource) -> MaterializeResult:
        """Train the model from params.yaml on the validated feature table (``make train``)."""
        settings = project.settings()
        run = train_model(settings, project.params())
        record_stage(settings, "train")
        metadata: dict[str, Any] = {
            "mlflow_run_id": run.run_id,
            "model_uri": run.model_uri,
            "estimator": run.estimator,
            "seconds": round(run.seconds, 1),
            "tracking_uri": settings.mlflow_tracking_uri,
            **{f"train_{name}": value for name, value in run.metrics.items()},
        }
        link = run_link(settings.mlflow_tracking_uri, run.experiment_id, run.run_id)
        if link is not None:
            metadata["mlflow_run"] = link
        return MaterializeResult(metadata=metadata)

    @asset(group_name=MODEL_GROUP, deps=[model_run], kinds={"mlflow"})
    def evaluation(project: ProjectResource) -> MaterializeResult:
        """Held-out metrics, post-train tests and the champion comparison (``make evaluate``)."""
        settings = project.settings()
        report = evaluate_latest(settings, project.params())
        record_stage(settings, "evaluate")
        return MaterializeResult(
            metadata={
                HEADLINE: round(report.metrics[HEADLINE], 4),
                "tests_passed": report.passed,
                "tests_failed": ", ".join(report.failed) or "none",
                "not_assessed": ", ".join(report.not_assessed) or "none",
                "compared_with_champion": report.champion.version or "none",
                "report": MetadataValue.path(str(evaluation_dir(settings) / "latest.json")),
                "mlflow_run_id": report.run_id,
            }
        )

    @asset(group_name=MODEL_GROUP, deps=[evaluation], kinds={"mlflow"})
    def challenger(project: ProjectResource) -> MaterializeResult:
        """Register the evaluated model as a new version, alias challenger (``make register``)."""
        settings = project.settings()
        version = register_latest(settings)
        return MaterializeResult(
            metadata={
                "model": settings.model_name,
                "version": str(version.version),
                "alias": CHALLENGER,
                "mlflow_run_id": version.run_id or "",
            }
        )

    @asset(group_name=MODEL_GROUP, deps=[challenger], kinds={"mlflow"})
    def champion(project: ProjectResource) -> MaterializeResult:
        """Move champion to the challenger if it passes the gate (``make promote``)."""
        settings = project.settings()
        before = alias_version(settings, CHAMPION)
        version = promote(settings, project.params())
        return MaterializeResult(
            metadata={
                "model": settings.model_name,
                "version": version,
                "alias": CHAMPION,
                "gate": "passed" if version != before else "already champion",
                "previous_champion": before or "none",
            }
        )

    return [model_run, evaluation, challenger, champion]
