"""The loop on a shared stack, where only configuration changes from the laptop.

A scratch project, committed to git, runs its pipeline as a staging machine runs it
(``ENVIRONMENT=staging``, which trains only from a clean commit): dbt builds the warehouse on
PostgreSQL, MLflow tracks and registers on a tracking server backed by PostgreSQL with its
artifacts on S3, and DVC keeps the data on S3. Then the service loads the champion from the server
and answers, a fresh clone pulls the data back, and Dagster runs nightly scoring with its own
storage in PostgreSQL.
"""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from processes import serving
from scratch import PROJECT_DIR, run_in, scratch_project
from shared_stack import S3Endpoint, warehouse_settings
from sqlalchemy.engine import make_url

from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.provenance import TAG_GIT_COMMIT, TAG_GIT_DIRTY
from {{ cookiecutter.package_name }}.registry import CHAMPION

PACKAGE = "{{ cookiecutter.package_name }}"


def commit(project: Path, message: str) -> str:
    """Commit everything in `project`; the new commit's hash."""
    run_in(project, "git", "add", "--all")
    who = ("-c", "user.name=Integration", "-c", "user.email=integration@example.invalid")
    run_in(project, "git", *who, "commit", "--quiet", "--message", message)
    return run_in(project, "git", "rev-parse", "HEAD").strip()


@pytest.fixture(scope="module")
def shared(tracking_server: str, warehouse_database: str, s3: S3Endpoint) -> dict[str, str]:
    """The project's settings on the shared stack: what a team's CI or .env sets."""
    return {
        "ENVIRONMENT": "staging",
        "MLFLOW_TRACKING_URI": tracking_server,
        **warehouse_settings(warehouse_database),
        "DATA_REMOTE": f"s3://{s3.bucket}/dvc",
        **s3.env,
    }


@pytest.fixture(scope="module")
def trained_on_the_server(shared: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed scratch project whose loop ran on the shared stack, up to nightly scoring."""
    folder = tmp_path_factory.mktemp("shared") / "project"
    # The embedded defaults: the gate judges the demo at its full size.
    project = scratch_project(folder, with_code=True, small=False)
    run_in(project, "git", "init", "--quiet")
    run_in(project, sys.executable, "-m", PACKAGE, "dvc-setup", settings=shared)

    def repro(*stages: str) -> None:  # what `make <stage>` runs
        run_in(project, sys.executable, "-m", PACKAGE, "pre-repro", settings=shared)
        run_in(project, sys.executable, "-m", "dvc", "repro", *stages, settings=shared)

    # The data run once, committed as a team commits its project (dvc.lock, data/raw/.gitignore).
    repro("validate")
    commit(project, "The project and its first data run")
    # Then the model run from that clean commit, which DVC's lock updates do not make dirty.
    repro("evaluate")
    for step in ("register", "promote", "score"):
        run_in(project, sys.executable, "-m", PACKAGE, step, settings=shared)
    return project


def test_the_warehouse_registry_and_models_live_on_the_servers(
    trained_on_the_server: Path,
    tracking_server: str,
    tracking_database: str,
    warehouse_database: str,
    s3: S3Endpoint,
) -> None:
    import psycopg2  # noqa: PLC0415 (the postgres extra: `make test-integration` installs it)

    settings = Settings(project_dir=trained_on_the_server, mlflow_tracking_uri=tracking_server)
    client = MlflowClient(tracking_uri=tracking_server, registry_uri=tracking_server)
    champion = client.get_model_version_by_alias(settings.model_name, CHAMPION)
    # dbt built the feature table on PostgreSQL, and no DuckDB file was written.
    with psycopg2.connect(warehouse_database) as connection, connection.cursor() as cursor:
        cursor.execute("select count(*) from analytics.customer_features")
        assert cursor.fetchone()[0] > 0
    assert not settings.warehouse_path.exists()
    transform = json.loads((settings.reports_dir / "transform" / "latest.json").read_text())
    assert transform["target"] == "postgres"
    # The registry's rows are in the tracking server's database.
    with psycopg2.connect(tracking_database) as connection, connection.cursor() as cursor:
        cursor.execute("select name, version from model_versions")
        assert (settings.model_name, int(champion.version)) in cursor.fetchall()
    # The model's files are in the bucket, and nothing went to a folder on this machine.
    keys = s3.keys("mlflow/")
    assert any(key.endswith("/MLmodel") for key in keys), keys[:20]
    assert not (trained_on_the_server / "mlartifacts").exists()
    assert not (trained_on_the_server / "mlflow.db").exists()
    experiment = client.get_experiment_by_name(settings.experiment_name)
    assert experiment is not None
    assert experiment.artifact_location.startswith("mlflow-artifacts:/")


def test_staging_trained_from_the_clean_commit(
    trained_on_the_server: Path, tracking_server: str
) -> None:
    settings = Settings(project_dir=trained_on_the_server, mlflow_tracking_uri=tracking_server)
    client = MlflowClient(tracking_uri=tracking_server, registry_uri=tracking_server)
    champion = client.get_model_version_by_alias(settings.model_name, CHAMPION)
    head = run_in(trained_on_the_server, "git", "rev-parse", "HEAD").strip()
    assert champion.tags[TAG_GIT_COMMIT] == head
    assert champion.tags[TAG_GIT_DIRTY] == "false"


def test_the_service_loads_the_champion_from_the_server_and_answers(
    trained_on_the_server: Path, tracking_server: str, tmp_path: Path
) -> None:
    settings = {
        "MLFLOW_TRACKING_URI": tracking_server,
        "PROJECT_DIR": str(trained_on_the_server),
        "PREDICTION_LOG_DIR": str(tmp_path / "log"),
    }
    with serving(sys.executable, {**os.environ, **settings}, tmp_path / "serve.log") as url:
        checked = run_in(trained_on_the_server, sys.executable, "-m", PACKAGE, "smoke-test", url)
    assert "smoke checks passed" in checked


def test_the_data_go_to_s3_and_come_back_in_a_fresh_clone(
    trained_on_the_server: Path, shared: dict[str, str], s3: S3Endpoint, tmp_path: Path
) -> None:
    run_in(trained_on_the_server, sys.executable, "-m", "dvc", "push", settings=shared)
    assert s3.keys("dvc/files/md5/")
    commit(trained_on_the_server, "The model run")
    clone = tmp_path / "clone"
    run_in(tmp_path, "git", "clone", "--quiet", str(trained_on_the_server), str(clone))
    run_in(clone, sys.executable, "-m", PACKAGE, "dvc-setup", settings=shared)
    run_in(clone, sys.executable, "-m", "dvc", "pull", settings=shared)
    raw = Path("data") / "raw"
    for name in ("customers.csv", "sales.csv"):
        pulled = (clone / raw / name).read_bytes()
        assert pulled == (trained_on_the_server / raw / name).read_bytes(), name


def test_dagster_runs_nightly_scoring_with_its_storage_in_postgresql(
    trained_on_the_server: Path, shared: dict[str, str], dagster_database: str, tmp_path: Path
) -> None:
    import psycopg2  # noqa: PLC0415 (the postgres extra: `make test-integration` installs it)

    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy2(PROJECT_DIR / "deploy" / "dagster" / "dagster.yaml", home / "dagster.yaml")
    storage = make_url(dagster_database).set(drivername="postgresql+psycopg2")
    on_dagster = {
        **shared,
        "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_URL": storage.render_as_string(hide_password=False),
    }
    # The dbt manifest Dagster reads (`make setup` prepares it), then the job the schedule runs.
    run_in(
        trained_on_the_server,
        sys.executable,
        "-m",
        PACKAGE,
        "dbt",
        "parse",
        "--quiet",
        settings=on_dagster,
    )
    module = f"{PACKAGE}.orchestration.definitions"
    run_in(
        trained_on_the_server,
        *(sys.executable, "-m", "dagster", "job", "execute", "-m", module, "-j", "scoring"),
        settings=on_dagster,
    )
    with psycopg2.connect(dagster_database) as connection, connection.cursor() as cursor:
        cursor.execute("select pipeline_name, status from runs")
        assert cursor.fetchall() == [("scoring", "SUCCESS")]
        cursor.execute(
            "select distinct asset_key from event_logs "
            "where dagster_event_type = 'ASSET_MATERIALIZATION'"
        )
        materialized = {row[0] for row in cursor.fetchall()}
    assert '["predictions"]' in materialized, materialized
    # Only Dagster's own folders are on disk: no run history in SQLite files.
    assert not list(home.rglob("*.db")), list(home.rglob("*.db"))
