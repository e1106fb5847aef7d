"""The whole graph runs green, a failing gate blocks training, sensors fire once per event."""

import shutil
import sys
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, RunRequest, SensorResult, build_sensor_context
from scratch import run_in

from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.gate import TAG_PASSED
from {{ cookiecutter.package_name }}.monitoring.feedback import run_drift_demo
from {{ cookiecutter.package_name }}.monitoring.monitor import MonitoringSummary, monitoring_dir
from {{ cookiecutter.package_name }}.orchestration.automation import evaluate_new_versions, retrain_on_alarm
from {{ cookiecutter.package_name }}.orchestration.definitions import build_definitions
from {{ cookiecutter.package_name }}.orchestration.resources import ProjectResource
from {{ cookiecutter.package_name }}.params import load_params
from {{ cookiecutter.package_name }}.registry import CHAMPION, alias_version, registered_versions
from {{ cookiecutter.package_name }}.tracking import connect

pytestmark = pytest.mark.slow


def _requests(result: object) -> list[RunRequest]:
    return list(result.run_requests or []) if isinstance(result, SensorResult) else []


def _cursor(result: object, before: str | None) -> str | None:
    return result.cursor if isinstance(result, SensorResult) and result.cursor else before


def _tick(sensor, orchestrated, cursor: str | None) -> object:
    context = build_sensor_context(
        instance=orchestrated.instance,
        cursor=cursor,
        resources={"project": ProjectResource(project_dir=str(orchestrated.path))},
    )
    return sensor(context)


def test_the_whole_graph_materializes_green(orchestrated) -> None:
    result = orchestrated.result
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    loop = ["model_run", "evaluation", "challenger", "champion", "predictions"]
    assert {AssetKey(name) for name in [*loop, "monitoring_report"]} <= materialized
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["great_expectations"] is True
    assert all(checks.values()), {name for name, passed in checks.items() if not passed}
    run = result.asset_materializations_for_node("model_run")[0].metadata
    assert run["mlflow_run_id"].value
    assert alias_version(orchestrated.settings, CHAMPION) == "1"


def test_dvc_sees_what_dagster_built(orchestrated) -> None:
    # Each asset that ran a DVC stage's step recorded it: nothing is stale, nothing "unsaved".
    status = run_in(orchestrated.path, sys.executable, "-m", "dvc", "status")
    assert "up to date" in status, status


def test_a_failing_gate_blocks_training_and_the_champion_stays(
    orchestrated, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    shutil.copytree(orchestrated.path, project, symlinks=True)
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    params["validation"]["min_rows"] = 1_000_000  # more rows than the table has
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    settings = Settings(project_dir=project)
    before = registered_versions(settings)

    result = (
        build_definitions(settings)
        .resolve_job_def("training")
        .execute_in_process(instance=orchestrated.instance, raise_on_error=False)
    )

    assert not result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks.get("great_expectations") is False
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    assert AssetKey("model_run") not in materialized
    assert registered_versions(settings) == before
    assert alias_version(settings, CHAMPION) == "1"


def test_the_retrain_sensor_ignores_a_clean_report(orchestrated) -> None:
    latest = monitoring_dir(orchestrated.settings) / "latest.json"
    summary = MonitoringSummary.model_validate_json(latest.read_text(encoding="utf-8"))
    assert not summary.retrain_recommended, summary.status  # the loop's own report is clean

    result = _tick(retrain_on_alarm, orchestrated, None)

    assert _requests(result) == []


@pytest.mark.demo
def test_the_retrain_sensor_starts_one_run_per_drift_report(orchestrated) -> None:
    clean = _tick(retrain_on_alarm, orchestrated, None)
    cursor = _cursor(clean, None)
    settings = orchestrated.settings
    params = load_params(settings.params_file)
    # One batch of sudden drift is enough for an alarm (the demo's four are for a show).
    demo = params.monitor.demo.model_copy(update={"batches": 1})
    monitor = params.monitor.model_copy(update={"demo": demo})
    run_drift_demo(settings, params.model_copy(update={"monitor": monitor}), "sudden")

    first = _tick(retrain_on_alarm, orchestrated, cursor)
    again = _tick(retrain_on_alarm, orchestrated, _cursor(first, cursor))

    assert len(_requests(first)) == 1
    assert _requests(first)[0].tags["trigger"] == "monitoring"
    assert _requests(again) == []


def test_the_registry_sensor_evaluates_each_new_version_once(orchestrated) -> None:
    settings = orchestrated.settings
    first = _tick(evaluate_new_versions, orchestrated, None)
    versions = registered_versions(settings)
    assert [r.partition_key for r in _requests(first)] == [str(v) for v in versions]
    cursor = _cursor(first, None)
    assert _requests(_tick(evaluate_new_versions, orchestrated, cursor)) == []

    # A version registered outside the loop (as from a notebook) is found and evaluated.
    client = connect(settings)
    newest = client.get_model_version(settings.model_name, str(versions[-1]))
    added = client.create_model_version(
        settings.model_name, source=newest.source, run_id=newest.run_id
    )
    new = _tick(evaluate_new_versions, orchestrated, cursor)
    assert [r.partition_key for r in _requests(new)] == [str(added.version)]

    orchestrated.instance.add_dynamic_partitions("model_versions", [str(added.version)])
    evaluated = orchestrated.defs.resolve_job_def("evaluate_version").execute_in_process(
        instance=orchestrated.instance, partition_key=str(added.version)
    )
    assert evaluated.success
    tags = client.get_model_version(settings.model_name, str(added.version)).tags
    assert tags[TAG_PASSED] in {"true", "false"}
