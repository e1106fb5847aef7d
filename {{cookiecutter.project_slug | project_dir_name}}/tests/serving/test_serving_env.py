"""The `serving` dependency group is all the service needs: installed alone, it serves.

The environment is built as the Dockerfile builds it: `uv sync --only-group serving` without the
project, then the project itself without its dependencies. Nothing of the pipeline (dbt, DVC,
Great Expectations, matplotlib, fairlearn) is there, and the service answers from a bundle.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from processes import serving
from serving_support import PROJECT_DIR, Registry, a_record, call, settings_for

from {{ cookiecutter.package_name }}.registry import CHAMPION
from {{ cookiecutter.package_name }}.serving.loader import export_bundle

pytestmark = pytest.mark.slow

PIPELINE_ONLY = ("dbt", "dvc", "great_expectations", "matplotlib", "fairlearn")


def test_the_serving_group_alone_serves_a_bundle(registry: Registry, tmp_path: Path) -> None:
    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` names itself in $UV
    assert uv, "uv is installed by `make setup`"
    bundle = tmp_path / "bundle"
    export_bundle(settings_for(registry.folder), bundle, CHAMPION)
    venv = tmp_path / "serving-env"
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env |= {"UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    python = str(venv / "bin" / "python")
    for command in (
        [uv, "sync", "--frozen", "--only-group", "serving", "--no-install-project"],
        [uv, "pip", "install", "--python", python, "--no-deps", str(PROJECT_DIR)],
    ):
        result = subprocess.run(
            command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr

    check = f"import importlib.util as u; print([m for m in {PIPELINE_ONLY!r} if u.find_spec(m)])"
    found = subprocess.run([python, "-c", check], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]", found.stdout

    served = {
        **env,
        "PROJECT_DIR": str(tmp_path),
        "SERVING_MODEL_URI": str(bundle),
        "PREDICTION_LOG_DIR": str(tmp_path / "log"),
    }
    with serving(python, served, tmp_path / "serve.log") as base:
        status, body, _ = call(f"{base}/predict", a_record(registry.contract))
        assert status == 200, body
        assert body["model"]["version"] == registry.champion
