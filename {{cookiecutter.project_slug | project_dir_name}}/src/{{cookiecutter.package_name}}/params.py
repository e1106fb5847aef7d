"""Parameters: what the pipeline does, from ``params.yaml`` (settings, *where*, are in config.py).

:class:`Params` holds data sizes, validation bounds, model and gate thresholds. It lives in
``params.yaml`` so that DVC can track it and ``make exp ARGS="-S ..."`` (``dvc exp run -S``) can
change it for one experiment. Every section refuses unknown keys: a typo fails loudly, naming the
key, before any step starts.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from .config import ConfigError
from .contract import label_text

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

Checked = TypeVar("Checked", bound=BaseModel)


class _Section(BaseModel):
    """A params.yaml section: unknown keys are typos, and typos are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Fraction = Annotated[float, Field(ge=0, le=1)]


def _as_label_text(value: object) -> object:
    """A scalar label as its text; anything else is left for the string check to refuse."""
    return label_text(value) if isinstance(value, str | int | float) else value


LabelText = Annotated[str, BeforeValidator(_as_label_text)]
"""A label value as written in params.yaml (``good``, ``1``, ``true``), compared as its text."""


class DemoSource(_Section):
    """The seeded demo generator (``source: demo``): how much data, from which seed."""

    source: Literal["demo"] = "demo"
    seed: int = 42
    n_customers: Annotated[int, Field(ge=100)] = 5_000
    n_sales: Annotated[int, Field(ge=100)] = 50_000
    extract_date: date = date(2025, 6, 30)
    # Customers the business has not assessed yet: no label, so `make score` scores them.
    unlabelled_share: Annotated[float, Field(ge=0, lt=1)] = 0.1


class FileSource(_Section):
    """Your own tables (``source: files``): in data/raw/, tracked with DVC, declared for dbt.

    ``make adopt`` sets this up; the tables themselves are declared in the dbt sources
    (``transform/models/sources.yml``), so there is nothing else to set here.
    """

    source: Literal["files"]


def _source_of(value: object) -> str:
    """Which data source a ``data:`` section describes (``demo`` when it does not say)."""
    if isinstance(value, dict):
        return str(value.get("source", "demo"))
    return str(getattr(value, "source", "demo"))


DataParams = Annotated[
    Annotated[DemoSource, Tag("demo")] | Annotated[FileSource, Tag("files")],
    Discriminator(
        _source_of,
        custom_error_type="data_source",
        custom_error_message="source must be 'demo' (the generator) or 'files' (see make adopt)",
    ),
]
SOURCES = frozenset({"demo", "files"})


def _key(loc: tuple[int | str, ...]) -> str:
    """The params.yaml key an error is about, as written (pydantic adds the source to the path)."""
    tagged = len(loc) > 1 and loc[0] == "data" and loc[1] in SOURCES
    return ".".join(str(part) for part in (loc[:1] + loc[2:] if tagged else loc))


def demo_source(params: Params, step: str) -> DemoSource:
    """The demo generator's parameters, for a step that only the demo source has.

    Raises:
        ConfigError: naming the step, when the project's data are its own files.
    """
    if isinstance(params.data, DemoSource):
        return params.data
    raise ConfigError(
        f"{step} needs the demo source (data.source: demo in params.yaml): it generates the "
        "demo's tables, and this project's data are its own files"
    )


Bounds = tuple[float, float]


class ValidationParams(_Section):
    """The statistical side of the pre-train gate (the contract supplies types, nulls, values)."""

    min_rows: Annotated[int, Field(ge=1)] = 1_000
    max_rows: Annotated[int, Field(ge=1)] = 10_000_000
    label_share: dict[LabelText, Bounds] = Field(default_factory=dict)
    ranges: dict[str, Bounds] = Field(default_factory=dict)
    max_null_share: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _rows_in_order(self) -> ValidationParams:
        if self.min_rows > self.max_rows:
            raise ValueError(
                f"min_rows ({self.min_rows}) is above max_rows ({self.max_rows}): no table can "
                "pass; lower min_rows or raise max_rows"
            )
        return self


EstimatorName = Literal["logistic_regression", "random_forest", "hist_gradient_boosting"]
ClassWeight = Literal["balanced"] | None
GridValue = int | float | str | bool | None


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
    positive_class: LabelText = "good"
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
    expect: LabelText
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
    psi_moderate: Annotated[float, Field(gt=0)] = 0.05
    p_value: Annotated[float, Field(gt=0, lt=1)] = 0.01
    drift_share: Fraction = 0.25
    moderate_weight: Fraction = 0.5
    prediction_psi_threshold: Annotated[float, Field(gt=0)] = 0.2
    max_missing_increase: Fraction = 0.05
    max_unseen_share: Fraction = 0.01
    max_out_of_bounds_share: Fraction = 0.0
    min_labelled: Annotated[int, Field(ge=1)] = 200
    max_precision_drop: Fraction = 0.05
    max_recall_drop: Fraction = 0.10
    estimate_z: Annotated[float, Field(gt=0)] = 1.96
    demo: DriftDemoParams = DriftDemoParams()


class Params(_Section):
    """Everything in params.yaml, typed. Each pipeline step reads its own section."""

    data: DataParams = DemoSource()
    validation: ValidationParams = ValidationParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    gate: GateParams = GateParams()
    monitor: MonitorParams = MonitorParams()


def load_params(path: Path) -> Params:
    """Read and check params.yaml; a bad key or value fails here, naming it, before any work."""
    if not path.exists():
        raise ConfigError(f"{path}: parameters file not found; run from the project folder")
    return load_yaml_model(path, Params, key=_key)


def load_yaml_model(
    path: Path,
    model: type[Checked],
    key: Callable[[tuple[int | str, ...]], str] = lambda loc: ".".join(map(str, loc)),
) -> Checked:
    """A YAML file read and checked as `model`; each bad key or value is named, with the reason.

    Raises:
        ConfigError: when the file is not YAML, or does not fit `model` (`key` writes each
            problem's location as the file's user would).
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"{key(issue['loc'])}: {issue['msg']}" for issue in error.errors())
        raise ConfigError(f"{path}: {problems}") from error
