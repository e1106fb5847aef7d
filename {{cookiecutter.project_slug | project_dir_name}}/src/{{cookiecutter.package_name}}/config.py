"""Settings (where things are, from the environment) and parameters (what to do, from params.yaml).

Two sources, two jobs:

* :class:`Settings` says *where*: paths, URIs, the dbt target, secrets. It comes from environment
  variables (and a local ``.env``), so moving from a laptop to production changes configuration,
  never code. Read it through :func:`get_settings`.
* :class:`Params` says *what*: data sizes, validation bounds, model and gate thresholds. It lives in
  ``params.yaml`` so that DVC can track it and ``dvc exp run -S`` can change it.
"""

from __future__ import annotations

import os
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

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


# Example values that must never reach a shared environment (see the Settings validator).
PLACEHOLDER_SECRETS = frozenset({"changethis", "changeme", "change-me", "secret", "password"})


class ConfigError(ValueError):
    """A setting or parameter that cannot work; the message names the key and the fix."""


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
    # in the project; production sets the tracking server's URL. Artifacts of the runs the project
    # creates go to `mlflow_artifact_root` (a folder in the project, or s3://, gs://...).
    mlflow_tracking_uri: str = ""
    mlflow_artifact_root: str = "mlartifacts"
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
        return uri or f"sqlite:///{info.data['project_dir'] / 'mlflow.db'}"

    @field_validator("mlflow_artifact_root", mode="after")
    @classmethod
    def _anchor_artifact_root(cls, location: str, info: ValidationInfo) -> str:
        """A plain path is a folder in the project; a URI (``s3://...``) is kept as given."""
        if "://" in location:
            return location
        path = Path(location)
        return (path if path.is_absolute() else info.data["project_dir"] / path).as_uri()

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()


class _Section(BaseModel):
    """A params.yaml section: unknown keys are typos, and typos are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(_Section):
    """How much demo data to generate, and from which seed."""

    seed: int = 42
    n_customers: Annotated[int, Field(ge=100)] = 5_000
    n_sales: Annotated[int, Field(ge=100)] = 50_000
    extract_date: date = date(2025, 6, 30)


Bounds = tuple[float, float]


class ValidationParams(_Section):
    """The statistical side of the pre-train gate (the contract supplies types, nulls, values)."""

    min_rows: Annotated[int, Field(ge=1)] = 1_000
    max_rows: Annotated[int, Field(ge=1)] = 10_000_000
    label_share: dict[str, Bounds] = Field(default_factory=lambda: {"bad": (0.05, 0.60)})
    ranges: dict[str, Bounds] = Field(default_factory=dict)
    max_null_share: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)


EstimatorName = Literal["logistic_regression", "random_forest", "hist_gradient_boosting"]
ClassWeight = Literal["balanced"] | None
GridValue = int | float | str | bool | None
Fraction = Annotated[float, Field(ge=0, le=1)]


class LogisticRegressionParams(_Section):
    """Hyper-parameters of scikit-learn's ``LogisticRegression`` (fast, a good baseline)."""

    C: Annotated[float, Field(gt=0)] = 1.0
    max_iter: Annotated[int, Field(ge=10)] = 1_000
    class_weight: ClassWeight = None


class RandomForestParams(_Section):
    """Hyper-parameters of scikit-learn's ``RandomForestClassifier``."""

    n_estimators: Annotated[int, Field(ge=1, le=5_000)] = 200
    max_depth: Annotated[int, Field(ge=1)] | None = None
    min_samples_leaf: Annotated[int, Field(ge=1)] = 1
    max_features: Literal["sqrt", "log2"] | None = "sqrt"
    class_weight: Literal["balanced", "balanced_subsample"] | None = None


class HistGradientBoostingParams(_Section):
    """Hyper-parameters of scikit-learn's ``HistGradientBoostingClassifier``."""

    learning_rate: Annotated[float, Field(gt=0, le=1)] = 0.1
    max_iter: Annotated[int, Field(ge=1, le=10_000)] = 200
    max_leaf_nodes: Annotated[int, Field(ge=2)] = 31
    max_depth: Annotated[int, Field(ge=1)] | None = None
    min_samples_leaf: Annotated[int, Field(ge=1)] = 20
    l2_regularization: Annotated[float, Field(ge=0)] = 0.0
    class_weight: ClassWeight = None


ESTIMATOR_PARAMS: dict[str, type[_Section]] = {
    "logistic_regression": LogisticRegressionParams,
    "random_forest": RandomForestParams,
    "hist_gradient_boosting": HistGradientBoostingParams,
}


class SearchParams(_Section):
    """Optional hyper-parameter search: every combination is cross-validated as a child run."""

    enabled: bool = False
    cv_folds: Annotated[int, Field(ge=2, le=10)] = 3
    # Per estimator: hyper-parameter -> the values to try (the others keep their set value).
    grid: dict[EstimatorName, dict[str, list[GridValue]]] = Field(default_factory=dict)


class TrainParams(_Section):
    """How the model is trained: which estimator, its hyper-parameters, the split and the seed.

    Each estimator has its own section, so ``dvc exp run -S train.estimator=random_forest`` switches
    estimators and ``-S train.random_forest.max_depth=8`` tunes one.
    """

    estimator: EstimatorName = "hist_gradient_boosting"
    positive_class: str = "good"
    test_size: Annotated[float, Field(gt=0.05, lt=0.9)] = 0.25
    seed: int = 42
    logistic_regression: LogisticRegressionParams = LogisticRegressionParams()
    random_forest: RandomForestParams = RandomForestParams()
    hist_gradient_boosting: HistGradientBoostingParams = HistGradientBoostingParams()
    search: SearchParams = SearchParams()

    @model_validator(mode="after")
    def _grid_values_are_valid_hyperparameters(self) -> TrainParams:
        """A grid value that the estimator would refuse is an error now, not mid-search."""
        for name, grid in self.search.grid.items():
            base = self.hyperparameters_of(name)
            for key, values in grid.items():
                if not values:
                    raise ValueError(f"search.grid.{name}.{key}: give at least one value")
                for value in values:
                    try:
                        type(base).model_validate({**base.model_dump(), key: value})
                    except ValidationError as error:
                        raise ValueError(
                            f"search.grid.{name}.{key}: {value!r}: {error.errors()[0]['msg']}"
                        ) from None
        return self

    def hyperparameters_of(self, estimator: str) -> _Section:
        """The hyper-parameter section of `estimator`."""
        section: _Section = getattr(self, estimator)
        return section

    @property
    def hyperparameters(self) -> dict[str, GridValue]:
        """The chosen estimator's hyper-parameters, as keyword arguments."""
        return dict(self.hyperparameters_of(self.estimator).model_dump())


class DirectionalExpectation(_Section):
    """Changing `feature` by `change` must not move the positive-class probability `expect`."""

    feature: str
    change: float
    expect: Literal["not_more_likely", "not_less_likely"]


class MinimumFunctionalityCase(_Section):
    """A hand-made customer (a typical one with `features` set) and the label it must get."""

    name: str
    expect: str
    features: dict[str, GridValue]


class EvaluateParams(_Section):
    """Post-train tests that are not thresholds: behaviour, slices, explanation."""

    permutation_repeats: Annotated[int, Field(ge=1, le=50)] = 5
    # A directional test tolerates this share of rows moving the wrong way by more than 0.01.
    max_violation_rate: Fraction = 0.05
    min_slice_size: Annotated[int, Field(ge=1)] = 30
    directional: tuple[DirectionalExpectation, ...] = ()
    cases: tuple[MinimumFunctionalityCase, ...] = ()


class GateParams(_Section):
    """What a model must reach to become ``champion``: thresholds, fairness bounds, tolerance."""

    min_precision: Fraction = 0.7
    min_roc_auc: Fraction = 0.7
    min_slice_precision: Fraction = 0.5
    max_demographic_parity_difference: Fraction = 0.3
    max_equalized_odds_difference: Fraction = 0.3
    # The challenger may trail the champion's precision by at most this much.
    tolerance: Fraction = 0.01
    # A check with nothing to judge (no sensitive column, no large enough slice) is "not
    # assessed": reported loudly, and refused only when this is true.
    block_not_assessed: bool = False


class DriftDemoParams(_Section):
    """The production batches `make drift-demo` emits (see ``data.generate.generate_batch``)."""

    batches: Annotated[int, Field(ge=1, le=52)] = 4
    customers_per_batch: Annotated[int, Field(ge=100)] = 1_000
    strength: Annotated[float, Field(ge=0, le=3)] = 1.0
    horizon: Annotated[int, Field(ge=1)] = 4  # batches until gradual/incremental drift is full
    label_delay: Annotated[int, Field(ge=0)] = 1  # a batch's labels arrive this many batches later


class MonitorParams(_Section):
    """Drift and performance monitoring (`make monitor`): the window and every threshold."""

    window_rows: Annotated[int, Field(ge=1)] = 5_000
    min_rows: Annotated[int, Field(ge=1)] = 200
    bins: Annotated[int, Field(ge=2, le=100)] = 10
    psi_threshold: Annotated[float, Field(gt=0)] = 0.2
    p_value: Annotated[float, Field(gt=0, lt=1)] = 0.01
    max_missing_increase: Fraction = 0.05
    drift_share: Fraction = 0.25
    prediction_psi_threshold: Annotated[float, Field(gt=0)] = 0.2
    min_labelled: Annotated[int, Field(ge=1)] = 200
    max_precision_drop: Fraction = 0.05
    max_recall_drop: Fraction = 0.10
    demo: DriftDemoParams = DriftDemoParams()


class Params(_Section):
    """Everything in params.yaml, typed. Each pipeline step reads its own section."""

    data: DataParams = DataParams()
    validation: ValidationParams = ValidationParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    gate: GateParams = GateParams()
    monitor: MonitorParams = MonitorParams()


def load_params(path: Path) -> Params:
    """Read and check params.yaml; a bad key or value fails here, naming it, before any work."""
    if not path.exists():
        raise ConfigError(f"{path}: parameters file not found; run from the project folder")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}"
            for issue in error.errors()
        )
        raise ConfigError(f"{path}: {problems}") from error


def disable_telemetry() -> None:
    """Turn off usage reporting in every tool, unless the caller decided otherwise."""
    for name, value in TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)
