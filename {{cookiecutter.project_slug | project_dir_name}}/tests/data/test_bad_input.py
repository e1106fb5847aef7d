"""Bad raw data stops the data run with a message naming the problem, and changes nothing."""

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.data.ingest import RawTable, raw_tables

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


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def _write(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def _keyed_column(project: Path) -> tuple[RawTable, str]:
    """A raw table and its column that the dbt sources test `unique` (the id, usually)."""
    document = yaml.safe_load((project / "transform/models/sources.yml").read_text("utf-8"))
    for table in raw_tables(project / "transform"):
        entry = next(t for s in document["sources"] for t in s["tables"] if t["name"] == table.name)
        for column in entry.get("columns") or []:
            if "unique" in (column.get("data_tests") or column.get("tests") or []):
                return table, column["name"]
    pytest.fail("no raw column is tested unique in transform/models/sources.yml")


def _null(frame: pd.DataFrame, column: str) -> None:
    frame[column] = frame[column].astype(object)
    frame.loc[3, column] = None


def _duplicate(frame: pd.DataFrame, column: str) -> None:
    frame.loc[3, column] = frame.loc[4, column]


@pytest.mark.parametrize(("corrupt", "test"), [(_null, "not_null"), (_duplicate, "unique")])
def test_a_bad_key_stops_the_build(built_copy: Callable[[], Path], corrupt, test: str) -> None:
    project = built_copy()
    table, column = _keyed_column(project)
    path = table.path(project / "data" / "raw")
    frame = _read(path)
    corrupt(frame, column)
    _write(frame, path)
    before = _snapshot(project)

    result = runner.invoke(app, ["transform"])

    assert result.exit_code == 1, result.output
    assert "the warehouse was left as it was" in result.stderr
    assert f"test {test} on raw.{table.name}.{column} fail: 1 failing row" in result.stderr
    assert _snapshot(project) == before
    assert not list((project / "data").glob(".warehouse-build-*"))


def _negative_amount(tables: dict[str, pd.DataFrame]) -> None:
    tables["sales"].loc[7, "amount"] = -12.5


def _unknown_category(tables: dict[str, pd.DataFrame]) -> None:
    tables["sales"].loc[7, "product_category"] = "spaceships"


@pytest.mark.demo
@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_negative_amount, "test non_negative on raw.sales.amount fail: 1 failing row"),
        (_unknown_category, "test accepted_values on raw.sales.product_category fail"),
    ],
)
def test_bad_demo_rows_stop_the_build(
    built_copy: Callable[[], Path], corrupt, message: str
) -> None:
    project = built_copy()
    raw = project / "data" / "raw"
    tables = {name: pd.read_csv(raw / f"{name}.csv") for name in ("customers", "sales")}
    corrupt(tables)
    for name, frame in tables.items():
        frame.to_csv(raw / f"{name}.csv", index=False)
    before = _snapshot(project)

    result = runner.invoke(app, ["transform"])

    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert _snapshot(project) == before


def _empty(path: Path, _table: RawTable) -> str:
    path.write_bytes(b"")
    return f"{path.name}: the file is empty"


def _missing_column(path: Path, table: RawTable) -> str:
    dropped = table.columns[-1].name
    _write(_read(path).drop(columns=[dropped]), path)
    return f"missing column(s) {dropped}"


@pytest.mark.parametrize("spoil", [_empty, _missing_column])
def test_unusable_files_stop_the_build_before_dbt(built_copy: Callable[[], Path], spoil) -> None:
    project = built_copy()
    table = raw_tables(project / "transform")[-1]
    message = spoil(table.path(project / "data" / "raw"), table)
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
    # Only the lowest value fits: the rows above it fail (the ranges span the observed values).
    column, (low, _) = next(
        (name, bounds)
        for name, bounds in params["validation"]["ranges"].items()
        if bounds[0] < bounds[1]
    )
    params["validation"]["ranges"][column] = [low, low]
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    record = (project / "reports" / "data_run" / "latest.json").read_bytes()

    result = runner.invoke(app, ["validate"])

    assert result.exit_code == 1, result.output
    assert f"FAILED expect_column_values_to_be_between on column '{column}'" in result.stderr
    assert "e.g. [" in result.stderr
    assert (project / "reports" / "data_run" / "latest.json").read_bytes() == record
    assert '"success": false' in (project / "reports" / "validation" / "latest.json").read_text(
        encoding="utf-8"
    )
