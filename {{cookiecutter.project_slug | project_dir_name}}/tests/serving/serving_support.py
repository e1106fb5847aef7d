"""Helpers of the serving tests: a small registry, settings of a scratch project, records.

The registry is a real SQLite MLflow store in a scratch folder with two versions of a small model
trained on synthetic rows that follow the project's own contract (transform/models): v1 is the
champion, v2 (another estimator) the challenger.
"""

import json
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import duckdb
import mlflow
import numpy as np
import pandas as pd

from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.contract import FeatureContract, load_contract
from {{ cookiecutter.package_name }}.params import load_params
from {{ cookiecutter.package_name }}.pipeline import build_pipeline
from {{ cookiecutter.package_name }}.registry import CHALLENGER, CHAMPION
from {{ cookiecutter.package_name }}.serving.loader import LoadedModel
from {{ cookiecutter.package_name }}.serving.state import ServingState
from {{ cookiecutter.package_name }}.tracking import CONTRACT_ARTIFACT, log_sklearn_model
from {{ cookiecutter.package_name }}.training import TEST_IDS_ARTIFACT

PROJECT_DIR = Path(__file__).resolve().parents[2]
MODEL_NAME = "serving_test_model"


def project_contract() -> FeatureContract:
    """The project's contract as training records it: the dbt contract with params.yaml's ranges."""
    settings = settings_for(PROJECT_DIR)
    return load_contract(settings).with_ranges(load_params(settings.params_file).validation.ranges)


def synthetic_table(contract: FeatureContract, n_rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """Rows that follow `contract`: accepted values for text, numbers whose sum drives the label."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {contract.id_column: np.arange(1, n_rows + 1, dtype="int64")}
    risk = rng.normal(size=n_rows)
    for column in contract.columns:
        if column.role in {"id", "label"}:
            continue
        if column.is_numeric:
            low = column.minimum or 0.0
            values = low + np.abs(rng.normal(10, 5, n_rows) + 3 * risk * rng.uniform(0.5, 1.5))
            if column.maximum is not None and values.max() > column.maximum:
                # e.g. a rate in [0, 1]: scaled into its bounds
                values = low + (column.maximum - low) * (values - low) / (values.max() - low)
            data[column.name] = np.floor(values) if column.is_integer else values
        else:
            choices = list(column.accepted_values or ("a", "b", "c"))
            data[column.name] = rng.choice(choices, n_rows)
    labels = contract.label_values or ("good", "bad")
    data[contract.label_column] = np.where(risk > 0.3, labels[-1], labels[0])
    table = pd.DataFrame(data)
    for name in contract.numeric_features:
        if contract.column(name).nullable:
            table.loc[::37, name] = np.nan
    return table[contract.column_names]


def registry_client(settings: Settings) -> mlflow.MlflowClient:
    """A client of this test project's store for tracking AND registry.

    Both explicitly: a client given only a tracking URI takes the registry from the process-wide
    `mlflow.set_registry_uri`, which another test module may have pointed at its own store.
    """
    uri = settings.mlflow_tracking_uri
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def train_and_register(
    settings: Settings, contract: FeatureContract, table: pd.DataFrame, estimator: str, params: dict
) -> str:
    """Fit, log (with the contract and held-out ids) and register one version; return it."""
    client = registry_client(settings)
    experiment = client.get_experiment_by_name("serving-tests")
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment(
            "serving-tests", artifact_location=settings.mlflow_artifact_root
        )
    )
    pipeline = build_pipeline(contract, estimator, params, seed=0)
    features = table[contract.feature_columns]
    pipeline.fit(features, table[contract.label_column])
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_param(
            "positive_class", contract.label_values[0] if contract.label_values else "good"
        )
        mlflow.log_text(contract.to_json(), CONTRACT_ARTIFACT)
        held_out = [int(value) for value in table[contract.id_column].tail(150)]
        mlflow.log_dict({contract.id_column: held_out}, TEST_IDS_ARTIFACT)
        info = log_sklearn_model(pipeline, features.head(5))
    try:
        client.get_registered_model(MODEL_NAME)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(MODEL_NAME)
    version = client.create_model_version(
        MODEL_NAME,
        source=info.model_uri,
        run_id=run.info.run_id,
        tags={"lineage.data_version": f"md5:{estimator}"},
        model_id=info.model_uri.removeprefix("models:/"),
    )
    return str(version.version)


def settings_for(folder: Path, **overrides: object) -> Settings:
    """Settings of a scratch project in `folder` (nothing read from the real project)."""
    values: dict[str, object] = {
        "project_dir": folder,
        # Explicit: mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI to the environment.
        "mlflow_tracking_uri": f"sqlite:///{folder / 'mlflow.db'}",
        "model_name": MODEL_NAME,
        "transform_dir": PROJECT_DIR / "transform",
        "serving_poll_seconds": 0,
        "serving_retry_seconds": 0.2,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Registry:
    """The session's registry: where it is, its contract and its feature table.

    `table` holds the labelled rows the versions were trained on; the warehouse also holds
    `unlabelled`, rows whose outcome is not known yet (what batch scoring scores).
    """

    folder: Path
    contract: FeatureContract
    table: pd.DataFrame
    unlabelled: pd.DataFrame
    champion: str
    challenger: str

    def copy_to(self, folder: Path) -> Path:
        """A private copy (a test that moves aliases must not disturb the others)."""
        shutil.copy(self.folder / "mlflow.db", folder / "mlflow.db")
        return folder


def unlabelled_rows(contract: FeatureContract, first_id: int, n_rows: int = 150) -> pd.DataFrame:
    """New rows for `contract`: ids from `first_id` on, no label yet."""
    table = synthetic_table(contract, n_rows, seed=1)
    table[contract.id_column] += first_id - 1
    table[contract.label_column] = None
    return table


def write_warehouse(settings: Settings, contract: FeatureContract, table: pd.DataFrame) -> None:
    """The feature table in a DuckDB warehouse, as dbt would have built it."""
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse_path)) as connection:
        connection.register("features", table)
        connection.execute(
            f"create or replace table main.{contract.model} as select * from features"  # noqa: S608
        )


def preloaded_state(
    settings: Settings, loaded: dict[str, LoadedModel], *, challenger: bool = False
) -> ServingState:
    state = ServingState(settings)
    state.champion = loaded[CHAMPION]
    state.reason = "ready"
    if challenger:
        state.challenger = loaded[CHALLENGER]
    return state


def a_record(contract: FeatureContract, **changes: object) -> dict[str, object]:
    """A valid request record for `contract` (its example record), with `changes` applied."""
    return {**contract.example_record(), **changes}


def bounded_features(contract: FeatureContract) -> list[tuple[str, float, str]]:
    """Per bounded numeric feature: a value just outside its bounds, and the bound it breaks."""
    outside = []
    for name in contract.numeric_features:
        column = contract.column(name)
        if column.minimum is not None:
            outside.append(
                (name, column.minimum - 1, f"greater than or equal to {column.minimum:.15g}")
            )
        if column.maximum is not None:
            outside.append(
                (name, column.maximum + 1, f"less than or equal to {column.maximum:.15g}")
            )
    return outside


def call(url: str, body: object | None = None) -> tuple[int, dict, Message]:
    """POST `body` as JSON (or GET without one); the status, the JSON answer and the headers."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 only)
        url, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers
