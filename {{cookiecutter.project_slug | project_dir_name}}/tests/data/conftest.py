"""Fixtures for the data tests: the project's raw data, built once into a warehouse by dbt.

The raw data are the project's own: with the demo source, a small extract from the generator;
with your own files, those files (pulled from the DVC remote if they are not here). Each test
that changes anything works on its own copy of that project (`built_copy`), so the session's
warehouse stays as built.
"""

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from scratch import SOURCE, run_in, scratch_project

from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.data.build import build_warehouse
from {{ cookiecutter.package_name }}.data.generate import demo_tables, write_tables
from {{ cookiecutter.package_name }}.data.record import build_data_run_record, write_data_run_record
from {{ cookiecutter.package_name }}.params import demo_source, load_params
from {{ cookiecutter.package_name }}.validation import run_validation


@pytest.fixture
def run() -> Callable[..., str]:
    """`run_in`, for tests (conftest modules are not imported by name)."""
    return run_in


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
    if SOURCE == "demo":
        write_tables(demo_tables(demo_source(params, "the demo extract")), settings.raw_dir)
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
