"""Real servers for the integration tests, started here and stopped after the session.

- PostgreSQL is the one `TEST_POSTGRES_URL` names (``make test-integration`` refuses to start
  without it); each session creates fresh databases there (the tracking server's, the dbt
  warehouse's, Dagster's) and drops them at the end.
- An S3 endpoint served by a local process (moto's server mode), with a bucket.
- An MLflow tracking server (``mlflow server``) whose backend store is its database and whose
  artifacts go to that bucket: the shared tracking server and registry of a team.

Nothing here is a stand-in in the process under test: the project's code talks HTTP to the
tracking server, which talks SQL to PostgreSQL and S3's API to the endpoint.
"""

import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from processes import free_port, started, wait_until_ok
from shared_stack import BUCKET, S3Endpoint, boto_credentials
from sqlalchemy.engine import make_url

POSTGRES_URL = "TEST_POSTGRES_URL"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is an integration test (`make test` leaves them out)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)


@contextlib.contextmanager
def fresh_database(purpose: str) -> Iterator[str]:
    """A database of its own on the PostgreSQL `TEST_POSTGRES_URL` names, dropped after."""
    import psycopg2  # noqa: PLC0415 (the postgres extra: `make test-integration` installs it)

    admin_url = os.environ.get(POSTGRES_URL)
    if not admin_url:
        pytest.fail(
            f"{POSTGRES_URL} is not set; e.g. {POSTGRES_URL}=postgresql://postgres@127.0.0.1:5432/postgres"
        )
    name = f"integration_{purpose}_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(admin_url, connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'create database "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'drop database if exists "{name}" with (force)')
        admin.close()


@pytest.fixture(scope="session")
def tracking_database() -> Iterator[str]:
    """The tracking server's backend store."""
    with fresh_database("mlflow") as url:
        yield url


@pytest.fixture(scope="session")
def warehouse_database() -> Iterator[str]:
    """The warehouse dbt builds (``DBT_TARGET=postgres``)."""
    with fresh_database("warehouse") as url:
        yield url


@pytest.fixture(scope="session")
def dagster_database() -> Iterator[str]:
    """Dagster's run, event-log and schedule storage (``DAGSTER_POSTGRES_URL``)."""
    with fresh_database("dagster") as url:
        yield url


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """moto's S3 in server mode on a free port, with the bucket made."""
    import boto3  # noqa: PLC0415 (the s3 extra: `make test-integration` installs it)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("s3") / "s3.log"
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with started(command, dict(os.environ), log) as process:
        wait_until_ok(f"{url}/moto-api/", process, log)
        boto3.client("s3", endpoint_url=url, **boto_credentials()).create_bucket(Bucket=BUCKET)
        yield S3Endpoint(url, BUCKET)


@pytest.fixture(scope="session")
def tracking_server(
    tracking_database: str, s3: S3Endpoint, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`mlflow server` on PostgreSQL, its artifacts in the bucket (served through it)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("mlflow") / "mlflow.log"
    # SQLAlchemy's own name for the driver the `postgres` extra installs (dbt-postgres's).
    backend = make_url(tracking_database).set(drivername="postgresql+psycopg2")
    command = [
        *(sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)),
        *("--backend-store-uri", backend.render_as_string(hide_password=False)),
        *("--workers", "1"),
        *("--artifacts-destination", f"s3://{s3.bucket}/mlflow"),
    ]
    # No job runner: the loop needs none, and it starts a dozen processes.
    env = {**os.environ, **s3.env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with started(command, env, log) as process:
        wait_until_ok(f"{url}/health", process, log, timeout=120)
        yield url
