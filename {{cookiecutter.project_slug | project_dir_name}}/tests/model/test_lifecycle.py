"""Train, evaluate, register, promote and roll back against a real SQLite MLflow store."""

import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import Settings, get_settings
from {{ cookiecutter.package_name }}.evaluation.report import read_evaluation_report
from {{ cookiecutter.package_name }}.evaluation.step import run_evaluation
from {{ cookiecutter.package_name }}.gate import TAG_ROLLED_BACK
from {{ cookiecutter.package_name }}.monitoring.reference import (
    ReferenceMissingError,
    recorded_reference,
)
from {{ cookiecutter.package_name }}.params import Params
from {{ cookiecutter.package_name }}.provenance import (
    LINEAGE_TAGS,
    TAG_DATA_VERSION,
    TAG_DBT_INVOCATION,
    TAG_GIT_DIRTY,
    TAG_VALIDATION,
    DirtyTreeError,
)
from {{ cookiecutter.package_name }}.registry import (
    CHALLENGER,
    CHAMPION,
    PromotionRefusedError,
    RegistryError,
    alias_version,
    lineage,
    promote,
    register,
    rollback,
)
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.tracking import TrackingUnavailableError, load_sklearn_model
from {{ cookiecutter.package_name }}.training import (
    TrainingRefusedError,
    load_training_run,
    run_training,
    save_training_run,
    split_table,
)

runner = CliRunner()
DATA_TAGS = {
    TAG_DATA_VERSION: "md5:test-data",
    TAG_DBT_INVOCATION: "dbt-invocation-test",
    TAG_VALIDATION: "passed",
}


def candidate(settings: Settings, params: Params, table, contract, train_on=None) -> dict:
    """Train (on `train_on`, or the table), evaluate on the table's held-out rows, register."""
    run = run_training(
        settings, params, train_on if train_on is not None else table, contract, DATA_TAGS
    )
    save_training_run(settings, run)
    report = run_evaluation(settings, params, table, contract, DATA_TAGS[TAG_DATA_VERSION])
    version = register_latest(settings)
    return {"run": run, "report": report, "version": str(version.version)}


def register_latest(settings: Settings):
    """What `make register` does: the latest training run with its evaluation."""
    return register(settings, load_training_run(settings), read_evaluation_report(settings))


def inverted(table: pd.DataFrame) -> pd.DataFrame:
    """The same customers with good and bad swapped: a deliberately bad model learns from it."""
    flipped = table.copy()
    flipped["label"] = flipped["label"].map({"good": "bad", "bad": "good"})
    return flipped


def client(settings: Settings) -> MlflowClient:
    return MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)


def test_a_first_passing_model_becomes_champion_with_its_lineage(
    settings, params, table, contract, project: Path
) -> None:
    first = candidate(settings, params, table, contract)
    assert first["report"].passed, first["report"].failed
    # What CI's job summary shows (`make gate-report` appends to $GITHUB_STEP_SUMMARY).
    summary = project / "job-summary.md"
    verdict = runner.invoke(app, ["gate-report"], env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert verdict.exit_code == 0, verdict.output
    assert "**Gate: passed.** Registered, this model may become champion." in verdict.stdout
    assert "| precision (headline) |" in verdict.stdout
    assert summary.read_text(encoding="utf-8") == verdict.stdout
    assert promote(settings, params) == first["version"] == "1"
    again = runner.invoke(app, ["gate-report"], env={"GITHUB_STEP_SUMMARY": ""})
    assert "This model is champion v1 already." in again.stdout

    mlflow = client(settings)
    assert alias_version(settings, CHAMPION) == "1"
    assert alias_version(settings, CHALLENGER) == "1"
    run = mlflow.get_run(first["run"].run_id)
    assert set(LINEAGE_TAGS) <= set(run.data.tags)
    assert run.data.tags[TAG_GIT_DIRTY] == "true"  # a scratch folder: marked, not refused
    assert run.data.metrics["test_precision"] == first["report"].metrics["precision"]
    artifacts = {
        entry.path for entry in mlflow.list_artifacts(first["run"].run_id, "evaluation/plots")
    }
    assert "evaluation/plots/permutation_importance.png" in artifacts

    # Artifacts stay in the project, and the registered model loads (tree model via skops).
    assert (project / "mlartifacts").is_dir()
    assert (project / "mlflow.db").is_file()
    model = load_sklearn_model(f"models:/{settings.model_name}@{CHAMPION}")
    assert set(model.classes_) == {"good", "bad"}

    # Registering the same run again (a second `make all`) adds no version.
    assert register_latest(settings).version == 1

    result = runner.invoke(app, ["lineage", "champion"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run_id"] == first["run"].run_id
    record = lineage(settings, CHAMPION)
    assert record["version"] == "1"
    assert record["run_id"] == first["run"].run_id
    assert record["data"]["data_version"] == DATA_TAGS[TAG_DATA_VERSION]
    assert record["data"]["dbt_invocation_id"] == "dbt-invocation-test"
    assert record["data"]["validation"] == "passed"
    assert record["code"]["git_commit"] == "none"
    assert record["tests"]["passed"] == "true"

    report = json.loads((project / "reports/evaluation/latest.json").read_text(encoding="utf-8"))
    assert report["run_id"] == first["run"].run_id
    assert (project / "reports/evaluation/metrics.json").is_file()
    assert (project / "reports/evaluation/plots/roc.csv").is_file()


def test_a_bad_model_never_becomes_champion_and_the_reasons_are_listed(
    settings, params, table, contract
) -> None:
    candidate(settings, params, table, contract)
    promote(settings, params)
    bad = candidate(settings, params, table, contract, train_on=inverted(table))
    assert not bad["report"].passed
    failed = set(bad["report"].failed)
    assert {
        "threshold.precision",
        "champion.comparison",
        "behaviour.case.reliable_regular",
    } <= failed

    with pytest.raises(PromotionRefusedError) as refused:
        promote(settings, params)
    message = str(refused.value)
    assert "threshold.precision" in message
    assert "champion.comparison" in message
    assert alias_version(settings, CHAMPION) == "1"
    assert alias_version(settings, CHALLENGER) == bad["version"]

    result = runner.invoke(app, ["promote"])
    assert result.exit_code == 1
    assert "not promoted" in result.stderr
    assert "threshold.precision" in result.stderr

    # CI shows the same verdict before anyone is asked to approve, and fails the job.
    verdict = runner.invoke(app, ["gate-report"], env={"GITHUB_STEP_SUMMARY": ""})
    assert verdict.exit_code == 1
    assert "| threshold.precision | **FAIL** |" in verdict.stdout
    assert "**Gate: refused.**" in verdict.stdout
    assert "the gate refuses the evaluated model" in verdict.stderr
    assert "post-train tests failed" in verdict.stderr


def test_an_equal_challenger_is_promoted_and_rollback_restores_the_previous_champion(
    settings, params, table, contract
) -> None:
    candidate(settings, params, table, contract)
    promote(settings, params)
    second = candidate(settings, params, table, contract)
    assert second["report"].champion.version == "1"
    assert promote(settings, params) == "2"

    assert rollback(settings) == "1"
    mlflow = client(settings)
    assert alias_version(settings, CHAMPION) == "1"
    assert TAG_ROLLED_BACK in mlflow.get_model_version(settings.model_name, "2").tags
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback(settings)
    # v2 is still the challenger and passed its tests, but a rollback sticks: `make promote`
    # (and so `make all`, the Dagster jobs and CI) never brings it back.
    assert alias_version(settings, CHALLENGER) == "2"
    with pytest.raises(PromotionRefusedError, match="rolled back from champion"):
        promote(settings, params)
    assert alias_version(settings, CHAMPION) == "1"
    # CI's verdict on that training run says the same before anyone tries.
    verdict = runner.invoke(app, ["gate-report"], env={"GITHUB_STEP_SUMMARY": ""})
    assert verdict.exit_code == 1
    assert "rolled back from champion" in verdict.stdout


def test_training_is_reproducible_across_runs(settings, params, table, contract) -> None:
    runs = [run_training(settings, params, table, contract, DATA_TAGS) for _ in range(2)]
    assert runs[0].metrics == runs[1].metrics
    mlflow = client(settings)
    tags = [mlflow.get_run(run.run_id).data.tags for run in runs]
    assert tags[0]["lineage.params_hash"] == tags[1]["lineage.params_hash"]


def test_a_search_logs_each_candidate_as_a_child_run(settings, params, table, contract) -> None:
    searching = params.model_copy(
        update={
            "train": params.train.model_copy(
                update={
                    "estimator": "logistic_regression",
                    "search": params.train.search.model_copy(
                        update={"enabled": True, "grid": {"logistic_regression": {"C": [0.1, 1.0]}}}
                    ),
                }
            )
        }
    )
    run = run_training(settings, searching, table, contract, DATA_TAGS)
    children = client(settings).search_runs(
        [run.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run.run_id}'"
    )
    assert len(children) == len(searching.train.search.grid["logistic_regression"]["C"])
    assert "cv_precision" in run.metrics


def test_data_that_failed_validation_never_trains(
    settings, params, table, contract, project
) -> None:
    with pytest.raises(TrainingRefusedError, match="validation"):
        run_training(settings, params, table, contract, {**DATA_TAGS, TAG_VALIDATION: "failed"})
    assert not (project / "mlflow.db").exists()


def test_a_dirty_tree_is_refused_outside_local(
    params, table, contract, project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "prod")
    get_settings.cache_clear()
    with pytest.raises(DirtyTreeError, match="uncommitted changes"):
        run_training(get_settings(), params, table, contract, DATA_TAGS)
    assert not (project / "mlflow.db").exists()


@pytest.mark.parametrize("uri", ["http://127.0.0.1:9", "sqlite:////nonexistent/folder/mlflow.db"])
@pytest.mark.usefixtures("project")
def test_an_unreachable_tracking_store_is_a_clear_error_and_nothing_is_registered(
    params, table, contract, monkeypatch: pytest.MonkeyPatch, uri: str
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    get_settings.cache_clear()
    with pytest.raises(TrackingUnavailableError, match="MLFLOW_TRACKING_URI"):
        run_training(get_settings(), params, table, contract, DATA_TAGS)
    result = runner.invoke(app, ["promote"])
    assert result.exit_code == 1
    assert "unreachable" in result.stderr or "does not exist" in result.stderr


def test_register_refuses_a_run_that_was_not_evaluated(settings, params, table, contract) -> None:
    candidate(settings, params, table, contract)
    run = run_training(settings, params, table, contract, DATA_TAGS)
    save_training_run(settings, run)
    with pytest.raises(RegistryError, match="make evaluate"):
        register_latest(settings)
    assert alias_version(settings, CHALLENGER) == "1"


def test_a_registry_error_while_looking_for_the_run_never_registers_it_twice(
    settings, params, table, contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = candidate(settings, params, table, contract)

    def locked(*_args: object, **_kwargs: object) -> None:
        raise MlflowException("database is locked", error_code=INTERNAL_ERROR)

    monkeypatch.setattr(MlflowClient, "search_model_versions", locked)
    with pytest.raises(MlflowException, match="database is locked"):
        register_latest(settings)  # the same run as v1: a failed search must not read as "not yet"
    monkeypatch.undo()
    versions = client(settings).search_model_versions(f"name = '{settings.model_name}'")
    assert [version.version for version in versions] == [int(first["version"])]


def test_each_version_carries_the_reference_profile_recorded_at_training(
    settings, params, table, contract, project: Path
) -> None:
    first = candidate(settings, params, table, contract)
    recorded = recorded_reference(settings, first["version"])
    assert recorded.run_id == first["run"].run_id
    assert recorded.model_version == first["version"]
    assert recorded.n_rows == round(len(table) * params.train.test_size)
    assert set(recorded.numeric) == set(contract.numeric_features)

    # A retrain on other rows records its own reference; the first version's stays as it was.
    second = candidate(settings, params, table, contract, train_on=table.head(600))
    assert recorded_reference(settings, second["version"]).n_rows == 150
    assert recorded_reference(settings, first["version"]) == recorded

    # A version whose run lacks the profile is refused with the fix, never rebuilt from today.
    recorded_files = list(project.rglob(f"{first['run'].run_id}/artifacts/monitoring/*.json"))
    assert recorded_files
    for path in recorded_files:
        path.unlink()
    with pytest.raises(ReferenceMissingError, match="make all"):
        recorded_reference(settings, first["version"])


def test_a_label_with_three_values_trains_evaluates_is_promoted_and_serves(
    settings, params, table, contract
) -> None:
    # The synthetic customers in three classes; `bad` (the riskiest third) is the positive class.
    risk = table["avg_payment_delay_days"] + 40 * table["return_rate"]
    three = table.assign(label=pd.qcut(risk, 3, labels=["good", "watch", "bad"]).astype(str))
    labels = next(column for column in contract.columns if column.role == "label")
    widened = contract.model_copy(
        update={
            "columns": tuple(
                column.model_copy(update={"accepted_values": ("good", "watch", "bad")})
                if column is labels
                else column
                for column in contract.columns
            )
        }
    )
    three_class = params.model_copy(
        update={
            "train": params.train.model_copy(update={"positive_class": "bad"}),
            "evaluate": params.evaluate.model_copy(update={"directional": (), "cases": ()}),
        }
    )

    first = candidate(settings, three_class, three, widened)

    # The headline is the one-vs-rest precision of the positive class, on held-out rows.
    model = load_sklearn_model(f"models:/{settings.model_name}/{first['version']}")
    assert list(model.classes_) == ["bad", "good", "watch"]
    held_out = split_table(three, widened, three_class.train).test
    predicted = model.predict(held_out[widened.feature_columns]) == "bad"
    truth = held_out["label"].to_numpy() == "bad"
    expected = (predicted & truth).sum() / predicted.sum()
    assert first["report"].metrics["precision"] == pytest.approx(expected)
    assert first["report"].passed, first["report"].failed
    assert promote(settings, three_class) == first["version"]

    with TestClient(create_app(settings)) as service:
        record = held_out[widened.feature_columns].head(1).to_dict(orient="records")[0]
        answer = service.post("/predict", json=record)
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()["predictions"]
    assert set(prediction["probabilities"]) == {"good", "watch", "bad"}
    assert prediction["score"] == pytest.approx(prediction["probabilities"]["bad"])
    assert prediction["prediction"] == model.predict(held_out[widened.feature_columns].head(1))[0]
