from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.contract import (
    ContractColumn,
    ContractError,
    FeatureContract,
    contract_from_dbt_yaml,
    find_contract_model,
    label_text,
    load_contract,
)

PROJECT_DIR = Path(__file__).resolve().parents[2]
CONTRACT_FILE, MODEL = find_contract_model(PROJECT_DIR / "transform" / "models")


@pytest.fixture(scope="module")
def contract() -> FeatureContract:
    return load_contract(Settings(project_dir=PROJECT_DIR))


def test_the_projects_contract_is_complete(contract: FeatureContract) -> None:
    assert contract.model == MODEL
    assert contract.feature_columns
    assert len(contract.label_values) >= 2
    assert contract.column(contract.id_column).unique
    assert not contract.column(contract.id_column).nullable
    # Rows whose outcome is not known yet have no label: they are scored, never trained on.
    assert contract.column(contract.label_column).nullable


def test_labels_are_compared_as_text() -> None:
    assert [label_text(value) for value in (1, 1.0, "1", True, "good")] == [
        "1",
        "1",
        "1",
        "true",
        "good",
    ]
    assert label_text(None) is None
    assert label_text(float("nan")) is None


@pytest.mark.demo
def test_the_demo_contract_has_the_documented_roles(contract: FeatureContract) -> None:
    assert contract.model == "customer_features"
    assert contract.id_column == "customer_id"
    assert contract.label_column == "label"
    assert contract.label_values == ("good", "bad")
    assert contract.sensitive_columns == ["age_band"]
    # The demo's own features; a team adds its own beside them (docs/onboarding.md does).
    assert {"country", "segment", "channel"} <= set(contract.categorical_features)
    assert {
        "tenure_days",
        "n_orders",
        "total_amount",
        "avg_amount",
        "max_amount",
        "return_rate",
        "avg_payment_delay_days",
        "days_since_last_order",
        "n_categories",
    } <= set(contract.numeric_features)
    assert set(contract.feature_columns) == {
        *contract.categorical_features,
        *contract.numeric_features,
    }


def test_ids_sensitive_attributes_and_labels_are_never_features(contract: FeatureContract) -> None:
    never = {contract.id_column, contract.label_column, *contract.sensitive_columns}
    assert not never & set(contract.feature_columns)


@pytest.mark.demo
def test_bounds_come_from_the_column_tests_and_the_validation_ranges(
    contract: FeatureContract,
) -> None:
    def bounds(name: str) -> tuple[float | None, float | None]:
        return contract.column(name).minimum, contract.column(name).maximum

    assert bounds("n_orders") == (0, None)
    assert bounds("return_rate") == (0, 1)
    assert contract.column("avg_amount").minimum is None  # no test bounds it
    bounded = contract.with_ranges({"n_orders": (0, 100_000), "return_rate": (-1, 0.5)})
    assert bounded.column("n_orders").maximum == 100_000
    assert (bounded.column("return_rate").minimum, bounded.column("return_rate").maximum) == (
        0,
        0.5,
    )
    assert FeatureContract.from_json(bounded.to_json()) == bounded  # recorded with the model
    with pytest.raises(ContractError, match="needs a numeric column"):
        contract.with_ranges({"country": (0, 1)})
    with pytest.raises(ContractError, match="no such column"):
        contract.with_ranges({"colour": (0, 1)})
    with pytest.raises(ContractError, match="no value allowed"):
        contract.with_ranges({"return_rate": (2, 3)})


@pytest.mark.demo
def test_nullability_and_uniqueness_come_from_constraints(contract: FeatureContract) -> None:
    nullable = {column.name for column in contract.columns if column.nullable}
    assert nullable == {"avg_amount", "days_since_last_order", "label"}
    assert contract.column("customer_id").unique
    assert contract.column("channel").accepted_values == (
        "web",
        "store",
        "partner",
        "phone",
        "unknown",
    )
    with pytest.raises(KeyError, match="no column"):
        contract.column("nope")


def test_the_contract_survives_a_json_round_trip(contract: FeatureContract) -> None:
    assert FeatureContract.from_json(contract.to_json()) == contract


def _write_variant(tmp_path: Path, change) -> Path:
    document = yaml.safe_load(CONTRACT_FILE.read_text(encoding="utf-8"))
    change(next(model for model in document["models"] if model["name"] == MODEL))
    path = tmp_path / "features.yml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _feature(model: dict) -> dict:
    """The first feature column of the model's properties."""
    return next(column for column in model["columns"] if column["meta"]["role"] == "feature")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["config"].pop("contract"), "contract.enforced"),
        (lambda m: _feature(m)["meta"].pop("role"), "meta.role is required"),
        (lambda m: _feature(m).pop("data_type"), "data_type is required"),
        (
            lambda m: _feature(m)["meta"].update(role="label"),
            "exactly one column with meta.role 'label'",
        ),
        (lambda m: _feature(m)["meta"].update(role="target"), "column '.+': Input should be"),
    ],
)
def test_a_broken_contract_is_refused_with_where(tmp_path: Path, change, message: str) -> None:
    with pytest.raises(ContractError, match=message):
        contract_from_dbt_yaml(_write_variant(tmp_path, change), MODEL)


def test_a_missing_model_is_named() -> None:
    with pytest.raises(ContractError, match="no model named 'other'"):
        contract_from_dbt_yaml(CONTRACT_FILE, model="other")


def test_the_contract_is_the_one_model_with_roles(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="found none"):
        find_contract_model(tmp_path)
    for copy in ("a.yml", "b.yml"):
        (tmp_path / copy).write_text(CONTRACT_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ContractError, match=r"expected one dbt model whose columns"):
        find_contract_model(tmp_path)


def test_a_whole_number_columns_bounds_are_rounded_inward() -> None:
    contract = FeatureContract(
        model="m",
        columns=(
            ContractColumn(name="id", data_type="bigint", role="id"),
            ContractColumn(name="visits", data_type="integer", role="feature"),
            ContractColumn(name="label", data_type="varchar", role="label"),
        ),
    )
    bounded = contract.with_ranges({"visits": (0.5, 179.5)}).column("visits")
    assert (bounded.minimum, bounded.maximum) == (1, 179)
    with pytest.raises(ContractError, match="no value allowed"):
        contract.with_ranges({"visits": (0.2, 0.8)})
