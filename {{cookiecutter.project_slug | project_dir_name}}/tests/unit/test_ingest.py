from pathlib import Path

import duckdb
import pytest

from {{ cookiecutter.package_name }}.data.ingest import (
    RawColumn,
    RawDataError,
    RawTable,
    check_raw_file,
    load_raw_tables,
    raw_tables,
)

PROJECT_DIR = Path(__file__).resolve().parents[2]
DECLARED = {
    "customer_id": "bigint",
    "signup_date": "date",
    "country": "varchar",
    "segment": "varchar",
    "channel": "varchar",
    "age_band": "varchar",
    "label": "varchar",
}


def _customers(file: str = "") -> RawTable:
    columns = tuple(RawColumn(name, data_type) for name, data_type in DECLARED.items())
    return RawTable("customers", columns, file)


@pytest.fixture(scope="module")
def tables() -> dict[str, RawTable]:
    return {"customers": _customers()}


CUSTOMERS = (
    "customer_id,signup_date,country,segment,channel,age_band,label\n"
    "1,2024-01-02,DE,consumer,web,25-34,good\n"
    "2,2023-05-06, fr,corporate,,65+,bad\n"
)


def test_every_declared_raw_table_has_typed_columns() -> None:
    declared = raw_tables(PROJECT_DIR / "transform")
    assert declared
    assert all(table.columns and all(c.data_type for c in table.columns) for table in declared)


@pytest.mark.demo
def test_the_demo_raw_tables_come_from_the_dbt_sources() -> None:
    tables = {table.name: table for table in raw_tables(PROJECT_DIR / "transform")}
    assert set(tables) == {"customers", "sales"}
    assert [column.name for column in tables["sales"].columns][:3] == [
        "sale_id",
        "customer_id",
        "sale_date",
    ]


def _write_parquet(path: Path, select: str) -> None:
    with duckdb.connect() as connection:
        connection.execute(f"copy ({select}) to '{path}' (format parquet)")


def test_a_parquet_file_loads_typed(tmp_path: Path) -> None:
    _write_parquet(
        tmp_path / "customers.parquet",
        "select 7 as customer_id, date '2024-01-02' as signup_date, 'DE' as country, "
        "'consumer' as segment, null as channel, '25-34' as age_band, 1 as label, 'x' as extra",
    )
    with duckdb.connect() as connection:
        counts = load_raw_tables(connection, [_customers("customers.parquet")], tmp_path, "raw")
        row = connection.execute("select customer_id, label from raw.customers").fetchone()
    assert counts == {"customers": 1}
    assert row == (7, "1")


def test_an_unusable_parquet_file_is_refused_by_name(tmp_path: Path) -> None:
    table = _customers("customers.parquet")
    (tmp_path / "customers.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(RawDataError, match=r"customers\.parquet: cannot read it as Parquet"):
        check_raw_file(table, tmp_path)
    _write_parquet(tmp_path / "customers.parquet", "select 1 as customer_id")
    with pytest.raises(RawDataError, match="missing column\\(s\\) signup_date, country"):
        check_raw_file(table, tmp_path)


def test_a_good_file_loads_typed(tmp_path: Path, tables) -> None:
    (tmp_path / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    with duckdb.connect() as connection:
        counts = load_raw_tables(connection, [tables["customers"]], tmp_path, "raw")
        types = dict(
            connection.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'raw' and table_name = 'customers'"
            ).fetchall()
        )
    assert counts == {"customers": 2}
    assert types["customer_id"] == "BIGINT"
    assert types["signup_date"] == "DATE"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "raw table 'customers' not found"),
        ("", "the file is empty"),
        (CUSTOMERS.splitlines()[0] + "\n", "has a header but no rows"),
        (CUSTOMERS.replace("segment,", ""), "missing column\\(s\\) segment"),
    ],
)
def test_unusable_files_are_refused_by_name(tmp_path: Path, tables, content, message) -> None:
    if content is not None:
        (tmp_path / "customers.csv").write_text(content, encoding="utf-8")
    with pytest.raises(RawDataError, match=message):
        check_raw_file(tables["customers"], tmp_path)


def test_a_value_of_the_wrong_type_is_named_with_examples(tmp_path: Path, tables) -> None:
    (tmp_path / "customers.csv").write_text(
        CUSTOMERS.replace("2024-01-02", "last tuesday"), encoding="utf-8"
    )
    with duckdb.connect() as connection, pytest.raises(RawDataError) as refused:
        load_raw_tables(connection, [tables["customers"]], tmp_path, "raw")
    assert "column 'signup_date' holds values that are not date: 'last tuesday'" in str(
        refused.value
    )


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (CUSTOMERS + "3,2024-01-02,DE,consumer,web\n", "line 4: 5 field(s), the header has 7"),
        (CUSTOMERS.replace(" fr,", '"fr,', 1), "line 3: unexpected end of data"),
    ],
)
def test_a_malformed_csv_row_is_refused_with_its_line(
    tmp_path: Path, tables, content: str, line: str
) -> None:
    # Read strictly: never as one text column, nor with a field that swallowed the next ones.
    (tmp_path / "customers.csv").write_text(content, encoding="utf-8")
    with duckdb.connect() as connection, pytest.raises(RawDataError) as refused:
        load_raw_tables(connection, [tables["customers"]], tmp_path, "raw")
    assert f"customers.csv: cannot read it as a CSV table: {line}" in str(refused.value)
