"""Ingest: check the raw files against the dbt sources, and load them into the warehouse.

The dbt sources file (``transform/models/sources.yml``) declares each raw table's columns and
types; it is the one description of the raw data. A file that is missing, empty, lacks a declared
column or holds a value that does not fit a declared type is refused here, with a message that
names the file, the column and a few of the offending values. What the types cannot say (nulls,
duplicates, negative amounts, unknown categories) the sources' dbt tests then check, before any
model is built.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import StepError

if TYPE_CHECKING:
    import duckdb

logger = logging.getLogger(__name__)

RAW_SOURCE = "raw"
"""The dbt source that lists the raw tables."""

_SAMPLE = 5


class RawDataError(StepError, ValueError):
    """A raw file that cannot be loaded; the message names the file, the column and the values."""


@dataclass(frozen=True)
class RawColumn:
    """A declared column of a raw table."""

    name: str
    data_type: str


@dataclass(frozen=True)
class RawTable:
    """A raw table as the dbt sources declare it: ``<raw_dir>/<meta.file>`` (``<name>.csv``)."""

    name: str
    columns: tuple[RawColumn, ...]
    file: str = ""

    def path(self, raw_dir: Path) -> Path:
        """Where the table's file lands: a CSV with a header row, or a Parquet file."""
        return raw_dir / (self.file or f"{self.name}.csv")

    def reader(self, raw_dir: Path) -> str:
        """The DuckDB table function that reads the file (CSV as text: types are checked next)."""
        return table_reader(self.path(raw_dir), "all_varchar = true")


# How every CSV is read: comma-separated with a header row, double quotes, and strictly (a
# malformed row is an error, never a silently different reading of the file).
CSV_OPTIONS = "header = true, delim = ',', quote = '\"', escape = '\"', strict_mode = true"


def table_reader(path: Path, csv_options: str = "") -> str:
    """The DuckDB table function that reads `path`: Parquet, or CSV (:data:`CSV_OPTIONS`)."""
    quoted = _quote(path)
    if path.suffix.lower() == ".parquet":
        return f"read_parquet('{quoted}')"
    return f"read_csv('{quoted}', {', '.join(filter(None, [CSV_OPTIONS, csv_options]))})"


def csv_problem(path: Path) -> str | None:
    """Where a CSV file stops being a table: its first bad line and why (None: it is one)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            header = next(reader, [])
            for row in reader:
                if row and len(row) != len(header):
                    return (
                        f"line {reader.line_num}: {len(row)} field(s), the header has {len(header)}"
                    )
    except csv.Error as error:
        return f"line {reader.line_num}: {error}"
    except UnicodeDecodeError as error:
        return f"not UTF-8 text ({error.reason} at byte {error.start})"
    return None


def read_error(path: Path, error: Exception) -> RawDataError:
    """A refusal of a file DuckDB could not read: the bad line when there is one."""
    where = csv_problem(path) if path.suffix.lower() != ".parquet" else None
    reason = where or str(error).splitlines()[0]
    kind = "Parquet" if path.suffix.lower() == ".parquet" else "a CSV table"
    return RawDataError(f"{path}: cannot read it as {kind}: {reason}")


def raw_tables(transform_dir: Path) -> list[RawTable]:
    """The raw tables declared by source ``raw`` in ``models/sources.yml``."""
    path = transform_dir / "models" / "sources.yml"
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for source in document.get("sources") or []:
        if source.get("name") == RAW_SOURCE:
            return [_raw_table(table, path) for table in source.get("tables") or []]
    raise RawDataError(f"{path}: no source named {RAW_SOURCE!r}")


def check_raw_file(table: RawTable, raw_dir: Path) -> None:
    """Refuse a raw file that is missing, empty, or lacks a declared column.

    Raises:
        RawDataError: naming the file and the problem.
    """
    path = table.path(raw_dir)
    if not path.is_file():
        raise RawDataError(
            f"{path}: raw table {table.name!r} not found; run `make data` (the demo source) or "
            "`make data-pull` (your own files, from the DVC remote)"
        )
    if path.stat().st_size == 0:
        raise RawDataError(f"{path}: the file is empty (expected a header and rows)")
    if path.suffix.lower() == ".parquet":
        import duckdb

        with duckdb.connect() as connection:
            try:
                cursor = connection.execute(f"select * from {table.reader(raw_dir)} limit 1")  # noqa: S608
            except duckdb.Error as error:
                raise read_error(path, error) from error
            header = [column[0] for column in cursor.description or []]
            has_rows = cursor.fetchone() is not None
    else:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            has_rows = next(reader, None) is not None
    missing = [column.name for column in table.columns if column.name not in header]
    if missing:
        raise RawDataError(
            f"{path}: missing column(s) {', '.join(missing)} (the header has {', '.join(header)})"
        )
    if not has_rows:
        raise RawDataError(f"{path}: the file has a header but no rows")


def load_raw_tables(
    connection: duckdb.DuckDBPyConnection, tables: list[RawTable], raw_dir: Path, schema: str
) -> dict[str, int]:
    """Check each raw file, then load it, typed as declared, into `schema` of `connection`.

    Args:
        connection: An open DuckDB connection (the warehouse being built, or an in-memory one).
        tables: The declared raw tables.
        raw_dir: Where the files are.
        schema: The schema to load into (replaced tables, one per raw table).

    Returns:
        Rows loaded, by table name.

    Raises:
        RawDataError: when a file is missing, empty, lacks a column or holds an ill-typed value.
    """
    import duckdb

    connection.execute(f'create schema if not exists "{schema}"')
    counts = {}
    for table in tables:
        check_raw_file(table, raw_dir)
        path = table.path(raw_dir)
        try:
            counts[table.name] = _load_table(connection, table, raw_dir, schema)
        except duckdb.Error as error:  # a malformed row further down than the header
            raise read_error(path, error) from error
        logger.info("Loaded %s rows of %s into %s", f"{counts[table.name]:,}", path.name, schema)
    return counts


def _load_table(
    connection: duckdb.DuckDBPyConnection, table: RawTable, raw_dir: Path, schema: str
) -> int:
    """Check each declared column's values against its type, then load the table typed."""
    text = table.reader(raw_dir)
    for column in table.columns:
        bad = connection.execute(
            f'select distinct "{column.name}" from {text} '  # noqa: S608 (declared names)
            f'where "{column.name}" is not null '
            f'and try_cast("{column.name}" as {column.data_type}) is null '
            f"limit {_SAMPLE}"
        ).fetchall()
        if bad:
            values = ", ".join(repr(row[0]) for row in bad)
            raise RawDataError(
                f"{table.path(raw_dir)}: column {column.name!r} holds values that are not "
                f"{column.data_type}: {values}"
            )
    projection = ", ".join(
        f'cast("{column.name}" as {column.data_type}) as "{column.name}"'
        for column in table.columns
    )
    connection.execute(
        f'create or replace table "{schema}"."{table.name}" as '  # noqa: S608
        f"select {projection} from {text}"
    )
    row = connection.execute(f'select count(*) from "{schema}"."{table.name}"').fetchone()  # noqa: S608
    return int(row[0]) if row else 0


def _raw_table(entry: dict[str, Any], path: Path) -> RawTable:
    name = str(entry["name"])
    columns = []
    for column in entry.get("columns") or []:
        if "data_type" not in column:
            raise RawDataError(
                f"{path}: source table {name!r}, column {column.get('name')!r}: "
                "data_type is required"
            )
        columns.append(RawColumn(str(column["name"]), str(column["data_type"])))
    return RawTable(name, tuple(columns), str((entry.get("meta") or {}).get("file") or ""))


def _quote(path: Path) -> str:
    """A path as the body of a SQL string literal."""
    return str(path).replace("'", "''")
