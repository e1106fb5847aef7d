"""Request records: their schema, built from the served model's contract, and body parsing.

The request schema is not written by hand: :func:`record_model` builds it (``create_model``) from
the feature contract recorded with the model version being served, so names, types, bounds,
accepted values and required-vs-optional always match that version. The request body is parsed
and validated by :class:`RecordValidator` rather than by FastAPI's body binding, for three
reasons: the schema changes when a new version is loaded; a body may be one record or a list
(or MLflow's formats, or CSV); and every problem can be reported as one precise message per
field (``records[3].country: ...``).
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic_core import PydanticCustomError

from .schema import FieldError, InputError

if TYPE_CHECKING:
    from ..contract import ContractColumn, FeatureContract

MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def _refuse_non_numbers(value: Any) -> Any:
    """Numbers only: pydantic's lax mode would turn ``"3"`` and ``true`` into numbers."""
    if isinstance(value, bool | str):
        raise PydanticCustomError(
            "number_type", "Input should be a number, not {kind}", {"kind": type(value).__name__}
        )
    return value


def _field_type(column: ContractColumn) -> Any:
    """The pydantic type of `column`: its kind, and the bounds and values the contract allows."""
    # The bounds come before the validator in `Annotated`: so they reach the JSON schema as
    # `minimum`/`maximum` (after it, pydantic would emit non-standard `ge`/`le` keys).
    if column.is_integer:  # whole bounds (the contract rounds them inward)
        low, high = column.minimum, column.maximum
        bounds = Field(ge=None if low is None else int(low), le=None if high is None else int(high))
        return Annotated[int, bounds, BeforeValidator(_refuse_non_numbers)]
    if column.is_numeric:
        bounds = Field(ge=column.minimum, le=column.maximum, allow_inf_nan=False)
        return Annotated[float, bounds, BeforeValidator(_refuse_non_numbers)]
    if column.accepted_values:
        return Literal[column.accepted_values]
    return Annotated[str, Field(strict=True, max_length=1000)]


def record_model(contract: FeatureContract) -> type[BaseModel]:
    """The pydantic model of one request record, derived from `contract`.

    Features are required unless the contract lets them be null; the id and the sensitive
    attributes may be given (they are logged with the prediction, never used by the model); the
    label and anything else are refused.
    """
    fields: dict[str, Any] = {}
    for column in contract.columns:
        if column.role == "label":
            continue
        kind = _field_type(column)
        optional = column.role != "feature" or column.nullable
        description = column.description or f"{column.role}, {column.data_type}"
        if optional:
            fields[column.name] = (kind | None, Field(default=None, description=description))
        else:
            fields[column.name] = (kind, Field(description=description))
    model: type[BaseModel] = create_model(
        "Record",
        __config__=ConfigDict(extra="forbid", title="Record"),
        **fields,
    )
    return model


class RecordValidator:
    """Parse and check request bodies against one model version's contract."""

    def __init__(self, contract: FeatureContract) -> None:
        self.contract = contract
        self.model = record_model(contract)
        self._records = TypeAdapter(list[self.model])  # type: ignore[name-defined]
        self.id_column = contract.id_column

    def record_schema(self) -> dict[str, Any]:
        """The JSON schema of one record (for the OpenAPI document)."""
        return self.model.model_json_schema()

    def body_schema(self, max_batch: int) -> dict[str, Any]:
        """``POST /predict``: one record, or a non-empty list of at most `max_batch` records."""
        record = self.record_schema()
        return {
            "anyOf": [
                record,
                {"type": "array", "items": record, "minItems": 1, "maxItems": max_batch},
            ]
        }

    def invocations_schema(self, max_batch: int) -> dict[str, Any]:
        """``POST /invocations``: MLflow's scoring formats, for the same records."""
        record = self.record_schema()
        records = {"type": "array", "items": record, "minItems": 1, "maxItems": max_batch}
        split = {
            "type": "object",
            "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "data": {"type": "array", "items": {"type": "array"}, "minItems": 1},
                "index": {"type": "array"},
            },
            "required": ["columns", "data"],
        }
        return {
            "oneOf": [
                _single_key_object("dataframe_split", split),
                _single_key_object("dataframe_records", records),
                _single_key_object("instances", records),
                _single_key_object("inputs", records),
            ]
        }

    def predict_body(self, payload: Any, max_batch: int) -> list[dict[str, Any]]:
        """The records of a ``POST /predict`` body (one record or a list), checked.

        Raises:
            InputError: naming every bad field (422), or the batch size (413).
        """
        if isinstance(payload, dict):
            return self.check([payload], "records", max_batch)
        if isinstance(payload, list):
            return self.check(payload, "records", max_batch)
        raise _body_error(
            f"expected a JSON object (one record) or a list of records, got {_json_kind(payload)}",
            kind="body_type",
        )

    def invocations_body(self, payload: Any, max_batch: int) -> list[dict[str, Any]]:
        """The records of an MLflow ``POST /invocations`` body, checked.

        Raises:
            InputError: for an unknown format or bad records.
        """
        keys = sorted(payload) if isinstance(payload, dict) else []
        formats = [key for key in keys if key in MLFLOW_FORMATS]
        extra = [key for key in keys if key not in {*MLFLOW_FORMATS, "params"}]
        if len(formats) != 1 or extra:
            raise _body_error(
                f"expected a JSON object with exactly one of {', '.join(MLFLOW_FORMATS)}; "
                f"got {keys or _json_kind(payload)}"
            )
        key = formats[0]
        value = payload[key]
        if key == "dataframe_split":
            return self.check(_split_records(value), key, max_batch)
        if isinstance(value, dict) and key in {"instances", "inputs"}:
            return self.check(_columnar_records(value, key), key, max_batch)
        if not isinstance(value, list):
            raise _body_error(f"{key}: expected an array of records, got {_json_kind(value)}", key)
        return self.check(value, key, max_batch)

    def csv_body(self, body: bytes, max_batch: int) -> list[dict[str, Any]]:
        """The records of a ``text/csv`` body (a header row, then one record per line), checked.

        Cells are text: a number column's cell must parse as a number, an empty cell is a
        missing value, and every other column keeps its text.

        Raises:
            InputError: 400 for text that is not CSV, 422 naming the row and the column.
        """
        try:
            rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
        except (UnicodeDecodeError, csv.Error) as error:
            problem = FieldError(
                field="body", message=f"not CSV text: {error}", type="malformed_csv"
            )
            raise InputError(400, [problem]) from None
        rows = [row for row in rows if row]  # a trailing newline is not a record
        if not rows:
            raise _body_error("expected a header row of column names", "csv")
        header, lines = rows[0], rows[1:]
        numeric = {column.name for column in self.contract.columns if column.is_numeric}
        records: list[Any] = []
        for index, line in enumerate(lines):
            if len(line) != len(header):
                raise _body_error(
                    f"row {index + 1} has {len(line)} values for {len(header)} columns", "csv"
                )
            records.append(
                {
                    name: _csv_cell(cell, name in numeric, f"csv[{index}].{name}")
                    for name, cell in zip(header, line, strict=True)
                }
            )
        return self.check(records, "csv", max_batch)

    def check(self, records: list[Any], where: str, max_batch: int) -> list[dict[str, Any]]:
        """Validate `records` (plain JSON values) into dicts of feature values.

        Raises:
            InputError: 422 naming each bad field, or 413 for more than `max_batch` records.
        """
        if not records:
            raise _body_error("give at least one record", where)
        if len(records) > max_batch:
            raise InputError(
                413,
                [
                    FieldError(
                        field=where,
                        message=f"{len(records)} records exceed the limit of {max_batch} "
                        "per request (SERVING_MAX_BATCH); split the batch",
                        type="too_many_records",
                    )
                ],
            )
        try:
            validated = self._records.validate_python(records)
        except ValidationError as error:
            raise InputError(422, _field_errors(error, where)) from None
        return [record.model_dump() for record in validated]


def _csv_cell(cell: str, numeric: bool, where: str) -> Any:
    """A CSV cell as the JSON value it stands for: a number, None when empty, or the text."""
    text = cell.strip()
    if not text:
        return None
    if not numeric:
        return cell
    try:
        return int(text) if text.lstrip("+-").isdigit() else float(text)
    except ValueError:
        raise InputError(
            422,
            [FieldError(field=where, message=f"{cell!r} is not a number", type="number_type")],
        ) from None


def _single_key_object(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {key: schema},
        "required": [key],
        "additionalProperties": False,
    }


def _split_records(value: Any) -> list[Any]:
    """``{"columns": [...], "data": [[...], ...]}`` as a list of records."""
    if not isinstance(value, dict):
        raise _body_error(f"expected an object, got {_json_kind(value)}", "dataframe_split")
    columns, data = value.get("columns"), value.get("data")
    if not isinstance(columns, list) or not all(isinstance(name, str) for name in columns):
        raise _body_error("columns: expected an array of column names", "dataframe_split")
    if not isinstance(data, list):
        raise _body_error("data: expected an array of rows", "dataframe_split")
    if len(set(columns)) != len(columns):
        raise _body_error("columns: a column name is repeated", "dataframe_split")
    records = []
    for index, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            raise _body_error(
                f"data[{index}]: expected an array of {len(columns)} values (one per column)",
                "dataframe_split",
            )
        records.append(dict(zip(columns, row, strict=True)))
    return records


def _columnar_records(value: dict[str, Any], key: str) -> list[Any]:
    """``{"column": [values...], ...}`` (MLflow's columnar ``instances``) as records."""
    lengths = {len(column) if isinstance(column, list) else -1 for column in value.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise _body_error("columnar input: every column must be an array of equal length", key)
    names = list(value)
    return [dict(zip(names, row, strict=True)) for row in zip(*value.values(), strict=True)]


def _field_errors(error: ValidationError, where: str) -> list[FieldError]:
    problems = []
    for issue in error.errors(include_url=False):
        location = where
        for part in issue["loc"]:
            location += f"[{part}]" if isinstance(part, int) else f".{part}"
        message = issue["msg"]
        if issue["type"] == "extra_forbidden":
            message = "unknown field (not in the model's contract)"
        elif issue["type"] == "missing":
            message = "required by the model's contract"
        problems.append(FieldError(field=location, message=message, type=issue["type"]))
    return problems


def _body_error(message: str, where: str = "body", kind: str = "body_shape") -> InputError:
    return InputError(422, [FieldError(field=where, message=message, type=kind)])


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def parse_json(body: bytes) -> Any:
    """The JSON value of `body`.

    Raises:
        InputError: 400 with the position of the syntax error.
    """
    try:
        return json.loads(body)
    except RecursionError:
        raise InputError(
            400, [FieldError(field="body", message="JSON nested too deeply", type="malformed_json")]
        ) from None
    except UnicodeDecodeError:
        raise InputError(
            400, [FieldError(field="body", message="not UTF-8 text", type="malformed_json")]
        ) from None
    except json.JSONDecodeError as error:
        raise InputError(
            400,
            [
                FieldError(
                    field="body",
                    message=f"malformed JSON: {error.msg} at line {error.lineno} column "
                    f"{error.colno}",
                    type="malformed_json",
                )
            ],
        ) from None
