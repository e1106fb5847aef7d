"""Expectations on the feature table that dbt built from the project's raw data.

Columns, types and values come from the contract and params.yaml, so these hold for any data;
the tests marked `demo` check what the demo's staging models do to its dirty extract.
"""

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.contract import FeatureContract, load_contract
from {{ cookiecutter.package_name }}.data.ingest import raw_tables
from {{ cookiecutter.package_name }}.data.record import load_data_run_record
from {{ cookiecutter.package_name }}.data.warehouse import WarehouseError, load_feature_table
from {{ cookiecutter.package_name }}.params import demo_source, load_params
from {{ cookiecutter.package_name }}.validation import validate_features

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def contract(built_settings: Settings) -> FeatureContract:
    return load_contract(built_settings)


@pytest.fixture(scope="module")
def features(built_settings: Settings, contract: FeatureContract) -> pd.DataFrame:
    return load_feature_table(built_settings, contract)


def test_one_row_per_id_with_the_contract_columns(features, contract, built_settings) -> None:
    assert list(features.columns) == contract.column_names
    assert len(features) == load_data_run_record(built_settings).dbt["row_counts"][contract.model]
    assert features[contract.id_column].is_unique
    assert features[contract.id_column].is_monotonic_increasing


@pytest.mark.demo
def test_one_row_per_demo_customer(features, built_settings) -> None:
    assert len(features) == demo_source(load_params(built_settings.params_file), "").n_customers


def test_training_and_scoring_split_the_rows_by_label(features, contract, built_settings) -> None:
    labelled = load_feature_table(built_settings, contract, rows="labelled")
    unlabelled = load_feature_table(built_settings, contract, rows="unlabelled")
    assert labelled[contract.label_column].notna().all()
    assert unlabelled[contract.label_column].isna().all()
    assert len(labelled) + len(unlabelled) == len(features)
    assert set(labelled[contract.label_column]) <= set(contract.label_values)


def test_the_warehouse_types_are_the_contract_types(built_settings, contract) -> None:
    with duckdb.connect(str(built_settings.warehouse_path), read_only=True) as connection:
        types = dict(
            connection.execute(
                "select column_name, lower(data_type) from information_schema.columns "
                "where table_name = ?",
                [contract.model],
            ).fetchall()
        )
    # DuckDB reports the portable `double precision` of the contract by its own name.
    aliases = {"double precision": "double", "text": "varchar", "boolean": "boolean"}
    assert types == {
        column.name: aliases.get(column.data_type, column.data_type) for column in contract.columns
    }


def test_pandas_dtypes_are_what_models_expect(features, contract) -> None:
    if contract.column(contract.id_column).is_integer:
        assert features[contract.id_column].dtype == "int64"
    for name in contract.numeric_features:
        assert features[name].dtype == "float64", name
    for name in [*contract.categorical_features, contract.label_column]:
        assert features[name].dtype == object, name


@pytest.mark.demo
def test_staging_cleaned_the_dirt(features) -> None:
    assert set(features["country"]) <= {"DE", "FR", "NL", "ES", "IT", "PL"}
    assert "unknown" in set(features["channel"])
    assert features["channel"].notna().all()


@pytest.mark.demo
def test_late_sales_are_left_out(built_settings: Settings) -> None:
    extract = load_params(built_settings.params_file).data.extract_date
    raw = pd.read_csv(built_settings.raw_dir / "sales.csv")
    on_time = int((raw["sale_date"] <= extract.isoformat()).sum())
    record = load_data_run_record(built_settings)
    assert on_time < len(raw)
    assert record.dbt["row_counts"]["stg_sales"] == on_time


def test_nulls_only_where_the_contract_allows(features, contract) -> None:
    not_nullable = [column.name for column in contract.columns if not column.nullable]
    assert features[not_nullable].notna().all().all()


@pytest.mark.demo
def test_customers_without_orders_have_no_average_amount(features) -> None:
    no_orders = features[features["n_orders"] == 0]
    assert len(no_orders) > 0
    assert no_orders["avg_amount"].isna().all()
    assert no_orders["days_since_last_order"].isna().all()


@pytest.mark.demo
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
    declared = raw_tables(built_settings.transform_dir)
    assert report["success"]
    assert record.validation["success"]
    assert set(record.raw_files) == {f"data/raw/{table.path(Path()).name}" for table in declared}
    assert record.dbt["invocation_id"]
    assert record.dbt["tests"].get("pass", 0) > 0
    assert load_contract(built_settings).model in record.dbt["row_counts"]


@pytest.mark.demo
def test_the_demo_run_builds_and_tests_every_model(built_settings) -> None:
    record = load_data_run_record(built_settings)
    assert record.dbt["tests"].get("pass", 0) > 30
    assert set(record.dbt["row_counts"]) == {"stg_customers", "stg_sales", "customer_features"}


def test_the_gate_names_the_column_and_the_offending_values(features, contract, built_settings):
    params = load_params(built_settings.params_file).validation
    # A column with a set of accepted values (the label always has one), and a numeric range.
    in_set = next(c.name for c in contract.columns if c.accepted_values and c.role != "id")
    numeric, (_, maximum) = next(iter(params.ranges.items()))
    broken = features.copy()
    broken[in_set] = broken[in_set].astype(object)
    broken.loc[:2, in_set] = "XX"
    broken[numeric] = broken[numeric].astype("float64")
    broken.loc[5, numeric] = maximum + 7.0
    report = validate_features(broken, contract, params)
    failed = {(outcome.expectation, outcome.column): outcome for outcome in report.failed}
    assert not report.success
    refused = failed["expect_column_values_to_be_in_set", in_set]
    assert refused.unexpected_count == 3
    assert refused.examples[:1] == ["XX"]
    assert f"on column '{in_set}'" in refused.describe()
    assert failed["expect_column_values_to_be_between", numeric].examples == [maximum + 7.0]


def test_a_missing_warehouse_says_what_to_run(tmp_path: Path, contract) -> None:
    with pytest.raises(WarehouseError, match="make data"):
        load_feature_table(Settings(project_dir=tmp_path), contract)
