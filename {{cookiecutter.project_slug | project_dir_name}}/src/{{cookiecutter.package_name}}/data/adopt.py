"""Adopt a team's own table: the dbt source, staging model and feature mart, written from the file.

``make adopt FILE=... ID=... LABEL=...`` reads the file's header and types (CSV with a header row,
or Parquet), refuses what the loop could not carry, and then, in order:

1. copies the file into ``data/raw/`` and tracks it with DVC (``dvc add``);
2. writes the dbt source (``models/sources.yml``), a staging model and the feature mart
   ``features`` with its enforced contract (``meta.role`` per column), and removes the demo's
   models and singular tests;
3. sets ``data.source: files`` in ``params.yaml``, proposes validation bounds from what it saw,
   picks a positive class, and drops the demo's behavioural cases; takes the demo's generator
   stage out of ``dvc.yaml``.

Everything downstream (validation, training, the API's schema, scoring, monitoring) follows the
contract; what is left for a person to decide is printed at the end, with where to change it.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..contract import ContractColumn, FeatureContract, Role, label_text
from ..errors import StepError
from .ingest import read_error, table_reader
from .versioning import run_dvc

if TYPE_CHECKING:
    from ..config import Settings

logger = logging.getLogger(__name__)

MART = "features"
"""The feature table's name in an adopted project (the contract is found by its roles)."""
# A column becomes a categorical feature with accepted values when it has at most this many.
MAX_CATEGORIES = 20
# A name dbt, SQL and Python all carry without quoting.
NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# Database types, as DuckDB reports them, and the portable dbt type the contract declares.
DBT_TYPES = {
    "BOOLEAN": "boolean",
    "TINYINT": "integer",
    "SMALLINT": "integer",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "bigint",
    "UTINYINT": "integer",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "FLOAT": "double precision",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "VARCHAR": "varchar",
}
NUMERIC = {"integer", "bigint", "double precision"}
# The demo's dbt files, replaced by the adopted table's.
DEMO_FILES = (
    "models/staging/stg_customers.sql",
    "models/staging/stg_sales.sql",
    "models/staging/_staging.yml",
    "models/marts/customer_features.sql",
    "models/marts/customer_features.yml",
    "tests/assert_no_sales_after_extract_date.sql",
    "tests/assert_order_counts_match_staging.sql",
)
DEMO_RAW = ("customers.csv", "sales.csv")


class AdoptError(StepError):
    """The file cannot become the project's data as asked; the message names why and the fix."""


@dataclass(frozen=True)
class Column:
    """One column of the file, as observed."""

    name: str
    dbt_type: str
    nulls: int
    distinct: int
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[str, ...] = ()  # the distinct values, when there are at most MAX_CATEGORIES
    counts: tuple[int, ...] = ()  # how many rows hold each of them

    @property
    def numeric(self) -> bool:
        """True for numbers (the model scales them; the others are one-hot encoded)."""
        return self.dbt_type in NUMERIC


@dataclass(frozen=True)
class Profile:
    """What the file holds: its rows and its columns."""

    table: str
    file: Path
    rows: int
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column:
        """The column called `name` (it exists: checked by :func:`check_roles`)."""
        return next(column for column in self.columns if column.name == name)


@dataclass(frozen=True)
class Adopted:
    """What adopting wrote, and what is left to decide."""

    profile: Profile
    raw_file: Path
    written: list[Path]
    removed: list[Path]
    positive_class: str
    features: list[str]
    sensitive: list[str]


def profile_file(path: Path) -> Profile:
    """Read `path` (CSV with a header row, or Parquet) and observe each column.

    Raises:
        AdoptError: when the file is missing or cannot be read (DuckDB's reason names the line).
    """
    import duckdb

    if not path.is_file():
        raise AdoptError(f"{path}: no such file")
    reader = table_reader(path)
    try:
        with duckdb.connect() as connection:
            relation = connection.sql(f"select * from {reader}")  # noqa: S608 (a path)
            names, types = relation.columns, [str(kind) for kind in relation.dtypes]
            rows = connection.execute(f"select count(*) from {reader}").fetchone()  # noqa: S608
            columns = [
                _observe(connection, reader, name, kind)
                for name, kind in zip(names, types, strict=True)
            ]
    except duckdb.Error as error:
        raise AdoptError(str(read_error(path, error))) from error
    stem = re.sub(r"[^a-z0-9_]+", "_", path.stem.lower()).strip("_") or "table"
    table = stem if NAME.match(stem) else f"t_{stem}"
    return Profile(table, path, int(rows[0]) if rows else 0, tuple(columns))


def check_roles(profile: Profile, id_column: str, label: str, sensitive: list[str]) -> None:
    """Refuse roles the loop could not work with, each with the fix.

    Raises:
        AdoptError: for an unknown column, a column name dbt or Python cannot carry, an id that
            is missing or repeated, a label with fewer than two values, or no feature left.
    """
    names = [column.name for column in profile.columns]
    bad = [name for name in names if not NAME.match(name) or name in _sql_keywords()]
    if bad:
        raise AdoptError(
            f"{profile.file}: column name(s) {bad} cannot be carried by dbt and Python: use "
            "lowercase letters, digits and underscores, starting with a letter, and no SQL "
            "keyword (rename them in the file's header)"
        )
    for role, name in [("ID", id_column), ("LABEL", label)] + [("SENSITIVE", s) for s in sensitive]:
        if name not in names:
            raise AdoptError(
                f"{role}={name!r}: no such column in {profile.file} ({', '.join(names)})"
            )
    key = profile.column(id_column)
    if key.nulls or key.distinct != profile.rows:
        raise AdoptError(
            f"ID={id_column!r} must identify each row: {key.nulls} empty and "
            f"{profile.rows - key.distinct - key.nulls} repeated value(s) in {profile.file}"
        )
    outcomes = profile.column(label).distinct
    if outcomes < 2:  # noqa: PLR2004 (a model needs two outcomes)
        raise AdoptError(
            f"LABEL={label!r} holds {outcomes} value(s): a model needs at least two outcomes to "
            "learn"
        )
    if outcomes > MAX_CATEGORIES:
        raise AdoptError(
            f"LABEL={label!r} holds {outcomes} distinct values: the loop classifies, into at "
            f"most {MAX_CATEGORIES} classes (bin a number into classes in the file first)"
        )
    roles = _roles(profile, id_column, label, sensitive)
    try:  # the contract the loop will read: refused now, before anything is written
        FeatureContract(
            model=MART,
            columns=tuple(
                ContractColumn(name=c.name, data_type=c.dbt_type, role=roles[c.name])
                for c in profile.columns
            ),
        )
    except ValidationError as error:
        raise AdoptError(f"{profile.file}: {error.errors()[0]['msg']}") from error


def _roles(profile: Profile, id_column: str, label: str, sensitive: list[str]) -> dict[str, Role]:
    """Each column's role: the id, the label, the sensitive attributes, and features."""
    named: dict[str, Role] = {id_column: "id", label: "label"}
    named |= dict.fromkeys(sensitive, "sensitive")
    return {column.name: named.get(column.name, "feature") for column in profile.columns}


@functools.cache
def _sql_keywords() -> frozenset[str]:
    """SQL's reserved words (as DuckDB knows them): a column of that name needs quoting."""
    import duckdb

    with duckdb.connect() as connection:
        found = connection.execute(
            "select keyword_name from duckdb_keywords() where keyword_category = 'reserved'"
        ).fetchall()
    return frozenset(str(row[0]).lower() for row in found)


def adopt(
    settings: Settings, file: Path, id_column: str, label: str, sensitive: list[str]
) -> Adopted:
    """Make `file` the project's data: see the module docstring for each step.

    Raises:
        AdoptError: when the file or the roles are refused, DVC is not set up, or another file
            of that name is already in ``data/raw/`` (nothing is overwritten).
    """
    if not (settings.project_dir / ".dvc").is_dir():
        raise AdoptError("DVC is not set up in this project: run `make setup` first")
    profile = profile_file(file)
    check_roles(profile, id_column, label, sensitive)
    raw_file = settings.raw_dir / f"{profile.table}{file.suffix.lower()}"
    if raw_file.resolve() != file.resolve():
        if raw_file.exists():
            raise AdoptError(
                f"{raw_file} already exists: move it away, or adopt it in place "
                f"(FILE={raw_file.relative_to(settings.project_dir)})"
            )
        raw_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, raw_file)
    # Versioned first: if DVC refuses, nothing of the project has changed yet.
    run_dvc(settings, "add", str(raw_file.relative_to(settings.project_dir)))
    models = settings.transform_dir / "models"
    removed = [path for path in _demo_paths(settings) if path.exists()]
    for path in removed:
        path.unlink()
    features = [c.name for c in profile.columns if c.name not in {id_column, label, *sensitive}]
    written = [
        _write(models / "sources.yml", _sources_yml(profile, raw_file.name, id_column)),
        _write(models / "staging" / f"stg_{profile.table}.sql", _staging_sql(profile)),
        _write(models / "marts" / f"{MART}.sql", _mart_sql(profile, id_column)),
        _write(
            models / "marts" / f"{MART}.yml",
            _contract_yml(profile, id_column, label, sensitive),
        ),
    ]
    positive = _minority(profile.column(label))
    _edit_params(settings, profile, label, features, positive)
    _edit_pipeline(settings, raw_file)
    written += [settings.params_file, settings.project_dir / "dvc.yaml"]
    return Adopted(profile, raw_file, written, removed, positive, features, sensitive)


def _observe(connection: Any, reader: str, name: str, kind: str) -> Column:  # noqa: ANN401
    dbt_type = DBT_TYPES.get(kind.partition("(")[0].upper(), "varchar")
    quoted = f'"{name}"'
    numeric = dbt_type in NUMERIC
    bounds = f"min({quoted})::double, max({quoted})::double" if numeric else "null, null"
    nulls, distinct, low, high = connection.execute(
        f"select count(*) - count({quoted}), count(distinct {quoted}), {bounds} "  # noqa: S608
        f"from {reader}"
    ).fetchone()
    found: list[tuple[Any, int]] = []
    if distinct <= MAX_CATEGORIES:
        found = connection.execute(
            f"select {quoted}, count(*) from {reader} where {quoted} is not null "  # noqa: S608
            "group by 1 order by 1"
        ).fetchall()
    values = tuple(str(label_text(value)) for value, _ in found)
    counts = tuple(int(count) for _, count in found)
    return Column(name, dbt_type, int(nulls), int(distinct), low, high, values, counts)


def _demo_paths(settings: Settings) -> list[Path]:
    return [settings.transform_dir / name for name in DEMO_FILES] + [
        settings.raw_dir / name for name in DEMO_RAW
    ]


def _jinja(expression: str) -> str:
    """A dbt Jinja expression (spelt out: this file is itself rendered once by cookiecutter)."""
    return "{" * 2 + f" {expression} " + "}" * 2


def _flow(body: str) -> str:
    """A YAML flow mapping ``{body}``."""
    return "{" + body + "}"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _sources_yml(profile: Profile, file_name: str, id_column: str) -> str:
    lines = [
        "version: 2",
        "",
        f"# The raw table, as `make adopt` found it in {profile.file.name}. The CLI checks the",
        "# file against these columns and types and loads it into `<target schema>_raw`; these",
        "# tests run before any model is built.",
        "sources:",
        "  - name: raw",
        f'    schema: "{_jinja("target.schema")}_raw"',
        "    tables:",
        f"      - name: {profile.table}",
        f"        meta: {_flow(f'file: {file_name}')}",
        "        columns:",
    ]
    for column in profile.columns:
        lines += [f"          - name: {column.name}", f"            data_type: {column.dbt_type}"]
        if column.name == id_column:
            lines.append("            data_tests: [not_null, unique]")
    return "\n".join(lines) + "\n"


def _casts(profile: Profile) -> str:
    """Each column cast to its contract type, one per line of a ``select``."""
    return ",\n".join(
        f"    cast({column.name} as {column.dbt_type}) as {column.name}"
        for column in profile.columns
    )


def _staging_sql(profile: Profile) -> str:
    source = _jinja(f"source('raw', '{profile.table}')")
    return (
        f"-- {profile.table} as it arrived, typed. Clean or derive columns here; the mart picks "
        f"them up.\nselect\n{_casts(profile)}\nfrom {source}\n"
    )


def _mart_sql(profile: Profile, id_column: str) -> str:
    staging = _jinja(f"ref('stg_{profile.table}')")
    return (
        f"-- The feature table: one row per {id_column}, what the model reads and the label it "
        "learns\n-- (empty while the outcome is not known: such rows are scored, never trained "
        f"on).\n-- Columns and types are fixed by the contract in {MART}.yml: change both "
        f"together.\nselect\n{_casts(profile)}\nfrom {staging}\n"
    )


def _contract_yml(profile: Profile, id_column: str, label: str, sensitive: list[str]) -> str:
    lines = [
        "version: 2",
        "",
        "# THE FEATURE CONTRACT, written by `make adopt`. dbt enforces the names and types when it",
        "# builds the table; meta.role says what each column is to the model (id | feature |",
        "# sensitive | label). Training records it with the model; validation, the API and",
        "# monitoring derive from it. Bounds on numbers: validation.ranges in params.yaml (or dbt",
        "# tests non_negative / accepted_range here).",
        "models:",
        f"  - name: {MART}",
        f"    description: One row per {id_column}, its features, and its label when known.",
        "    config:",
        "      contract:",
        "        enforced: true",
        "    columns:",
    ]
    roles = _roles(profile, id_column, label, sensitive)
    for column in profile.columns:
        role = roles[column.name]
        lines += [
            f"      - name: {column.name}",
            f"        data_type: {column.dbt_type}",
            f"        meta: {_flow(f'role: {role}')}",
        ]
        tests = []
        if role == "id" or (column.nulls == 0 and role != "label"):
            lines.append("        constraints: [{type: not_null}]")
            tests += ["not_null", "unique"] if role == "id" else ["not_null"]
        if column.values and role != "id" and (role == "label" or not column.numeric):
            text = column.dbt_type == "varchar"
            values = ", ".join(f'"{value}"' if text else value for value in column.values)
            extra = "" if text else ", quote: false"
            arguments = _flow(f"arguments: {_flow(f'values: [{values}]{extra}')}")
            tests.append(_flow(f"accepted_values: {arguments}"))
        if tests:
            lines.append("        data_tests:")
            lines += [f"          - {test}" for test in tests]
    return "\n".join(lines) + "\n"


def _minority(label: Column) -> str:
    """The label value to treat as positive: the rarest (what a team usually wants to find)."""
    return min(zip(label.values, label.counts, strict=True), key=lambda pair: pair[1])[0]


def _edit_params(
    settings: Settings, profile: Profile, label: str, features: list[str], positive: str
) -> None:
    """``params.yaml``: the source, proposed bounds, the positive class; comments are kept."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    document = yaml.load(settings.params_file.read_text(encoding="utf-8"))
    _replace(document, "data", {"source": "files"})
    validation = document["validation"]
    validation["min_rows"] = max(1, min(int(validation.get("min_rows", 1000)), profile.rows // 2))
    _replace(
        validation,
        "max_null_share",
        {
            name: round(min(1.0, profile.column(name).nulls / profile.rows + 0.1), 2)
            for name in features
            if profile.column(name).nulls
        },
    )
    labels = profile.column(label)
    labelled = sum(labels.counts)
    _replace(
        validation,
        "label_share",
        {
            value: [
                _round(count / labelled / 2, up=False),
                _round(min(1.0, count / labelled * 1.5 + 0.05), up=True),
            ]
            for value, count in zip(labels.values, labels.counts, strict=True)
        },
    )
    _replace(
        validation,
        "ranges",
        {
            name: _proposed_range(profile.column(name))
            for name in features
            if profile.column(name).numeric
        },
    )
    document["train"]["positive_class"] = positive
    _replace(document["evaluate"], "directional", [])
    _replace(document["evaluate"], "cases", [])
    _replace(document["monitor"], "demo", None)
    with settings.params_file.open("w", encoding="utf-8") as handle:
        yaml.dump(document, handle)


def _replace(mapping: Any, key: str, value: object) -> None:  # noqa: ANN401 (ruamel's types)
    """``mapping[key] = value`` (``None``: delete it), keeping the comment lines after it.

    ruamel keeps the comment lines that follow a value (the next section's heading, say) on the
    value's last item; replacing the value would drop them, so they move to the new last item.
    """
    from ruamel.yaml.error import CommentMark
    from ruamel.yaml.tokens import CommentToken

    following = ""
    if key in mapping:
        holder, item = _last_item(mapping, key)
        token = (holder.ca.items.get(item) or [None] * 4)[2]
        if token is not None:
            own_line, _, following = token.value.partition("\n")
            token.value = own_line + "\n"
    if value is None:
        mapping.pop(key, None)
        if not mapping:
            return
        key = next(reversed(mapping))
    else:
        mapping[key] = _commented(value)
        if not value and key in mapping.ca.items:
            # An empty value is written inline (`key: []`): no block comments may follow the key.
            mapping.ca.items[key][3] = None
    if following:
        holder, item = _last_item(mapping, key)
        slots = holder.ca.items.setdefault(item, [None] * 4)
        if slots[2] is None:
            slots[2] = CommentToken("\n" + following, CommentMark(0), None)
        else:
            slots[2].value += following


def _commented(value: object) -> object:
    """`value` as ruamel's containers, which carry comments (plain ones cannot)."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, dict):
        return CommentedMap((key, _commented(item)) for key, item in value.items())
    if isinstance(value, list):
        return CommentedSeq(_commented(item) for item in value)
    return value


def _last_item(container: Any, key: object) -> tuple[Any, object]:  # noqa: ANN401
    """The deepest last item under ``container[key]``: where ruamel keeps what follows it."""
    while True:
        child = container[key]
        if isinstance(child, dict) and child:
            container, key = child, next(reversed(child))
        elif isinstance(child, list) and child:
            container, key = child, len(child) - 1
        else:
            return container, key


def _proposed_range(column: Column) -> list[float]:
    """Observed bounds, widened by half the span (from 0 when no value was negative)."""
    low, high = column.minimum or 0.0, column.maximum or 0.0
    span = (high - low) or 1.0
    lower = 0.0 if low >= 0 else low - span / 2
    return [_round(lower, up=False), _round(high + span / 2, up=True)]


def _round(value: float, *, up: bool) -> float:
    """`value` to four significant digits, rounded away from the data it bounds."""
    if value == 0:
        return 0.0
    scale = 10.0 ** (3 - math.floor(math.log10(abs(value))))
    return (math.ceil if up else math.floor)(value * scale) / scale


def _edit_pipeline(settings: Settings, raw_file: Path) -> None:
    """``dvc.yaml``: no generator stage; ``transform`` depends on the adopted file."""
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)  # the file's own style: indented lists
    path = settings.project_dir / "dvc.yaml"
    document = yaml.load(path.read_text(encoding="utf-8"))
    stages = document["stages"]
    stages.pop("data", None)
    transform = stages["transform"]
    raw = raw_file.relative_to(settings.project_dir).as_posix()
    transform["deps"] = [raw] + [
        dep for dep in transform["deps"] if not str(dep).startswith("data/raw/")
    ]
    transform.pop("params", None)
    with path.open("w", encoding="utf-8") as handle:
        yaml.dump(document, handle)
    lock = settings.project_dir / "dvc.lock"
    if lock.is_file():  # the demo's runs: the next `make all` records the adopted data's
        lock.unlink()
