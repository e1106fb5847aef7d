"""Bad raw data stops the data run with a message naming the problem, and changes nothing."""

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app

runner = CliRunner()

pytestmark = pytest.mark.slow

KEPT = [
    "data/warehouse.duckdb",
    "reports/transform/latest.json",
    "reports/validation/latest.json",
    "reports/data_run/latest.json",
]


def _snapshot(project: Path) -> dict[str, bytes]:
    return {name: (project / name).read_bytes() for name in KEPT}


def _null_customer_id(tables: dict[str, pd.DataFrame]) -> None:
    customers = tables["customers"]
    customers["customer_id"] = customers["customer_id"].astype("Int64")
    customers.loc[3, "customer_id"] = pd.NA


def _duplicated_customer_id(tables: dict[str, pd.DataFrame]) -> None:
    tables["customers"].loc[3, "customer_id"] = tables["customers"].loc[4, "customer_id"]


def _negative_amount(tables: dict[str, pd.DataFrame]) -> None:
    tables["sales"].loc[7, "amount"] = -12.5


def _unknown_category(tables: dict[str, pd.DataFrame]) -> None:
    tables["sales"].loc[7, "product_category"] = "spaceships"


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_null_customer_id, "test not_null on raw.customers.customer_id fail: 1 failing row"),
        (_duplicated_customer_id, "test unique on raw.customers.customer_id fail: 1 failing row"),
        (_negative_amount, "test non_negative on raw.sales.amount fail: 1 failing row"),
        (_unknown_category, "test accepted_values on raw.sales.product_category fail"),
    ],
)
def test_bad_rows_stop_the_build(built_copy: Callable[[], Path], corrupt, message: str) -> None:
    project = built_copy()
    raw = project / "data" / "raw"
    tables = {name: pd.read_csv(raw / f"{name}.csv") for name in ("customers", "sales")}
    corrupt(tables)
    for name, frame in tables.items():
        frame.to_csv(raw / f"{name}.csv", index=False)
    before = _snapshot(project)

    result = runner.invoke(app, ["transform"])

    assert result.exit_code == 1, result.output
    assert "the warehouse was left as it was" in result.stderr
    assert message in result.stderr
    assert _snapshot(project) == before
    assert not list((project / "data").glob(".warehouse-build-*"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "sales.csv: the file is empty"),
        ("sale_id,customer_id,sale_date\n1,1,2025-01-01\n", "missing column(s) amount"),
    ],
)
def test_unusable_files_stop_the_build_before_dbt(
    built_copy: Callable[[], Path], content: str, message: str
) -> None:
    project = built_copy()
    (project / "data" / "raw" / "sales.csv").write_text(content, encoding="utf-8")
    before = _snapshot(project)

    result = runner.invoke(app, ["transform"])

    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert _snapshot(project) == before


def test_a_failed_gate_names_the_expectation_and_keeps_the_record(
    built_copy: Callable[[], Path],
) -> None:
    project = built_copy()
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    params["validation"]["ranges"]["avg_payment_delay_days"] = [0, 2]
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    record = (project / "reports" / "data_run" / "latest.json").read_bytes()

    result = runner.invoke(app, ["validate"])

    assert result.exit_code == 1, result.output
    assert (
        "FAILED expect_column_values_to_be_between on column 'avg_payment_delay_days'"
        in result.stderr
    )
    assert "e.g. [" in result.stderr
    assert (project / "reports" / "data_run" / "latest.json").read_bytes() == record
    assert '"success": false' in (project / "reports" / "validation" / "latest.json").read_text(
        encoding="utf-8"
    )
