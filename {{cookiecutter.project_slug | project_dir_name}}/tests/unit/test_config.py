import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import ConfigError, Settings, disable_telemetry, get_settings
from {{ cookiecutter.package_name }}.params import Params, demo_source, load_params
from {{ cookiecutter.package_name }}.tracking import connect


def test_relative_paths_are_anchored_at_the_project_dir(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, data_dir=Path("elsewhere"))
    assert settings.data_dir == tmp_path / "elsewhere"
    assert settings.raw_dir == tmp_path / "elsewhere" / "raw"
    assert settings.params_file == tmp_path / "params.yaml"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, reports_dir=Path("/srv/reports"))
    assert settings.reports_dir == Path("/srv/reports")


def test_settings_come_from_the_environment(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "staging")
    monkeypatch.setenv("DATA_DIR", "/mnt/data")
    settings = get_settings()
    assert settings.environment == "staging"
    assert settings.data_dir == Path("/mnt/data")
    assert settings.project_dir == project.resolve()


def test_an_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValueError, match="environment"):
        Settings()


def test_the_projects_params_file_is_valid() -> None:
    params = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
    assert params == Params.model_validate(params.model_dump())


def test_steps_of_the_demo_generator_say_they_need_it() -> None:
    own_files = Params.model_validate({"data": {"source": "files"}})
    assert demo_source(Params(), "make drift-demo").n_customers == 5_000
    with pytest.raises(ConfigError, match=r"make drift-demo needs the demo source"):
        demo_source(own_files, "make drift-demo")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("data:\n  n_customers: 5\n", r"data\.n_customers: Input should be greater than"),
        ("data:\n  n_custmers: 5000\n", r"data\.n_custmers: Extra inputs are not permitted"),
        ("dat:\n  seed: 1\n", r"dat: Extra inputs are not permitted"),
        ("data:\n  seed: one\n", r"data\.seed: Input should be a valid integer"),
        ("data: [\n", r"not valid YAML"),
        # The generator's settings belong to the demo source only; the source is one of two.
        ("data:\n  source: files\n  seed: 1\n", r"data\.seed: Extra inputs are not permitted"),
        ("data:\n  source: warehouse\n", r"data: source must be 'demo' .* or 'files'"),
        ("train:\n  positive_class: [1]\n", r"train\.positive_class: Input should be"),
        # A row-count range no table can meet is refused before Great Expectations sees it.
        (
            "validation:\n  min_rows: 10\n  max_rows: 5\n",
            r"validation: .*min_rows \(10\) is above max_rows \(5\).*lower min_rows",
        ),
    ],
)
def test_bad_params_name_the_key(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_params(path)


def test_a_missing_params_file_says_where_to_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="parameters file not found"):
        load_params(tmp_path / "params.yaml")


def test_telemetry_is_switched_off_without_overriding_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    monkeypatch.setenv("DO_NOT_TRACK", "0")
    disable_telemetry()
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert os.environ["DO_NOT_TRACK"] == "0"


def test_outside_local_the_embedded_tracking_store_is_refused(tmp_path: Path) -> None:
    """Runs and models in a SQLite file on one machine are no team's registry."""
    # Explicit: a test before this one may have left MLFLOW_TRACKING_URI in the environment.
    staging = Settings(project_dir=tmp_path, environment="staging", mlflow_tracking_uri="")
    assert staging.tracking_store_is_embedded
    with pytest.raises(ConfigError, match=r"MLFLOW_TRACKING_URI is not set: ENVIRONMENT=staging"):
        connect(staging)
    assert not (tmp_path / "mlflow.db").exists()
    # The same store is fine on a laptop; a server named for staging is not the embedded one.
    assert Settings(project_dir=tmp_path, mlflow_tracking_uri="").tracking_store_is_embedded
    on_a_server = Settings(
        project_dir=tmp_path, environment="staging", mlflow_tracking_uri="http://mlflow:5000"
    )
    assert not on_a_server.tracking_store_is_embedded


@pytest.mark.usefixtures("project")
def test_a_bad_setting_stops_every_command_naming_each_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("PORT", "eighty")
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 2, result.output
    assert "ENVIRONMENT='production': Input should be 'local', 'staging' or 'prod'" in result.stderr
    assert "PORT='eighty'" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("project")
def test_the_other_secrets_are_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """A check across fields sees every value: only its own message is shown."""
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("API_KEY", "changethis")
    monkeypatch.setenv("POSTGRES_PASSWORD", "hunter2-real")
    with pytest.raises(ConfigError, match="API_KEY='changethis' is a placeholder") as refused:
        get_settings()
    assert "hunter2-real" not in str(refused.value)
