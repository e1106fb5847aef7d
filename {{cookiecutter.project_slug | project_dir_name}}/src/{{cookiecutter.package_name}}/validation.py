"""Validate: the Great Expectations gate on the feature table, before anything trains on it.

The suite is derived, not hand-written: the feature contract gives the columns, their types,
which may be null, which are unique and which values are allowed; ``params.yaml`` (``validation:``)
adds the statistics: row count bounds, value ranges, null shares and the label balance. The result
names each failed expectation, its column and a few offending values, and is written as JSON.

Great Expectations takes seconds to import: it is imported inside the functions that use it.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import ConfigError
from .data.warehouse import load_feature_table
from .errors import StepError

if TYPE_CHECKING:
    import pandas as pd

    from .config import Settings
    from .contract import FeatureContract
    from .params import ValidationParams

logger = logging.getLogger(__name__)

SUITE_NAME = "feature_table_gate"
_EXAMPLES = 5

# The pandas dtypes `load_feature_table` gives each kind of contract column ("str": Python strings
# in an object column, checked value by value).
_DTYPES = {"id": ["int64"], "numeric": ["float64"], "text": ["str"]}


class ValidationFailedError(StepError):
    """The feature table failed the gate: data that fails validation never trains."""


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict, with enough detail to act on."""

    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None = None
    examples: list[Any] = field(default_factory=list)
    observed: Any = None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """One line: which expectation, on which column, and what was seen."""
        where = f" on column {self.column!r}" if self.column else ""
        detail = []
        if self.unexpected_count:
            detail.append(f"{self.unexpected_count} unexpected value(s)")
        if self.examples:
            detail.append(f"e.g. {self.examples}")
        if self.observed is not None and not self.examples:
            detail.append(f"observed {self.observed!r}")
        expected = {k: v for k, v in self.kwargs.items() if k not in {"column", "batch_id"}}
        return (
            f"{self.expectation}{where} failed: {', '.join(detail) or 'no detail'} "
            f"(expected {expected})"
        )


@dataclass(frozen=True)
class ValidationReport:
    """The gate's verdict on one feature table."""

    success: bool
    suite: str
    rows: int
    evaluated: int
    validated_at: str
    outcomes: list[ExpectationOutcome]

    @property
    def failed(self) -> list[ExpectationOutcome]:
        """The expectations that did not hold."""
        return [outcome for outcome in self.outcomes if not outcome.success]

    def summary(self) -> dict[str, Any]:
        """Counts and failures only: what the data-run record keeps."""
        return {
            "success": self.success,
            "suite": self.suite,
            "rows": self.rows,
            "evaluated": self.evaluated,
            "failed": [outcome.describe() for outcome in self.failed],
            "validated_at": self.validated_at,
        }

    def to_json(self) -> str:
        """The full report as indented JSON (values that JSON cannot hold become strings)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=str) + "\n"


def validation_report_path(settings: Settings) -> Path:
    """Where the last validation result is written."""
    return settings.reports_dir / "validation" / "latest.json"


def read_validation_report(settings: Settings) -> ValidationReport | None:
    """The last validation result, or None when the gate has not run in this checkout."""
    path = validation_report_path(settings)
    if not path.is_file():
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    outcomes = [ExpectationOutcome(**outcome) for outcome in raw.pop("outcomes")]
    return ValidationReport(**raw, outcomes=outcomes)


def share_column(label_column: str, value: str) -> str:
    """The derived indicator column whose mean is the share of rows with label `value`."""
    return f"{label_column}=={value}"


def build_expectations(contract: FeatureContract, params: ValidationParams) -> list[Any]:
    """The suite's expectations: the contract's structure, then the statistical bounds.

    Returns:
        Great Expectations ``Expectation`` objects, in the order they are reported.

    Raises:
        ValueError: when ``params`` names a column or label value the contract does not have.
    """
    import great_expectations.expectations as gxe

    _check_params_against_contract(contract, params)
    # One set of bounds per column: the contract's (non_negative, accepted_range) and the ranges.
    contract = contract.with_ranges(params.ranges)
    shares = [share_column(contract.label_column, value) for value in params.label_share]
    expectations: list[Any] = [
        gxe.ExpectTableColumnsToMatchOrderedList(column_list=contract.column_names + shares),
        gxe.ExpectTableRowCountToBeBetween(min_value=params.min_rows, max_value=params.max_rows),
    ]
    for column in contract.columns:
        # What `load_feature_table` makes of each: a whole-number id, numbers, labels as text.
        if column.role in {"id", "label"}:
            kind = "id" if column.role == "id" and column.is_integer else "text"
        else:
            kind = "numeric" if column.is_numeric else "text"
        expectations.append(
            gxe.ExpectColumnValuesToBeInTypeList(column=column.name, type_list=_DTYPES[kind])
        )
        if not column.nullable:
            expectations.append(gxe.ExpectColumnValuesToNotBeNull(column=column.name))
        elif column.name in params.max_null_share:
            expectations.append(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=column.name, mostly=1.0 - params.max_null_share[column.name]
                )
            )
        if column.unique:
            expectations.append(gxe.ExpectColumnValuesToBeUnique(column=column.name))
        if column.accepted_values is not None:
            expectations.append(
                gxe.ExpectColumnValuesToBeInSet(
                    column=column.name, value_set=list(column.accepted_values)
                )
            )
        if column.minimum is not None or column.maximum is not None:
            expectations.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=column.name, min_value=column.minimum, max_value=column.maximum
                )
            )
    for value, (low, high) in params.label_share.items():
        expectations.append(
            gxe.ExpectColumnMeanToBeBetween(
                column=share_column(contract.label_column, value), min_value=low, max_value=high
            )
        )
    return expectations


def validate_features(
    frame: pd.DataFrame, contract: FeatureContract, params: ValidationParams
) -> ValidationReport:
    """Run the gate on `frame` in an ephemeral (in-memory, offline) Great Expectations context."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        ProgressBarsConfig,
    )

    # Great Expectations logs every step at INFO; its verdict is what we report.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    expectations = build_expectations(contract, params)
    frame = frame.copy()
    for value in params.label_share:
        column = share_column(contract.label_column, value)
        frame[column] = (frame[contract.label_column] == value).astype("float64")

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = (
        context.data_sources.add_pandas("warehouse")
        .add_dataframe_asset(contract.model)
        .add_batch_definition_whole_dataframe("whole_table")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{contract.model}_gate", data=batch, suite=suite)
    )
    result = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    outcomes = [_outcome(item) for item in result.results]
    return ValidationReport(
        success=bool(result.success),
        suite=SUITE_NAME,
        rows=len(frame),
        evaluated=len(outcomes),
        validated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        outcomes=outcomes,
    )


def run_validation(
    settings: Settings, params: ValidationParams, contract: FeatureContract | None = None
) -> ValidationReport:
    """Validate the warehouse's feature table and write the result JSON (pass or fail)."""
    from .contract import load_contract

    contract = contract or load_contract(settings)
    # The gate judges what training will see: the rows whose label is known.
    table = load_feature_table(settings, contract, rows="labelled")
    report = validate_features(table, contract, params)
    path = validation_report_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.to_json(), encoding="utf-8")
    logger.info(
        "Validation %s: %d of %d expectations held on %s rows (%s)",
        "passed" if report.success else "FAILED",
        report.evaluated - len(report.failed),
        report.evaluated,
        f"{report.rows:,}",
        path,
    )
    return report


def _check_params_against_contract(contract: FeatureContract, params: ValidationParams) -> None:
    unknown = sorted((set(params.ranges) | set(params.max_null_share)) - set(contract.column_names))
    if unknown:
        raise ConfigError(f"validation: no such column(s) in the contract: {', '.join(unknown)}")
    labels = set(contract.label_values)
    if labels and not set(params.label_share) <= labels:
        raise ConfigError(
            f"validation.label_share: {sorted(set(params.label_share) - labels)} is not a label "
            f"value ({', '.join(sorted(labels))})"
        )


def _outcome(item: Any) -> ExpectationOutcome:  # noqa: ANN401 (GX's result type)
    config = item.expectation_config
    result = item.result or {}
    examples = list(result.get("partial_unexpected_list") or [])[:_EXAMPLES]
    return ExpectationOutcome(
        expectation=str(config.type),
        column=config.kwargs.get("column"),
        success=bool(item.success),
        unexpected_count=result.get("unexpected_count"),
        examples=[_plain(value) for value in examples],
        observed=_plain(result.get("observed_value")),
        kwargs={k: _plain(v) for k, v in config.kwargs.items() if k != "batch_id"},
    )


def _plain(value: Any) -> Any:  # noqa: ANN401 (any JSON-able value)
    """Numpy scalars and NaN as plain JSON values."""
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
