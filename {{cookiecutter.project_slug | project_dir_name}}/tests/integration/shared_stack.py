"""The S3 endpoint of the integration tests, as conftest.py starts it and the tests read it
(pytest puts this folder on the import path; conftest modules are not imported by name)."""

from dataclasses import dataclass

from sqlalchemy.engine import make_url

BUCKET = "mlops"
# moto accepts any credentials; the region is where the bucket is made.
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "integration-tests",
    "AWS_SECRET_ACCESS_KEY": "integration-tests",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Endpoint:
    """An S3-compatible endpoint, its bucket, and the settings a client needs to reach it."""

    url: str
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        return {
            **S3_CREDENTIALS,
            "AWS_ENDPOINT_URL_S3": self.url,
            "MLFLOW_S3_ENDPOINT_URL": self.url,
        }

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under `prefix`."""
        import boto3  # noqa: PLC0415 (the s3 extra: `make test-integration` installs it)

        client = boto3.client("s3", endpoint_url=self.url, **boto_credentials())
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


def boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    }


def warehouse_settings(database_url: str) -> dict[str, str]:
    """The settings that build the warehouse in the database `database_url` names."""
    url = make_url(database_url)
    return {
        "DBT_TARGET": "postgres",
        "POSTGRES_HOST": url.host or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": url.username or "postgres",
        "POSTGRES_PASSWORD": url.password or "",
        "POSTGRES_DB": str(url.database),
    }
