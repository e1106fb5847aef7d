"""The score step's engine is configuration: SCORING_ENGINE and SPARK_MASTER, checked up front."""

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.batch import run_scoring
from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.config import ConfigError, Settings, get_settings


def test_pandas_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCORING_ENGINE", raising=False)
    monkeypatch.delenv("SPARK_MASTER", raising=False)
    settings = Settings(project_dir=tmp_path)
    assert (settings.scoring_engine, settings.spark_master) == ("pandas", "local[*]")
    assert settings.scoring_engine_name == "pandas"


@pytest.mark.usefixtures("project")
def test_the_engine_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCORING_ENGINE", "spark")
    monkeypatch.setenv("SPARK_MASTER", "spark://scheduler:7077")
    assert get_settings().scoring_engine_name == "spark (spark://scheduler:7077)"


@pytest.mark.usefixtures("project")
@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SCORING_ENGINE", "sparc", r"SCORING_ENGINE='sparc': Input should be 'pandas' or 'spark'"),
        ("SPARK_MASTER", "locla[2]", r"SPARK_MASTER='locla\[2\]': not a Spark master URL"),
    ],
)
def test_a_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=message):
        get_settings()


@pytest.mark.parametrize(
    "master",
    [
        "local",
        "local[2]",
        "local[*]",
        "local[4,2]",
        "spark://h1:7077,h2:7077",
        "k8s://https://k:443",
        "yarn",
    ],
)
def test_spark_master_urls_are_accepted(tmp_path: Path, master: str) -> None:
    assert Settings(project_dir=tmp_path, spark_master=master).spark_master == master


@pytest.mark.parametrize(
    "master", ["", "local[0]", "local[two]", "local[2", "spark://", "mesos://m:5050"]
)
def test_other_spark_masters_are_refused(tmp_path: Path, master: str) -> None:
    with pytest.raises(ValueError, match="not a Spark master URL"):
        Settings(project_dir=tmp_path, spark_master=master)


def test_spark_without_pyspark_says_how_to_install_it_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules is how Python marks a module that cannot be imported.
    monkeypatch.setitem(sys.modules, "pyspark", None)
    # No registry and no warehouse here: the engine is checked first, so its error is the one.
    settings = Settings(
        project_dir=tmp_path,
        mlflow_tracking_uri=f"sqlite:///{tmp_path}/none.db",
        scoring_engine="spark",
    )
    with pytest.raises(
        ConfigError, match=r"SCORING_ENGINE=spark needs pyspark.*make setup EXTRAS=spark"
    ):
        run_scoring(settings)


@pytest.mark.usefixtures("project")
def test_the_score_command_exits_2_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setenv("SCORING_ENGINE", "spark")
    result = CliRunner().invoke(app, ["score"])
    assert result.exit_code == 2, result.output
    assert "make setup EXTRAS=spark" in result.stderr
    get_settings.cache_clear()
    monkeypatch.setenv("SCORING_ENGINE", "gpu")
    result = CliRunner().invoke(app, ["score"])
    assert result.exit_code == 2, result.output
    assert "SCORING_ENGINE='gpu'" in result.stderr
