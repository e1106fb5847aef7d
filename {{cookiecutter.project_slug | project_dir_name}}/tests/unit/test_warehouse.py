import json
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import SecretStr

from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.contract import FeatureContract
from {{ cookiecutter.package_name }}.data.build import pin_warehouse
from {{ cookiecutter.package_name }}.data.warehouse import conform_to_contract


def test_rows_come_back_in_the_shapes_models_expect(contract: FeatureContract) -> None:
    frame = pd.DataFrame({name: [None] * 3 for name in contract.column_names})
    frame[contract.id_column] = pd.array([3, 1, 2], dtype="Int64")
    frame["n_orders"] = pd.array([1, None, 3], dtype="Int64")
    frame["country"] = ["DE", None, "FR"]
    # An integer label, unknown on one row: read from the warehouse as a nullable integer.
    frame[contract.label_column] = pd.array([1, None, 0], dtype="Int64")

    conformed = conform_to_contract(frame, contract)

    assert conformed[contract.id_column].dtype == "int64"
    assert conformed["n_orders"].dtype == "float64"
    assert np.isnan(conformed["n_orders"][1])
    assert conformed["country"].tolist() == ["DE", None, "FR"]
    assert conformed[contract.label_column].dtype == object
    assert conformed[contract.label_column].tolist() == ["1", None, "0"]


def test_the_pin_names_the_warehouse_and_changes_only_with_it(tmp_path: Path) -> None:
    on_duckdb = Settings(project_dir=tmp_path, dbt_target="duckdb")
    path = pin_warehouse(on_duckdb)
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "path": "data/warehouse.duckdb",  # relative: every clone writes the same pin
        "target": "duckdb",
    }
    written = path.stat().st_mtime_ns
    pin_warehouse(on_duckdb)
    assert path.stat().st_mtime_ns == written

    on_postgres = Settings(
        project_dir=tmp_path,
        dbt_target="postgres",
        postgres_db="warehouse",
        postgres_password=SecretStr("not-in-the-pin"),
    )
    pin = pin_warehouse(on_postgres).read_text(encoding="utf-8")
    assert json.loads(pin) == {
        "target": "postgres",
        "host": "127.0.0.1",
        "port": "5432",
        "database": "warehouse",
        "schema": "analytics",
    }
    assert "not-in-the-pin" not in pin
