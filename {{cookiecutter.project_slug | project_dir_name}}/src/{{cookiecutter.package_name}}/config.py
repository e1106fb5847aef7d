"""Settings: where things are, from the environment (parameters, *what* to do, are in params.py).

:class:`Settings` says *where*: paths, URIs, the dbt target, secrets. It comes from environment
variables (and a local ``.env``), so moving from a laptop to production changes configuration,
never code. Read it through :func:`get_settings`. :class:`~.params.Params` says *what*: data sizes,
validation bounds, model and gate thresholds, in ``params.yaml`` so that DVC can track it.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import StepError

Environment = Literal["local", "staging", "prod"]

# The package's import name: the default registered model name (no Jinja in Python).
_PACKAGE = __name__.rpartition(".")[0] or __name__

# Environment variables that keep every tool quiet and offline. The CLI applies them (without
# overriding what the caller set) before any tool is imported; the Makefile exports the same.
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "False",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


# A tracking server (`mlflow server`) rather than a store the process opens itself.
TRACKING_SERVER_SCHEMES = ("http://", "https://")

# Example values that must never reach a shared environment (see the Settings validator).
PLACEHOLDER_SECRETS = frozenset({"changethis", "changeme", "change-me", "secret", "password"})
# The master URLs Spark 4 accepts: local threads, a standalone cluster, Kubernetes, YARN.
SPARK_MASTER_PATTERN = re.compile(r"local(\[(\*|[1-9]\d*)(,[1-9]\d*)?\])?|(spark|k8s)://\S+|yarn")


class ConfigError(StepError, ValueError):
    """A setting or parameter that cannot work; the message names the key and the fix."""

    exit_code = 2


class Settings(BaseSettings):
    """Where things live. Every field can be set by an environment variable of the same name."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    environment: Environment = "local"
    project_dir: Path = Field(default_factory=Path.cwd)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    params_file: Path = Path("params.yaml")
    data_dir: Path = Path("data")
    reports_dir: Path = Path("reports")

    # The dbt project, and the warehouse it builds. dbt gets the warehouse as an absolute path
    # (dbt-duckdb resolves relative paths against its working folder, not the project).
    transform_dir: Path = Path("transform")
    warehouse_path: Path = Path("data/warehouse.duckdb")
    # Batch scoring's output. Not the warehouse: the warehouse is a DVC output of `transform`, and
    # a later step writing into it would make DVC rebuild the data (and retrain) on every run.
    predictions_path: Path = Path("data/predictions/predictions.duckdb")
    # Every prediction the service and batch scoring make (partitioned Parquet; see monitoring).
    prediction_log_dir: Path = Path("data/predictions/log")
    dbt_target: Literal["duckdb", "postgres"] = "duckdb"
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_user: str = "postgres"
    postgres_password: SecretStr = SecretStr("")
    postgres_db: str = "postgres"
    postgres_schema: str = "analytics"

    # Where `dvc push` sends data. Empty means a folder outside the git tree (see `dvc_remote`);
    # production sets s3://..., gs://... or azure://...
    data_remote: str = ""

    # MLflow: tracking store and model registry. Empty means the embedded default, a SQLite file
    # in the project; production sets the tracking server's URL. Artifacts of the experiments the
    # project creates go to `mlflow_artifact_root`: a folder or an s3://, gs://... URI; empty means
    # `mlartifacts/` in the project with the embedded store, and the server's own artifact store
    # with a tracking server (never a path on the laptop that created the experiment).
    mlflow_tracking_uri: str = ""
    mlflow_artifact_root: str = ""
    mlflow_experiment: str = ""
    model_name: str = Field(default_factory=lambda: _PACKAGE)

    # The prediction service (`make serve`, see serving/). `API_KEY` guards its prediction and
    # admin routes (header X-API-Key): optional on `local`, required elsewhere.
    api_key: SecretStr = SecretStr("")
    port: int = Field(default=8000, ge=1, le=65535)
    serving_host: str = "127.0.0.1"
    serving_workers: int = Field(default=1, ge=1, le=32)
    # Empty: `models:/<model_name>@champion` from the registry; or a folder `make bundle` wrote.
    serving_model_uri: str = ""
    serving_max_batch: int = Field(default=1000, ge=1)
    serving_max_body_bytes: int = Field(default=2_000_000, ge=1024)
    serving_poll_seconds: float = Field(default=30.0, ge=0)  # 0: reload only on /admin/reload
    serving_retry_seconds: float = Field(default=5.0, gt=0)  # while the registry is unreachable
    # How long a worker waits for its first model before it accepts connections (then: 503s).
    serving_startup_wait_seconds: float = Field(default=60.0, ge=0)
    serving_shadow: bool = False  # also score with the challenger, log it, never return it
    serving_canary_fraction: Annotated[float, Field(ge=0, le=1)] = 0.0  # share to the challenger
    prediction_log_enabled: bool = True
    # Where the monitor step pushes its figures for Prometheus (http://pushgateway:9091); empty:
    # not pushed (the report files only).
    prometheus_pushgateway_url: str = ""

    # Batch scoring's engine (`make score`): pandas in the step's process, or spark
    # (`make setup EXTRAS=spark`, a Java runtime 17 or 21) on SPARK_MASTER: local[*] is every core
    # of this machine; spark://HOST:PORT, k8s://HOST:PORT or yarn a cluster.
    scoring_engine: Literal["pandas", "spark"] = "pandas"
    spark_master: str = "local[*]"

    @field_validator("project_dir", mode="after")
    @classmethod
    def _resolve_project_dir(cls, path: Path) -> Path:
        return path.resolve()

    @field_validator(
        "params_file",
        "data_dir",
        "reports_dir",
        "transform_dir",
        "warehouse_path",
        "predictions_path",
        "prediction_log_dir",
        mode="after",
    )
    @classmethod
    def _anchor_at_project_dir(cls, path: Path, info: ValidationInfo) -> Path:
        """Relative paths mean "inside the project": tools run from other working folders."""
        return path if path.is_absolute() else info.data["project_dir"] / path

    @field_validator("mlflow_tracking_uri", mode="after")
    @classmethod
    def _default_tracking_uri(cls, uri: str, info: ValidationInfo) -> str:
        return uri or embedded_tracking_uri(info.data["project_dir"])

    @field_validator("mlflow_artifact_root", mode="after")
    @classmethod
    def _anchor_artifact_root(cls, location: str, info: ValidationInfo) -> str:
        """A plain path is a folder in the project; a URI (``s3://...``) is kept as given.

        Empty is ``mlartifacts/`` with a local store, and stays empty (the server's) with a server.
        """
        if "://" in location:
            return location
        if not location:
            if info.data["mlflow_tracking_uri"].startswith(TRACKING_SERVER_SCHEMES):
                return ""
            location = "mlartifacts"
        path = Path(location)
        return (path if path.is_absolute() else info.data["project_dir"] / path).as_uri()

    @field_validator("spark_master", mode="after")
    @classmethod
    def _a_spark_master_url(cls, master: str) -> str:
        """A typo fails here, not as a stack trace from the JVM."""
        if not SPARK_MASTER_PATTERN.fullmatch(master):
            raise ValueError(
                "not a Spark master URL; expected local[*], local[N], spark://HOST:PORT, "
                "k8s://HOST:PORT or yarn"
            )
        return master

    @model_validator(mode="after")
    def _no_placeholder_secrets_outside_local(self) -> Settings:
        """A copied example value (``changethis``) is a leaked secret everywhere but a laptop."""
        if self.environment != "local":
            for name in ("api_key", "postgres_password"):
                value = getattr(self, name).get_secret_value()
                if value.strip().lower() in PLACEHOLDER_SECRETS:
                    raise ValueError(
                        f"{name.upper()}={value!r} is a placeholder; set a real secret for "
                        f"ENVIRONMENT={self.environment}"
                    )
        return self

    @property
    def scoring_engine_name(self) -> str:
        """The scoring engine as a reader wants it named: ``pandas``, or ``spark (<master>)``."""
        if self.scoring_engine == "spark":
            return f"spark ({self.spark_master})"
        return self.scoring_engine

    @property
    def tracking_store_is_embedded(self) -> bool:
        """Whether MLflow is the project's own SQLite file (``MLFLOW_TRACKING_URI`` unset)."""
        return self.mlflow_tracking_uri == embedded_tracking_uri(self.project_dir)

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment the model runs go to (the model name unless set)."""
        return self.mlflow_experiment or self.model_name

    @property
    def raw_dir(self) -> Path:
        """Raw source tables as they land, versioned with DVC."""
        return self.data_dir / "raw"

    @property
    def dvc_remote(self) -> str:
        """The DVC remote: `data_remote`, or ``~/.cache/dvc-remotes/<project folder name>``.

        The default lives outside the git tree on purpose: a remote inside the project would be
        committed, or deleted by a clean checkout, along with the data it is meant to keep.
        """
        if self.data_remote:
            return self.data_remote
        return str(Path.home() / ".cache" / "dvc-remotes" / self.project_dir.name)


def embedded_tracking_uri(project_dir: Path) -> str:
    """The tracking store when none is set: a SQLite file in the project, for one laptop."""
    return f"sqlite:///{project_dir / 'mlflow.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once.

    Raises:
        ConfigError: one line per refused setting, named as its environment variable (a
            secret's value is never shown).
    """
    try:
        return Settings()
    except ValidationError as error:
        raise settings_error(error) from None


def settings_error(error: ValidationError) -> ConfigError:
    """`error` of :class:`Settings` as the variables a user sets, one problem after another."""
    problems = []
    for issue in error.errors():
        reason = issue.get("ctx", {}).get("error", issue["msg"])
        if not issue["loc"]:  # a check across fields: its message names them
            problems.append(str(reason))
            continue
        name = str(issue["loc"][0])
        field = Settings.model_fields.get(name)
        secret = field is not None and field.annotation is SecretStr
        value = "<hidden>" if secret else repr(issue["input"])
        problems.append(f"{name.upper()}={value}: {reason}")
    return ConfigError("; ".join(problems))


def disable_telemetry() -> None:
    """Turn off usage reporting in every tool, unless the caller decided otherwise."""
    for name, value in TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)
