"""What a table file holds, observed by DuckDB: each column's type, nulls, range and values.

``make adopt`` reads a team's file through this before it writes anything (see :mod:`.adopt`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..contract import label_text
from .ingest import RawDataError, read_error, table_reader

# A column becomes a categorical feature with accepted values when it has at most this many.
MAX_CATEGORIES = 20
# A name dbt, SQL and Python all carry without quoting.
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# Database types, as DuckDB reports them, and the portable dbt type the contract declares.
DBT_TYPES = {
    "BOOLEAN": "boolean",
    "TINYINT": "integer",
    "SMALLINT": "integer",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "bigint",
    "UTINYINT": "integer",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "bigint",
    "FLOAT": "double precision",
    "DOUBLE": "double precision",
    "DECIMAL": "double precision",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp",
    "VARCHAR": "varchar",
}
NUMERIC = {"integer", "bigint", "double precision"}


@dataclass(frozen=True)
class Column:
    """One column of the file, as observed."""

    name: str
    dbt_type: str
    nulls: int
    distinct: int
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[str, ...] = ()  # the distinct values, when there are at most MAX_CATEGORIES
    counts: tuple[int, ...] = ()  # how many rows hold each of them

    @property
    def numeric(self) -> bool:
        """True for numbers (the model scales them; the others are one-hot encoded)."""
        return self.dbt_type in NUMERIC


@dataclass(frozen=True)
class Profile:
    """What the file holds: its rows and its columns."""

    table: str
    file: Path
    rows: int
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column:
        """The column called `name` (it exists: checked by :func:`check_roles`)."""
        return next(column for column in self.columns if column.name == name)


def profile_file(path: Path) -> Profile:
    """Read `path` (CSV with a header row, or Parquet) and observe each column.

    Raises:
        RawDataError: when the file is missing or cannot be read (with the line, for a CSV).
    """
    import duckdb

    if not path.is_file():
        raise RawDataError(f"{path}: no such file")
    reader = table_reader(path)
    try:
        with duckdb.connect() as connection:
            relation = connection.sql(f"select * from {reader}")  # noqa: S608 (a path)
            names, types = relation.columns, [str(kind) for kind in relation.dtypes]
            rows = connection.execute(f"select count(*) from {reader}").fetchone()  # noqa: S608
            columns = [
                _observe(connection, reader, name, kind)
                for name, kind in zip(names, types, strict=True)
            ]
    except duckdb.Error as error:
        raise read_error(path, error) from error
    stem = re.sub(r"[^a-z0-9_]+", "_", path.stem.lower()).strip("_") or "table"
    table = stem if NAME.match(stem) else f"t_{stem}"
    return Profile(table, path, int(rows[0]) if rows else 0, tuple(columns))


def _observe(connection: Any, reader: str, name: str, kind: str) -> Column:  # noqa: ANN401
    dbt_type = DBT_TYPES.get(kind.partition("(")[0].upper(), "varchar")
    quoted = f'"{name}"'
    numeric = dbt_type in NUMERIC
    bounds = f"min({quoted})::double, max({quoted})::double" if numeric else "null, null"
    nulls, distinct, low, high = connection.execute(
        f"select count(*) - count({quoted}), count(distinct {quoted}), {bounds} "  # noqa: S608
        f"from {reader}"
    ).fetchone()
    found: list[tuple[Any, int]] = []
    if distinct <= MAX_CATEGORIES:
        found = connection.execute(
            f"select {quoted}, count(*) from {reader} where {quoted} is not null "  # noqa: S608
            "group by 1 order by 1"
        ).fetchall()
    values = tuple(str(label_text(value)) for value, _ in found)
    counts = tuple(int(count) for _, count in found)
    return Column(name, dbt_type, int(nulls), int(distinct), low, high, values, counts)
