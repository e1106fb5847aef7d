"""The project's one ``Definitions``: what ``dagster dev``, ``dg`` and the tests load.

Built from the settings by :func:`build_definitions`, so the tests build it for a scratch
project. The dbt manifest is read, never parsed: ``make setup`` (and ``make dagster``) prepare it
with ``dbt parse``.
"""

from dagster import AssetKey, Definitions
from dagster_dbt import DbtProject

from ..config import Settings, get_settings
from ..contract import find_contract_model
from .automation import JOBS, SCHEDULES, SENSORS
from .data import build_feature_gate, build_raw_tables, build_warehouse_assets, read_manifest
from .deploy import build_deploy_assets
from .model import build_model_assets
from .resources import ProjectResource, dbt_resource


def build_definitions(settings: Settings) -> Definitions:
    """The assets, checks, jobs, schedules, sensors and resources of the project at `settings`."""
    dbt_project = DbtProject(
        project_dir=settings.transform_dir, profiles_dir=settings.transform_dir
    )
    manifest = read_manifest(dbt_project)
    # The contract's model is the feature table, whatever a team named it (`make adopt`).
    _, model = find_contract_model(settings.transform_dir / "models")
    feature_table = AssetKey(model)
    model_assets = build_model_assets(feature_table)
    return Definitions(
        assets=[
            build_raw_tables(dbt_project, manifest),
            build_warehouse_assets(dbt_project),
            *model_assets,
            *build_deploy_assets(feature_table, model_assets[-1].key),
        ],
        asset_checks=[build_feature_gate(feature_table)],
        jobs=JOBS,
        schedules=SCHEDULES,
        sensors=SENSORS,
        resources={
            "project": ProjectResource(project_dir=str(settings.project_dir)),
            "dbt": dbt_resource(settings),
        },
    )


defs = build_definitions(get_settings())
