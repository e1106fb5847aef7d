"""The feature contract: the one source of truth for the model's columns.

The feature table is the dbt model whose columns carry ``meta.role`` (``id``, ``feature``,
``sensitive`` or ``label``) under an enforced contract (names, types, constraints); its name is
the model's own, found, not configured. This module reads that YAML into a typed
:class:`FeatureContract`. Training records it with the model (``to_json``),
together with the value ranges of ``params.yaml`` (``validation.ranges``); validation, serving and
monitoring derive their checks and schemas from it, so a user who brings their own data edits the
dbt model, not Python.

Bounds on numeric columns come from the column's dbt tests (``non_negative``: at least 0;
``accepted_range``: ``min_value`` / ``max_value``) and from ``validation.ranges``; where both
give one, the tighter wins. The label may be text, a whole number or a boolean: everywhere it is
compared as its text (:func:`label_text`: ``1``, not ``1.0``; ``true``, not ``True``), and a row
whose label is empty is one whose outcome is not known yet: scored, never trained on.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from .errors import StepError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .config import Settings

Role = Literal["id", "feature", "sensitive", "label"]


# dbt data types (as written in the contract) that hold numbers; anything else is categorical.
NUMERIC_TYPES = frozenset(
    {
        "bigint",
        "integer",
        "int",
        "smallint",
        "tinyint",
        "hugeint",
        "double",
        "double precision",
        "float",
        "real",
        "numeric",
        "decimal",
    }
)
INTEGER_TYPES = frozenset({"bigint", "integer", "int", "smallint", "tinyint", "hugeint"})

# The prediction log's own columns (see prediction_log), logged around the contract's features
# and sensitive attributes: those cannot take these names.
LOG_LEADING_COLUMNS = (
    "request_id",
    "timestamp",
    "source",
    "model_name",
    "model_version",
    "model_alias",
    "shadow",
    "entity_id",
)
LOG_TRAILING_COLUMNS = ("prediction", "score", "latency_ms", "batch_id")


class ContractError(StepError, ValueError):
    """The dbt YAML does not describe a usable feature contract; the message says where."""


class ContractColumn(BaseModel):
    """One column of the feature table, as the contract declares it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    data_type: str
    role: Role
    nullable: bool = True
    unique: bool = False
    accepted_values: tuple[str, ...] | None = None
    minimum: float | None = None  # numeric columns: the smallest value allowed, inclusive
    maximum: float | None = None  # and the largest
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _whole_bounds_for_whole_numbers(cls, data: Any) -> Any:  # noqa: ANN401 (raw input)
        """A whole-number column's bounds are whole numbers: a fractional one is rounded inward."""
        if not isinstance(data, dict):
            return data
        kind = str(data.get("data_type", "")).lower().split("(", 1)[0].strip()
        if kind not in INTEGER_TYPES:
            return data
        low, high = data.get("minimum"), data.get("maximum")
        return {
            **data,
            "minimum": None if low is None else math.ceil(low),
            "maximum": None if high is None else math.floor(high),
        }

    @property
    def is_numeric(self) -> bool:
        """True when the column holds numbers (its dbt type is numeric)."""
        return self.base_type in NUMERIC_TYPES

    @property
    def is_integer(self) -> bool:
        """True when the column holds whole numbers."""
        return self.base_type in INTEGER_TYPES

    @property
    def base_type(self) -> str:
        """The data type, lower-cased, without precision (``decimal(10,2)`` -> ``decimal``)."""
        return self.data_type.lower().split("(", 1)[0].strip()


class FeatureContract(BaseModel):
    """The feature table's columns with their roles; what a model consumes and produces."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    columns: tuple[ContractColumn, ...]

    @model_validator(mode="after")
    def _one_id_one_label_some_features(self) -> FeatureContract:
        """Refuse a contract that a model could not be trained from."""
        names = [column.name for column in self.columns]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.model}: duplicated column names in {names}")
        for role in ("id", "label"):
            found = [column.name for column in self.columns if column.role == role]
            if len(found) != 1:
                raise ValueError(
                    f"{self.model}: expected exactly one column with meta.role '{role}', "
                    f"found {found or 'none'}"
                )
        if not self.feature_columns:
            raise ValueError(f"{self.model}: no column has meta.role 'feature'")
        taken = set(self.feature_columns + self.sensitive_columns) & {
            *LOG_LEADING_COLUMNS,
            *LOG_TRAILING_COLUMNS,
        }
        if taken:
            raise ValueError(
                f"{self.model}: column(s) {sorted(taken)} have names the prediction log gives its "
                "own columns: rename them (in the dbt model, or with `as` in its SQL)"
            )
        return self

    @property
    def column_names(self) -> list[str]:
        """Every column, in contract order."""
        return [column.name for column in self.columns]

    @property
    def id_column(self) -> str:
        """The row identifier (never a model input)."""
        return self._by_role("id")[0].name

    @property
    def label_column(self) -> str:
        """The target the model learns."""
        return self._by_role("label")[0].name

    @property
    def label_values(self) -> tuple[str, ...]:
        """The label's accepted values, in contract order (empty when not constrained)."""
        return self.column(self.label_column).accepted_values or ()

    @property
    def feature_columns(self) -> list[str]:
        """Model inputs, in contract order."""
        return [column.name for column in self._by_role("feature")]

    @property
    def categorical_features(self) -> list[str]:
        """Model inputs that hold categories."""
        return [column.name for column in self._by_role("feature") if not column.is_numeric]

    @property
    def numeric_features(self) -> list[str]:
        """Model inputs that hold numbers."""
        return [column.name for column in self._by_role("feature") if column.is_numeric]

    @property
    def sensitive_columns(self) -> list[str]:
        """Attributes kept for fairness slices only; never model inputs."""
        return [column.name for column in self._by_role("sensitive")]

    def example_record(self) -> dict[str, object]:
        """A valid request record: each feature's first accepted value, or 3 (1.5) within bounds.

        What a smoke test sends to a deployed service, and what the serving tests start from.
        """
        record: dict[str, object] = {}
        for column in (self.column(name) for name in self.feature_columns):
            if not column.is_numeric:
                record[column.name] = (column.accepted_values or ("a",))[0]
                continue
            value: float = 3 if column.is_integer else 1.5
            if column.minimum is not None:
                value = max(value, column.minimum)
            if column.maximum is not None:
                value = min(value, column.maximum)
            record[column.name] = value
        return record

    def column(self, name: str) -> ContractColumn:
        """The column called `name`.

        Raises:
            KeyError: when the contract has no such column.
        """
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.model}: no column {name!r} in the contract")

    def with_ranges(self, ranges: Mapping[str, tuple[float, float]]) -> FeatureContract:
        """This contract with `ranges` (column -> ``[min, max]``) added to the columns' bounds.

        Where a column already has a bound, the tighter of the two is kept.

        Raises:
            ContractError: when a range names a column that is not in the contract or not
                numeric, or leaves no value allowed.
        """
        columns = []
        for column in self.columns:
            if column.name not in ranges:
                columns.append(column)
                continue
            if not column.is_numeric:
                raise ContractError(
                    f"validation.ranges.{column.name}: a range needs a numeric column, "
                    f"{column.name!r} is {column.data_type}"
                )
            low, high = ranges[column.name]
            bounded = ContractColumn.model_validate(
                {
                    **column.model_dump(),
                    "minimum": low if column.minimum is None else max(low, column.minimum),
                    "maximum": high if column.maximum is None else min(high, column.maximum),
                }
            )
            lowest, highest = bounded.minimum, bounded.maximum  # rounded inward if whole numbers
            if lowest is not None and highest is not None and lowest > highest:
                raise ContractError(
                    f"validation.ranges.{column.name}: [{low}, {high}] and the contract's bounds "
                    f"leave no value allowed"
                )
            columns.append(bounded)
        unknown = sorted(set(ranges) - set(self.column_names))
        if unknown:
            raise ContractError(f"validation.ranges: no such column(s): {', '.join(unknown)}")
        return self.model_copy(update={"columns": tuple(columns)})

    def to_json(self) -> str:
        """The contract as stable, indented JSON (recorded with each model version)."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FeatureContract:
        """Read a contract written by :meth:`to_json` (e.g. from a model's artifacts)."""
        return cls.model_validate_json(text)

    def _by_role(self, role: Role) -> list[ContractColumn]:
        return [column for column in self.columns if column.role == role]


def label_text(value: object) -> str | None:
    """A label (or an accepted value) as the text models learn and answer with; None if missing.

    ``1``, ``1.0`` and ``numpy.int64(1)`` are all ``"1"``; ``True`` is ``"true"``.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def contract_from_dbt_yaml(path: Path, model: str) -> FeatureContract:
    """Read the contract of dbt model `model` from the properties file at `path`.

    Args:
        path: A dbt properties YAML file (``models: [...]``).
        model: The name of the model that carries the contract.

    Returns:
        The typed contract.

    Raises:
        ContractError: when the file, the model or a column's type or role is missing or wrong.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ContractError(f"{path}: cannot read the dbt properties: {error}") from error
    for entry in document.get("models") or []:
        if entry.get("name") == model:
            return _parse_model(entry, path)
    raise ContractError(f"{path}: no model named {model!r}")


def find_contract_model(models_dir: Path) -> tuple[Path, str]:
    """The properties file and the name of the one dbt model whose columns carry ``meta.role``.

    Raises:
        ContractError: when no model, or more than one, does.
    """
    found = [
        (path, str(entry.get("name")))
        for path in sorted(models_dir.rglob("*.yml"))
        for entry in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models") or []
        if any(_meta(column).get("role") for column in entry.get("columns") or [])
    ]
    if len(found) != 1:
        named = [f"{name} ({path})" for path, name in found] or "none"
        raise ContractError(
            f"{models_dir}: expected one dbt model whose columns have meta.role (the feature "
            f"table), found {named}"
        )
    return found[0]


def load_contract(settings: Settings) -> FeatureContract:
    """The feature contract of this project, read from the dbt project under ``transform/``."""
    path, model = find_contract_model(settings.transform_dir / "models")
    return contract_from_dbt_yaml(path, model)


def _parse_model(entry: dict[str, Any], path: Path) -> FeatureContract:
    name = str(entry["name"])
    config = entry.get("config") or {}
    if not (config.get("contract") or {}).get("enforced"):
        raise ContractError(f"{path}: model {name!r} must set config.contract.enforced: true")
    columns = []
    for raw in entry.get("columns") or []:
        column_name = raw.get("name")
        where = f"{path}: model {name!r}, column {column_name!r}"
        meta = _meta(raw)
        if "data_type" not in raw:
            raise ContractError(f"{where}: data_type is required by the contract")
        if "role" not in meta:
            raise ContractError(f"{where}: meta.role is required (id|feature|sensitive|label)")
        tests = _column_tests(raw)
        constraints = {str(item.get("type")) for item in raw.get("constraints") or []}
        minimum, maximum = _bounds(tests)
        try:
            columns.append(
                ContractColumn(
                    name=column_name,
                    data_type=raw["data_type"],
                    role=meta["role"],
                    nullable=not ({"not_null", "primary_key"} & (constraints | set(tests))),
                    unique=bool({"unique", "primary_key"} & (constraints | set(tests))),
                    accepted_values=_accepted_values(tests.get("accepted_values")),
                    minimum=minimum,
                    maximum=maximum,
                    description=str(raw.get("description") or "").strip(),
                )
            )
        except ValidationError as error:
            raise ContractError(f"{where}: {error.errors()[0]['msg']}") from error
    try:
        return FeatureContract(model=name, columns=tuple(columns))
    except ValidationError as error:
        raise ContractError(f"{path}: {error.errors()[0]['msg']}") from error


def _meta(column: dict[str, Any]) -> dict[str, Any]:
    """A column's ``meta`` (dbt accepts it beside the column or under ``config``)."""
    meta: dict[str, Any] = column.get("meta") or (column.get("config") or {}).get("meta") or {}
    return meta


def _column_tests(column: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A column's generic tests by name, with their arguments (either dbt spelling)."""
    tests: dict[str, dict[str, Any]] = {}
    for test in (column.get("data_tests") or []) + (column.get("tests") or []):
        if isinstance(test, str):
            tests[test] = {}
        else:
            for test_name, config in test.items():
                body = config or {}
                tests[test_name] = {**body, **(body.get("arguments") or {})}
    return tests


def _bounds(tests: dict[str, dict[str, Any]]) -> tuple[float | None, float | None]:
    """A column's ``[minimum, maximum]`` from its ``non_negative`` and ``accepted_range`` tests."""
    minimum: float | None = 0.0 if "non_negative" in tests else None
    maximum: float | None = None
    accepted = tests.get("accepted_range")
    if accepted is not None:
        if accepted.get("min_value") is not None:
            low = float(accepted["min_value"])
            minimum = low if minimum is None else max(minimum, low)
        if accepted.get("max_value") is not None:
            maximum = float(accepted["max_value"])
    return minimum, maximum


def _accepted_values(test: dict[str, Any] | None) -> tuple[str, ...] | None:
    if test is None:
        return None
    return tuple(str(label_text(value)) for value in test.get("values") or [])
