"""Expectations on the feature table that dbt built from the demo extract."""

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.contract import FeatureContract, load_contract
from {{ cookiecutter.package_name }}.data.record import load_data_run_record
from {{ cookiecutter.package_name }}.data.warehouse import WarehouseError, load_feature_table
from {{ cookiecutter.package_name }}.params import load_params
from {{ cookiecutter.package_name }}.validation import validate_features

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def contract(built_settings: Settings) -> FeatureContract:
    return load_contract(built_settings)


@pytest.fixture(scope="module")
def features(built_settings: Settings, contract: FeatureContract) -> pd.DataFrame:
    return load_feature_table(built_settings, contract)


def test_one_row_per_customer_with_the_contract_columns(features, contract, built_settings) -> None:
    assert list(features.columns) == contract.column_names
    assert len(features) == load_params(built_settings.params_file).data.n_customers
    assert features[contract.id_column].is_unique
    assert features[contract.id_column].is_monotonic_increasing


def test_the_warehouse_types_are_the_contract_types(built_settings, contract) -> None:
    with duckdb.connect(str(built_settings.warehouse_path), read_only=True) as connection:
        types = dict(
            connection.execute(
                "select column_name, lower(data_type) from information_schema.columns "
                "where table_name = 'customer_features'"
            ).fetchall()
        )
    # DuckDB reports the portable `double precision` of the contract by its own name.
    aliases = {
        "varchar": "varchar",
        "double precision": "double",
        "integer": "integer",
        "bigint": "bigint",
    }
    assert types == {column.name: aliases[column.data_type] for column in contract.columns}


def test_pandas_dtypes_are_what_models_expect(features, contract) -> None:
    assert features[contract.id_column].dtype == "int64"
    for name in contract.numeric_features:
        assert features[name].dtype == "float64", name
    for name in [*contract.categorical_features, contract.label_column]:
        assert features[name].dtype == object, name


def test_staging_cleaned_the_dirt(features) -> None:
    assert set(features["country"]) <= {"DE", "FR", "NL", "ES", "IT", "PL"}
    assert "unknown" in set(features["channel"])
    assert features["channel"].notna().all()


def test_late_sales_are_left_out(built_settings: Settings) -> None:
    extract = load_params(built_settings.params_file).data.extract_date
    raw = pd.read_csv(built_settings.raw_dir / "sales.csv")
    on_time = int((raw["sale_date"] <= extract.isoformat()).sum())
    record = load_data_run_record(built_settings)
    assert on_time < len(raw)
    assert record.dbt["row_counts"]["stg_sales"] == on_time


def test_customers_without_orders_have_nulls_only_where_the_contract_allows(
    features, contract
) -> None:
    no_orders = features[features["n_orders"] == 0]
    assert len(no_orders) > 0
    assert no_orders["avg_amount"].isna().all()
    assert no_orders["days_since_last_order"].isna().all()
    not_nullable = [column.name for column in contract.columns if not column.nullable]
    assert features[not_nullable].notna().all().all()


def test_the_label_is_predictable_from_the_features(features) -> None:
    by_label = features.groupby("label")[["avg_payment_delay_days", "return_rate"]].mean()
    assert (
        by_label.loc["bad", "avg_payment_delay_days"]
        > by_label.loc["good", "avg_payment_delay_days"]
    )
    assert by_label.loc["bad", "return_rate"] > by_label.loc["good", "return_rate"]


def test_the_gate_passes_and_the_record_names_the_data(built_settings, built_project: Path) -> None:
    report = json.loads(
        (built_project / "reports" / "validation" / "latest.json").read_text(encoding="utf-8")
    )
    record = load_data_run_record(built_settings)
    assert report["success"]
    assert record.validation["success"]
    assert set(record.raw_files) == {"data/raw/customers.csv", "data/raw/sales.csv"}
    assert record.dbt["invocation_id"]
    assert record.dbt["tests"].get("pass", 0) > 30
    assert set(record.dbt["row_counts"]) == {"stg_customers", "stg_sales", "customer_features"}


def test_the_gate_names_the_column_and_the_offending_values(features, contract, built_settings):
    broken = features.copy()
    broken.loc[:2, "country"] = "XX"
    broken.loc[5, "return_rate"] = 7.0
    params = load_params(built_settings.params_file).validation
    report = validate_features(broken, contract, params)
    failed = {(outcome.expectation, outcome.column): outcome for outcome in report.failed}
    assert not report.success
    country = failed["expect_column_values_to_be_in_set", "country"]
    assert country.unexpected_count == 3
    assert country.examples[:1] == ["XX"]
    assert "on column 'country'" in country.describe()
    assert failed["expect_column_values_to_be_between", "return_rate"].examples == [7.0]


def test_a_missing_warehouse_says_what_to_run(tmp_path: Path, contract) -> None:
    with pytest.raises(WarehouseError, match="make data"):
        load_feature_table(Settings(project_dir=tmp_path), contract)
