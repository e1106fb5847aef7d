"""Request records: their schema, built from the served model's contract, and body parsing.

The request schema is not written by hand: :func:`record_model` builds it (``create_model``) from
the feature contract recorded with the model version being served, so names, types, bounds,
accepted values and required-vs-optional always match that version. The request body is parsed
and validated by :class:`RecordValidator` rather than by FastAPI's body binding, for three
reasons: the schema changes when a new version is loaded; a body may be one record or a list
(or MLflow's formats, or CSV); and every problem can be reported as one precise message per
field (``records[3].country: ...``).

Both are built from one table, :func:`field_rules` (what the contract allows in each field). A
body of many records is first checked column by column (:class:`ColumnChecker`: each field across
all records at once; at 100 records two to three times cheaper than record by record, and no
model instance per record); whatever it does not accept goes to the pydantic model, which
accepts it or names every problem. So the model is the one judge of a refusal and the one source
of the JSON schema, and the column checker only makes the common case, a valid batch, cheap.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from itertools import chain
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
MAX_TEXT_LENGTH = 1000  # characters in a free-text field
# The column checker leaves numbers beyond this magnitude to pydantic: up to it, every int is an
# exact float and every whole float an int, so the two validators cannot round differently.
EXACT_NUMBERS = 2**53
# Below this many records the pydantic model alone is cheaper (measured: one record 5 us with
# pydantic, 15 us column by column; even at about 8 records; 100 records 0.47 ms against 0.16 ms).
COLUMN_WISE_FROM = 8

FieldKind = Literal["integer", "number", "category", "text"]


@dataclass(frozen=True)
class FieldRule:
    """What the contract allows in one request field; both validators are built from these."""

    name: str
    kind: FieldKind
    required: bool
    minimum: float | None = None  # inclusive; whole numbers for an integer field
    maximum: float | None = None
    accepted: tuple[str, ...] = ()  # a category's values (empty: free text)
    description: str = ""


def field_rules(contract: FeatureContract) -> tuple[FieldRule, ...]:
    """The request fields of `contract`, in contract order.

    Features are required unless the contract lets them be null; the id and the sensitive
    attributes may be given (they are logged with the prediction, never used by the model); the
    label is not a field (so it is refused, like anything else the contract does not name).
    """
    return tuple(
        FieldRule(
            name=column.name,
            kind=_kind(column),
            required=column.role == "feature" and not column.nullable,
            # whole bounds for whole numbers (the contract rounds them inward)
            minimum=_bound(column.minimum, column.is_integer),
            maximum=_bound(column.maximum, column.is_integer),
            accepted=() if column.is_numeric else column.accepted_values or (),
            description=column.description or f"{column.role}, {column.data_type}",
        )
        for column in contract.columns
        if column.role != "label"
    )


def _kind(column: ContractColumn) -> FieldKind:
    if column.is_integer:
        return "integer"
    if column.is_numeric:
        return "number"
    return "category" if column.accepted_values else "text"


def _bound(value: float | None, integer: bool) -> float | None:
    if value is None:
        return None
    return int(value) if integer else value


def _refuse_non_numbers(value: Any) -> Any:
    """Numbers only: pydantic's lax mode would turn ``"3"`` and ``true`` into numbers."""
    if isinstance(value, bool | str):
        raise PydanticCustomError(
            "number_type", "Input should be a number, not {kind}", {"kind": type(value).__name__}
        )
    return value


def _field_type(rule: FieldRule) -> Any:
    """The pydantic type of `rule`'s field: its kind, and the bounds and values it allows."""
    # The bounds come before the validator in `Annotated`: so they reach the JSON schema as
    # `minimum`/`maximum` (after it, pydantic would emit non-standard `ge`/`le` keys).
    if rule.kind == "integer":
        bounds = Field(ge=rule.minimum, le=rule.maximum)
        return Annotated[int, bounds, BeforeValidator(_refuse_non_numbers)]
    if rule.kind == "number":
        bounds = Field(ge=rule.minimum, le=rule.maximum, allow_inf_nan=False)
        return Annotated[float, bounds, BeforeValidator(_refuse_non_numbers)]
    if rule.kind == "category":
        return Literal[rule.accepted]
    return Annotated[str, Field(strict=True, max_length=MAX_TEXT_LENGTH)]


def record_model(contract: FeatureContract) -> type[BaseModel]:
    """The pydantic model of one request record, derived from `contract` (:func:`field_rules`).

    Optional fields default to None; fields the contract does not name are refused.
    """
    fields: dict[str, Any] = {}
    for rule in field_rules(contract):
        kind = _field_type(rule)
        if rule.required:
            fields[rule.name] = (kind, Field(description=rule.description))
        else:
            fields[rule.name] = (kind | None, Field(default=None, description=rule.description))
    model: type[BaseModel] = create_model(
        "Record",
        __config__=ConfigDict(extra="forbid", title="Record"),
        **fields,
    )
    return model


class _Missing:
    """The value of a field a record does not give (a type of its own: one ``set`` finds it)."""


_MISSING = _Missing()
_ABSENT = frozenset({_Missing, type(None)})
_NUMBERS = frozenset({int, float})


class ColumnChecker:
    """Accepts valid request records column by column, with the values the record model gives.

    Each field is checked across all records at once with set and ``min``/``max`` operations,
    under the same :class:`FieldRule` as the pydantic model: numbers only (no booleans, no
    text), whole numbers for integer fields, finite numbers, bounds, accepted values, required
    fields given and not null, no unknown field. Integer fields give ints (``3.0`` becomes
    ``3``), number fields floats, absent optional fields None, as ``model_dump`` does.

    It never refuses: :meth:`records` and :meth:`table` return None for a body they do not
    accept (a bad value, or an unusual one such as a number beyond ``EXACT_NUMBERS``), and the
    pydantic model then decides and names the problems.
    """

    def __init__(self, rules: tuple[FieldRule, ...]) -> None:
        self.rules = rules
        self.names = tuple(rule.name for rule in rules)
        self.allowed = frozenset(self.names)
        self.accepted = {rule.name: frozenset(rule.accepted) for rule in rules}

    def records(self, records: list[Any]) -> list[dict[str, Any]] | None:
        """`records` (JSON objects) checked, or None when the pydantic model must decide."""
        if not all(type(record) is dict for record in records):
            return None
        if not self.allowed.issuperset(chain.from_iterable(records)):
            return None
        return self._rows(
            [[record.get(name, _MISSING) for record in records] for name in self.names]
        )

    def table(self, names: list[str], rows: list[list[Any]]) -> list[dict[str, Any]] | None:
        """Rows of values for the fields `names` (``dataframe_split``), checked, or None."""
        if not self.allowed.issuperset(names):
            return None
        given = dict(zip(names, zip(*rows, strict=True), strict=True))
        missing = (_MISSING,) * len(rows)
        return self._rows([given.get(name, missing) for name in self.names])

    def _rows(self, columns: list[Any]) -> list[dict[str, Any]] | None:
        """Records of the checked `columns` (one per field, in field order), or None."""
        checked = []
        for rule, values in zip(self.rules, columns, strict=True):
            column = self._column(rule, values)
            if column is None:
                return None
            checked.append(column)
        # (strict=False: the lengths match by construction, and this runs for every record)
        return [dict(zip(self.names, row, strict=False)) for row in zip(*checked, strict=False)]

    def _column(self, rule: FieldRule, values: Any) -> Any:
        """One field's values across the records, as the model gives them; None: not accepted."""
        kinds = set(map(type, values))
        if kinds.isdisjoint(_ABSENT):
            return self._present(rule, values, kinds)
        if rule.required:
            return None
        kinds -= _ABSENT
        if not kinds:
            return [None] * len(values)
        values = [None if value is _MISSING else value for value in values]
        present = [value for value in values if value is not None]
        checked = self._present(rule, present, kinds)
        if checked is None:
            return None
        given = iter(checked)
        return [None if value is None else next(given) for value in values]

    def _present(self, rule: FieldRule, values: Any, kinds: set[type]) -> Any:
        """`values` (none of them missing) as the model gives them, or None if not accepted."""
        if rule.kind == "category":
            accepted = kinds == {str} and self.accepted[rule.name].issuperset(values)
            return values if accepted else None
        if rule.kind == "text":
            accepted = kinds == {str} and max(map(len, values)) <= MAX_TEXT_LENGTH
            return values if accepted else None
        return _numbers(rule, values, kinds)


def _numbers(rule: FieldRule, values: Any, kinds: set[type]) -> Any:
    """`values` of a number field, as ints or floats as the model gives them, or None."""
    if not kinds <= _NUMBERS:  # booleans, text, arrays, objects
        return None
    if float in kinds:  # (math.isfinite overflows on a huge int: only floats can be infinite)
        floats = values if int not in kinds else [v for v in values if type(v) is float]
        if not all(map(math.isfinite, floats)):
            return None
    low, high = min(values), max(values)  # exact, even between ints and floats
    if (
        low < -EXACT_NUMBERS
        or high > EXACT_NUMBERS
        or (rule.minimum is not None and low < rule.minimum)
        or (rule.maximum is not None and high > rule.maximum)
    ):
        return None
    if rule.kind == "number":
        return values if int not in kinds else [float(value) for value in values]
    if float not in kinds:
        return values
    whole = [int(value) for value in values]
    return whole if whole == list(values) else None  # 3.0 is 3; 3.5 is no integer


class RecordValidator:
    """Parse and check request bodies against one model version's contract."""

    def __init__(self, contract: FeatureContract) -> None:
        self.contract = contract
        self.model = record_model(contract)
        self._records = TypeAdapter(list[self.model])  # type: ignore[name-defined]
        self.columns = ColumnChecker(field_rules(contract))
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
            names, rows = _split_table(value)
            self._check_size(len(rows), key, max_batch)
            accepted = self.columns.table(names, rows) if len(rows) >= COLUMN_WISE_FROM else None
            if accepted is not None:
                return accepted
            return self._validate([dict(zip(names, row, strict=True)) for row in rows], key)
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
        self._check_size(len(records), where, max_batch)
        accepted = self.columns.records(records) if len(records) >= COLUMN_WISE_FROM else None
        if accepted is not None:
            return accepted
        return self._validate(records, where)

    def _validate(self, records: list[Any], where: str) -> list[dict[str, Any]]:
        """Record by record with the pydantic model: what it accepts, or every problem named.

        Raises:
            InputError: 422 naming each bad field.
        """
        try:
            validated = self._records.validate_python(records)
        except ValidationError as error:
            raise InputError(422, _field_errors(error, where)) from None
        return [record.model_dump() for record in validated]

    @staticmethod
    def _check_size(count: int, where: str, max_batch: int) -> None:
        """Refuse no records (422) or more than `max_batch` of them (413)."""
        if not count:
            raise _body_error("give at least one record", where)
        if count > max_batch:
            raise InputError(
                413,
                [
                    FieldError(
                        field=where,
                        message=f"{count} records exceed the limit of {max_batch} "
                        "per request (SERVING_MAX_BATCH); split the batch",
                        type="too_many_records",
                    )
                ],
            )


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


def _split_table(value: Any) -> tuple[list[str], list[list[Any]]]:
    """The column names and rows of ``{"columns": [...], "data": [[...], ...]}``, checked."""
    if not isinstance(value, dict):
        raise _body_error(f"expected an object, got {_json_kind(value)}", "dataframe_split")
    columns, data = value.get("columns"), value.get("data")
    if not isinstance(columns, list) or not all(isinstance(name, str) for name in columns):
        raise _body_error("columns: expected an array of column names", "dataframe_split")
    if not isinstance(data, list):
        raise _body_error("data: expected an array of rows", "dataframe_split")
    if len(set(columns)) != len(columns):
        raise _body_error("columns: a column name is repeated", "dataframe_split")
    width = len(columns)
    for index, row in enumerate(data):
        if not isinstance(row, list) or len(row) != width:
            raise _body_error(
                f"data[{index}]: expected an array of {width} values (one per column)",
                "dataframe_split",
            )
    return columns, data


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
