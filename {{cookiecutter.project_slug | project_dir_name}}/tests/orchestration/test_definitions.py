"""The definitions load, hold the whole loop, and keep Dagster out of the CLI and the service."""

import subprocess
import sys
import tomllib
from pathlib import Path

from dagster import AssetKey, DefaultScheduleStatus, DefaultSensorStatus, Definitions

from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.contract import find_contract_model
from {{ cookiecutter.package_name }}.orchestration.definitions import build_definitions

PROJECT_DIR = Path(__file__).resolve().parents[2]
FEATURES = find_contract_model(PROJECT_DIR / "transform" / "models")[1]


def _defs() -> Definitions:
    return build_definitions(Settings(project_dir=PROJECT_DIR))


def test_the_definitions_load_with_the_whole_loop() -> None:
    defs = _defs()
    Definitions.validate_loadable(defs)
    keys = set(defs.resolve_asset_graph().get_all_asset_keys())
    loop = ["model_run", "evaluation", "challenger", "champion", "predictions"]
    assert {AssetKey(name) for name in [FEATURES, *loop, "monitoring_report"]} <= keys
    assert any(key.path[0] == "raw" for key in keys), "the raw tables are assets"


def test_the_module_dagster_loads_is_registered_in_pyproject() -> None:
    tool = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    module = tool["dagster"]["module_name"]
    assert module == tool["dg"]["project"]["code_location_target_module"]
    assert tool["dg"]["cli"]["telemetry"]["enabled"] is False
    loaded = subprocess.run(
        [sys.executable, "-c", f"import {module} as m; print(type(m.defs).__name__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_DIR,
    )
    assert loaded.stdout.strip() == "Definitions"


def test_the_gate_blocks_and_dbt_tests_are_checks() -> None:
    graph = _defs().resolve_asset_graph()
    checks = {key.name: graph.get_check_spec(key) for key in graph.asset_check_keys}
    gate = checks["great_expectations"]
    assert gate.asset_key == AssetKey(FEATURES)
    assert gate.blocking
    dbt_checks = [name for name in checks if name.startswith(("not_null_", "unique_"))]
    assert dbt_checks, "the dbt tests are asset checks"


def test_schedules_and_sensors_say_what_runs_by_default() -> None:
    defs = _defs()
    schedules = {s.name: s for s in defs.schedules or []}
    assert schedules["nightly_scoring"].default_status == DefaultScheduleStatus.RUNNING
    assert schedules["weekly_retraining"].default_status == DefaultScheduleStatus.STOPPED
    sensors = {s.name: s for s in defs.sensors or []}
    assert {"retrain_on_alarm", "evaluate_new_versions"} <= set(sensors)
    assert all(s.default_status == DefaultSensorStatus.RUNNING for s in sensors.values())


def test_dagster_stays_out_of_the_cli_and_the_service() -> None:
    code = (
        "import sys\n"
        "import {{ cookiecutter.package_name }}.cli, {{ cookiecutter.package_name }}.serving.app\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('dagster')}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
    serving = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text(encoding="utf-8"))[
        "dependency-groups"
    ]["serving"]
    assert not [name for name in serving if name.startswith("dagster")]


def test_dagsters_storage_on_postgresql_takes_only_a_psycopg2_url(tmp_path: Path) -> None:
    """`make dagster-home` with DAGSTER_POSTGRES_URL: the shared instance file, or the fix."""

    def dagster_home(url: str, home: Path) -> subprocess.CompletedProcess[str]:
        command = ["make", "dagster-home", f"DAGSTER_POSTGRES_URL={url}", f"DAGSTER_HOME={home}"]
        return subprocess.run(command, cwd=PROJECT_DIR, capture_output=True, text=True, check=False)

    # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which Dagster's storage cannot use.
    refused = dagster_home("postgresql://dagster@db:5432/dagster", tmp_path / "refused")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "DAGSTER_POSTGRES_URL must start with postgresql+psycopg2://" in refused.stderr
    assert not (tmp_path / "refused").exists()

    made = dagster_home("postgresql+psycopg2://dagster@db:5432/dagster", tmp_path / "shared")
    assert made.returncode == 0, made.stdout + made.stderr
    shipped = PROJECT_DIR / "deploy" / "dagster" / "dagster.yaml"
    assert (tmp_path / "shared" / "dagster.yaml").read_text() == shipped.read_text()
