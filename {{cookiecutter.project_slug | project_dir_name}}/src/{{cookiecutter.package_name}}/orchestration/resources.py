"""The resources every asset uses, built from the project's :class:`~..config.Settings`.

The same environment variables (``ENVIRONMENT``, ``MLFLOW_TRACKING_URI``, ``DBT_TARGET``,
``DATA_DIR``...) and ``.env`` switch the warehouse, the tracking server and the storage for
Dagster exactly as for the CLI: the resources hold no setting of their own beyond the project
folder.
"""

import os
import sys
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext
from dagster_dbt import DbtCliResource
from pydantic import Field

from ..config import Settings, disable_telemetry, get_settings
from ..params import Params, load_params


class ProjectResource(ConfigurableResource):
    """The project's settings and parameters, read the way the CLI reads them."""

    project_dir: str = Field(
        default="",
        description="The project folder; empty: PROJECT_DIR, else the working folder (as the CLI).",
    )

    def setup_for_execution(self, context: InitResourceContext) -> None:  # noqa: ARG002 (hook)
        """Switch telemetry off in MLflow, Great Expectations and dbt before a step imports them."""
        disable_telemetry()

    def settings(self) -> Settings:
        """The settings of this project (environment variables and ``.env`` included)."""
        if self.project_dir:
            return Settings(project_dir=Path(self.project_dir))
        return get_settings()

    def params(self) -> Params:
        """The validated ``params.yaml``."""
        return load_params(self.settings().params_file)


def dbt_resource(settings: Settings) -> DbtCliResource:
    """Dbt on the project's dbt project, with the ``dbt`` installed beside this interpreter."""
    return DbtCliResource(
        project_dir=os.fspath(settings.transform_dir),
        profiles_dir=os.fspath(settings.transform_dir),
        dbt_executable=os.fspath(Path(sys.executable).with_name("dbt")),
    )
