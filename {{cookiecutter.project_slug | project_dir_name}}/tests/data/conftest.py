"""Fixtures for the data tests: a small demo extract, built once into a warehouse by dbt.

Each test that changes anything works on its own copy of that project (`built_copy`), so the
session's warehouse stays as built.
"""

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.data.build import build_warehouse
from {{ cookiecutter.package_name }}.data.generate import generate_tables, write_tables
from {{ cookiecutter.package_name }}.data.record import build_data_run_record, write_data_run_record
from {{ cookiecutter.package_name }}.params import load_params
from {{ cookiecutter.package_name }}.validation import run_validation

PROJECT_DIR = Path(__file__).resolve().parents[2]
SMALL = {"n_customers": 400, "n_sales": 4_000}


def scratch_project(folder: Path, *, with_code: bool = False) -> Path:
    """Copy what a data run needs (dbt project, params with a small extract) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("target", "logs", "dbt_packages", "__pycache__", ".user.yml")
    shutil.copytree(PROJECT_DIR / "transform", folder / "transform", ignore=ignore)
    if with_code:
        shutil.copytree(PROJECT_DIR / "src", folder / "src", ignore=ignore)
        shutil.copy2(PROJECT_DIR / "dvc.yaml", folder / "dvc.yaml")
    params = yaml.safe_load((PROJECT_DIR / "params.yaml").read_text(encoding="utf-8"))
    params["data"].update(SMALL)
    params["validation"]["min_rows"] = 100
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture
def make_scratch_project() -> Callable[..., Path]:
    """`scratch_project`, for tests that need a fresh project folder of their own."""
    return scratch_project


@pytest.fixture(scope="session")
def built_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with raw data, a warehouse, a validation result and a data-run record."""
    folder = scratch_project(tmp_path_factory.mktemp("built") / "project")
    settings = Settings(project_dir=folder)
    params = load_params(settings.params_file)
    tables = generate_tables(
        params.data.seed, params.data.n_customers, params.data.n_sales, params.data.extract_date
    )
    write_tables(tables, settings.raw_dir)
    transform = build_warehouse(settings, params)
    report = run_validation(settings, params.validation)
    assert report.success, [outcome.describe() for outcome in report.failed]
    write_data_run_record(settings, build_data_run_record(settings, transform, report))
    return folder


@pytest.fixture(scope="session")
def built_settings(built_project: Path) -> Settings:
    return Settings(project_dir=built_project)


@pytest.fixture
def built_copy(
    built_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], Path]:
    """A private copy of the built project, made the current project (settings and folder)."""

    def _copy() -> Path:
        folder = tmp_path / "project"
        shutil.copytree(built_project, folder)
        monkeypatch.setenv("PROJECT_DIR", str(folder))
        monkeypatch.chdir(folder)
        return folder

    return _copy
