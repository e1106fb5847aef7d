"""Fixtures for the serving tests: a small registry built once, and an app that serves from it.

Building the registry (two registered versions in a scratch SQLite store) takes a few seconds,
once per session; apps reuse the loaded versions.
"""

from collections.abc import Iterator

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from serving_support import (
    MODEL_NAME,
    Registry,
    preloaded_state,
    project_contract,
    registry_client,
    settings_for,
    synthetic_table,
    train_and_register,
    unlabelled_rows,
    write_warehouse,
)

from {{ cookiecutter.package_name }}.registry import CHALLENGER, CHAMPION
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.serving.loader import LoadedModel, load_registered


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    folder = tmp_path_factory.mktemp("registry")
    settings = settings_for(folder)
    contract = project_contract()
    table = synthetic_table(contract)
    champion = train_and_register(
        settings, contract, table, "hist_gradient_boosting", {"max_iter": 20, "max_leaf_nodes": 7}
    )
    challenger = train_and_register(
        settings, contract, table, "logistic_regression", {"max_iter": 200}
    )
    client = registry_client(settings)
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, champion)
    client.set_registered_model_alias(MODEL_NAME, CHALLENGER, challenger)
    unlabelled = unlabelled_rows(contract, first_id=len(table) + 1)
    write_warehouse(settings, contract, pd.concat([table, unlabelled], ignore_index=True))
    return Registry(folder, contract, table, unlabelled, champion, challenger)


@pytest.fixture(scope="session")
def loaded(registry: Registry) -> dict[str, LoadedModel]:
    """Both versions loaded once; apps reuse them (a LoadedModel is immutable)."""
    settings = settings_for(registry.folder)
    return {
        CHAMPION: load_registered(settings, CHAMPION),
        CHALLENGER: load_registered(settings, CHALLENGER),
    }


@pytest.fixture(scope="module")
def client(
    registry: Registry, loaded: dict[str, LoadedModel], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """A client of an app serving the session's champion (shared by a module's tests)."""
    folder = tmp_path_factory.mktemp("serve")
    settings = settings_for(
        registry.folder,
        prediction_log_dir=folder / "log",
        serving_max_batch=50,
        serving_max_body_bytes=20_000,
    )
    with TestClient(create_app(settings, preloaded_state(settings, loaded))) as test_client:
        yield test_client
