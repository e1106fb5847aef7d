"""Read the feature table from the warehouse that dbt built (DuckDB by default, or PostgreSQL)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from ..contract import FeatureContract, label_text, load_contract
from ..errors import StepError

if TYPE_CHECKING:
    from ..config import Settings

logger = logging.getLogger(__name__)


class WarehouseError(StepError):
    """The warehouse (or the feature table in it) is not there; the message says what to run."""


Rows = Literal["all", "labelled", "unlabelled"]


def load_feature_table(
    settings: Settings, contract: FeatureContract | None = None, rows: Rows = "all"
) -> pd.DataFrame:
    """The feature table, one row per id, ordered by id, with the contract's columns.

    Numeric columns come back as ``float64`` (``NaN`` where the contract allows null), a whole
    number id as ``int64``, text as Python strings in ``object`` columns (``None`` for null), the
    label as its text (:func:`~..contract.label_text`): the shapes scikit-learn expects, the same
    with pandas 2 and 3.

    Args:
        settings: Where the warehouse is (``DBT_TARGET`` picks DuckDB or PostgreSQL).
        contract: The feature contract; read from the dbt project when not given.
        rows: ``labelled`` rows (what training and validation see), ``unlabelled`` ones (whose
            outcome is not known yet: what nightly scoring scores), or ``all``.

    Returns:
        The feature table.

    Raises:
        WarehouseError: when the warehouse or the table does not exist yet (run ``make data``).
    """
    contract = contract or load_contract(settings)
    columns = ", ".join(f'"{name}"' for name in contract.column_names)
    label = f'"{contract.label_column}"'
    where = {"all": "", "labelled": f"where {label} is not null"}.get(
        rows, f"where {label} is null"
    )
    if settings.dbt_target == "postgres":
        frame = _read_postgres(settings, contract, columns, where)
    else:
        frame = _read_duckdb(settings, contract, columns, where)
    logger.debug("Read %d rows of %s from %s", len(frame), contract.model, settings.dbt_target)
    return conform_to_contract(frame, contract)


def conform_to_contract(frame: pd.DataFrame, contract: FeatureContract) -> pd.DataFrame:
    """Give each column the pandas dtype its contract type implies (see `load_feature_table`)."""
    frame = frame[contract.column_names].copy()
    for column in contract.columns:
        if column.role == "id" and column.is_integer:
            frame[column.name] = frame[column.name].astype("int64")
        elif column.role == "label":
            # None where unknown (a nullable integer label reads as pd.NA, which is not None).
            frame[column.name] = pd.Series(
                [label_text(value) if pd.notna(value) else None for value in frame[column.name]],
                index=frame.index,
                dtype=object,
            )
        elif column.is_numeric:
            frame[column.name] = frame[column.name].astype("float64")
        else:
            values = frame[column.name].astype(object)
            frame[column.name] = values.where(values.notna(), None)
    return frame.reset_index(drop=True)


def _read_duckdb(
    settings: Settings, contract: FeatureContract, columns: str, where: str
) -> pd.DataFrame:
    import duckdb

    path = settings.warehouse_path
    if not path.exists():
        raise WarehouseError(f"{path}: no warehouse yet; run `make data` first")
    with duckdb.connect(str(path), read_only=True) as connection:
        try:
            frame: pd.DataFrame = connection.sql(
                f"select {columns} from main.{contract.model} {where} "  # noqa: S608 (names from the contract)
                f'order by "{contract.id_column}"'
            ).df()
        except duckdb.CatalogException as error:
            raise WarehouseError(
                f"{path}: no table {contract.model}; run `make data` first"
            ) from error
    return frame


def connect_postgres(settings: Settings) -> Any:  # noqa: ANN401 (psycopg2 is an optional extra)
    """A connection to the PostgreSQL warehouse named by the ``POSTGRES_*`` settings."""
    import psycopg2

    return psycopg2.connect(
        host=settings.postgres_host,
        port=settings.postgres_port,
        user=settings.postgres_user,
        password=settings.postgres_password.get_secret_value(),
        dbname=settings.postgres_db,
    )


def _read_postgres(
    settings: Settings, contract: FeatureContract, columns: str, where: str
) -> pd.DataFrame:
    import psycopg2

    connection = connect_postgres(settings)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                f'select {columns} from "{settings.postgres_schema}"."{contract.model}" {where} '  # noqa: S608
                f'order by "{contract.id_column}"'
            )
            rows = cursor.fetchall()
    except psycopg2.errors.UndefinedTable as error:
        raise WarehouseError(
            f"{settings.postgres_schema}.{contract.model}: no such table; run `make data` first"
        ) from error
    finally:
        connection.close()
    return pd.DataFrame(rows, columns=contract.column_names)
