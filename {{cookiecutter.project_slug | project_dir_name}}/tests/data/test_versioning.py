"""DVC: `dvc repro` runs the data steps once, and pushed data comes back byte for byte."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.data.record import file_md5

pytestmark = pytest.mark.slow

RAW = ["data/raw/customers.csv", "data/raw/sales.csv"]


def _run(project: Path, *command: str) -> str:
    env = {key: value for key, value in os.environ.items() if key != "PROJECT_DIR"}
    # DVC stages call `python -m <package>`: this test's interpreter, first on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DATA_REMOTE"] = str(project.parent / "remote")
    result = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def test_repro_push_and_pull_restore_identical_data(tmp_path: Path, make_scratch_project) -> None:
    project = make_scratch_project(tmp_path / "project", with_code=True)
    _run(project, "git", "init", "--quiet")
    _run(project, sys.executable, "-m", "{{ cookiecutter.package_name }}", "dvc-setup")
    assert "analytics = false" in (project / ".dvc" / "config").read_text(encoding="utf-8")
    assert str(tmp_path / "remote") in (project / ".dvc" / "config.local").read_text(
        encoding="utf-8"
    )

    # The data stages only (later stages train models: not this test's business).
    _run(project, sys.executable, "-m", "dvc", "repro", "validate")
    assert (project / "data" / "warehouse.duckdb").exists()
    assert (project / "reports" / "data_run" / "latest.json").exists()
    again = _run(project, sys.executable, "-m", "dvc", "repro", "validate")
    assert "Data and pipelines are up to date" in again
    before = {name: file_md5(project / name) for name in RAW}

    _run(project, sys.executable, "-m", "dvc", "push", "dvc.yaml:data")
    shutil.rmtree(project / ".dvc" / "cache")
    for name in RAW:
        (project / name).unlink()
    _run(project, sys.executable, "-m", "dvc", "pull", "dvc.yaml:data")

    assert {name: file_md5(project / name) for name in RAW} == before
    lock = (project / "dvc.lock").read_text(encoding="utf-8")
    assert all(md5 in lock for md5 in before.values())
