"""Fixtures for the orchestration tests: a scratch project whose whole graph Dagster ran once.

The project is a small copy of this one (git, DVC, the dbt manifest prepared as `make setup`
prepares it); the whole graph runs in-process on an ephemeral instance, as `make orchestrate`
runs it with the project's instance.
"""

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import DagsterInstance, Definitions, ExecuteInProcessResult
from scratch import run_in, scratch_project

from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.orchestration.definitions import build_definitions


def prepared_project(folder: Path) -> Path:
    """A versioned scratch project on the embedded defaults, with its dbt manifest."""
    project = scratch_project(folder, with_code=True, versioned=True, small=False)
    run_in(project, sys.executable, "-m", "{{ cookiecutter.package_name }}", "dbt", "parse", "--quiet")
    return project


@dataclass
class Orchestrated:
    """A project, its definitions, the instance that ran them, and the first run's result."""

    path: Path
    defs: Definitions
    instance: DagsterInstance
    result: ExecuteInProcessResult

    @property
    def settings(self) -> Settings:
        return Settings(project_dir=self.path)


@pytest.fixture(scope="session")
def orchestrated(tmp_path_factory: pytest.TempPathFactory) -> Orchestrated:
    """The whole graph (`loop` job) materialized once on a scratch project."""
    path = prepared_project(tmp_path_factory.mktemp("orchestrated") / "project")
    defs = build_definitions(Settings(project_dir=path))
    instance = DagsterInstance.ephemeral()
    result = defs.resolve_job_def("loop").execute_in_process(
        instance=instance, raise_on_error=False
    )
    return Orchestrated(path, defs, instance, result)


@pytest.fixture
def make_prepared_project() -> Callable[[Path], Path]:
    """`prepared_project`, for a test that needs a project of its own."""
    return prepared_project
