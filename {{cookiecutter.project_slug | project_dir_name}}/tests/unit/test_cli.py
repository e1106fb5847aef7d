import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app

runner = CliRunner()


def test_info_prints_resolved_settings_and_params(project: Path) -> None:
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["settings"]["project_dir"] == str(project.resolve())
    assert payload["settings"]["data_dir"] == str(project.resolve() / "data")
    assert payload["params"]["data"]["seed"] == 42


def test_bad_params_exit_non_zero_with_the_key(project: Path) -> None:
    (project / "params.yaml").write_text("data:\n  n_sales: -1\n", encoding="utf-8")
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 2
    assert "data.n_sales" in result.stderr


def test_the_module_entry_point_runs_without_heavy_imports(project: Path) -> None:
    # `python -m <package> --help` must start fast: no dbt, Great Expectations or MLflow at import.
    code = (
        "import sys, runpy; sys.argv = ['x', '--help']\n"
        "try:\n    runpy.run_module('{{ cookiecutter.package_name }}', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = {'dbt', 'great_expectations', 'mlflow', 'sklearn', 'dvc'} & set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=project
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_demo_steps_say_they_need_the_demo_source(project: Path) -> None:
    (project / "params.yaml").write_text("data:\n  source: files\n", encoding="utf-8")
    for command in (["data"], ["drift-demo", "sudden"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert "needs the demo source (data.source: demo in params.yaml)" in result.stderr
    folded = runner.invoke(app, ["fold-labels"])
    assert folded.exit_code == 0, folded.output
    assert "nothing to fold" in folded.stdout
