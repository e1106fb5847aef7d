"""dbt on PostgreSQL (`DBT_TARGET=postgres`) builds the same feature table as on DuckDB."""

import importlib.util
import uuid
from pathlib import Path

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.config import Settings
from {{ cookiecutter.package_name }}.data.build import build_warehouse
from {{ cookiecutter.package_name }}.data.warehouse import load_feature_table
from {{ cookiecutter.package_name }}.params import load_params

pytestmark = pytest.mark.slow


def _postgres_settings(project: Path, schema: str) -> Settings:
    if importlib.util.find_spec("dbt.adapters.postgres") is None:
        pytest.skip("dbt-postgres is not installed (uv sync --extra postgres)")
    import psycopg2  # noqa: PLC0415

    settings = Settings(project_dir=project, dbt_target="postgres", postgres_schema=schema)
    try:
        psycopg2.connect(
            host=settings.postgres_host,
            port=settings.postgres_port,
            user=settings.postgres_user,
            password=settings.postgres_password.get_secret_value(),
            dbname=settings.postgres_db,
            connect_timeout=3,
        ).close()
    except psycopg2.OperationalError as error:
        pytest.skip(f"PostgreSQL unreachable at {settings.postgres_host}: {error}")
    return settings


def test_postgres_builds_the_same_features_as_duckdb(built_project: Path, built_settings) -> None:
    schema = f"test_{uuid.uuid4().hex[:8]}"
    settings = _postgres_settings(built_project, schema)
    import psycopg2  # noqa: PLC0415

    try:
        result = build_warehouse(settings, load_params(settings.params_file))
        assert result.target == "postgres"
        assert result.tests.get("pass", 0) > 0
        on_postgres = load_feature_table(settings)
        on_duckdb = load_feature_table(built_settings)
        pd.testing.assert_frame_equal(on_postgres, on_duckdb, check_exact=False, rtol=1e-9)
    finally:
        connection = psycopg2.connect(
            host=settings.postgres_host,
            port=settings.postgres_port,
            user=settings.postgres_user,
            dbname=settings.postgres_db,
        )
        with connection, connection.cursor() as cursor:
            cursor.execute(f'drop schema if exists "{schema}" cascade')
            cursor.execute(f'drop schema if exists "{schema}_raw" cascade')
        connection.close()
