"""The loop on a shared tracking server: MLflow on PostgreSQL, its artifacts on S3.

Only configuration changes from the laptop: ``MLFLOW_TRACKING_URI`` names the server. The steps
run as `make all` runs them, then the service loads the champion from the server and answers.
"""

import os
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from processes import serving
from scratch import run_in, scratch_project
from shared_stack import S3Endpoint

from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.registry import CHAMPION

PACKAGE = "{{ cookiecutter.package_name }}"
LOOP = ("data", "transform", "validate", "train", "evaluate", "register", "promote", "score")


@pytest.fixture(scope="module")
def trained_on_the_server(tracking_server: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch project whose loop ran against the tracking server, up to nightly scoring."""
    on_the_server = {"MLFLOW_TRACKING_URI": tracking_server}
    folder = tmp_path_factory.mktemp("shared") / "project"
    # The embedded defaults: the gate judges the demo at its full size.
    project = scratch_project(folder, with_code=True, small=False)
    for step in LOOP:  # what `make all` runs, step by step
        run_in(project, sys.executable, "-m", PACKAGE, step, settings=on_the_server)
    return project


def test_the_registry_lives_in_postgresql_and_the_models_in_s3(
    trained_on_the_server: Path, tracking_server: str, postgres_database: str, s3: S3Endpoint
) -> None:
    import psycopg2  # noqa: PLC0415 (the postgres extra: `make test-integration` installs it)

    settings = Settings(project_dir=trained_on_the_server, mlflow_tracking_uri=tracking_server)
    client = MlflowClient(tracking_uri=tracking_server, registry_uri=tracking_server)
    champion = client.get_model_version_by_alias(settings.model_name, CHAMPION)
    # The registry's rows are in the database the server was given.
    with psycopg2.connect(postgres_database) as connection, connection.cursor() as cursor:
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
