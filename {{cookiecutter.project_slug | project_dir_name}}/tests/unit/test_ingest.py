from pathlib import Path

import duckdb
import pytest

from {{ cookiecutter.package_name }}.data.ingest import (
    RawDataError,
    RawTable,
    check_raw_file,
    load_raw_tables,
    raw_tables,
)

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tables() -> dict[str, RawTable]:
    return {table.name: table for table in raw_tables(PROJECT_DIR / "transform")}


CUSTOMERS = (
    "customer_id,signup_date,country,segment,channel,age_band,label\n"
    "1,2024-01-02,DE,consumer,web,25-34,good\n"
    "2,2023-05-06, fr,corporate,,65+,bad\n"
)


def test_the_raw_tables_come_from_the_dbt_sources(tables) -> None:
    assert set(tables) == {"customers", "sales"}
    assert [column.name for column in tables["sales"].columns][:3] == [
        "sale_id",
        "customer_id",
        "sale_date",
    ]


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
