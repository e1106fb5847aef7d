import numpy as np
import pandas as pd

from {{ cookiecutter.package_name }}.contract import FeatureContract
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
