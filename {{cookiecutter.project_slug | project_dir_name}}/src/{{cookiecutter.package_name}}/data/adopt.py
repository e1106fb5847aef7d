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
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..contract import ContractColumn, FeatureContract, Role
from ..errors import StepError
from .dbt_files import MART, contract_yml, mart_sql, sources_yml, staging_sql
from .ingest import RawDataError, raw_tables
from .profile import MAX_CATEGORIES, NAME, Column, Profile, profile_file
from .versioning import DataVersioningError, run_dvc

if TYPE_CHECKING:
    from ..config import Settings

logger = logging.getLogger(__name__)

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
class Adopted:
    """What adopting wrote, and what is left to decide."""

    profile: Profile
    raw_file: Path
    written: list[Path]
    removed: list[Path]
    positive_class: str
    features: list[str]
    sensitive: list[str]


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
        RawDataError: when the file is missing or cannot be read (with the line, for a CSV).
        AdoptError: when the roles are refused, DVC is not set up, or another file of that
            name is already in ``data/raw/`` (nothing is overwritten).
    """
    if not (settings.project_dir / ".dvc").is_dir():
        raise AdoptError("DVC is not set up in this project: run `make setup` first")
    profile = profile_file(file)
    check_roles(profile, id_column, label, sensitive)
    raw_file = settings.raw_dir / f"{profile.table}{file.suffix.lower()}"
    demo = _demo_paths(settings)
    copying = raw_file.resolve() != file.resolve()
    if copying and raw_file.exists() and raw_file not in demo:
        raise AdoptError(
            f"{raw_file} already exists: move it away, or adopt it in place "
            f"(FILE={raw_file.relative_to(settings.project_dir)})"
        )
    # The demo goes first (its generator stage, then its files: a file of yours may take the
    # name of one of its tables); git restores them, which is why the README commits first.
    replaced = _replaced_paths(settings)
    _edit_pipeline(settings, raw_file)
    removed = [path for path in replaced if path.exists() and path.resolve() != file.resolve()]
    for path in removed:
        path.unlink()
    if copying:
        raw_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, raw_file)
    try:
        run_dvc(settings, "add", str(raw_file.relative_to(settings.project_dir)))
    except DataVersioningError:
        if copying:
            raw_file.unlink()  # never leave an untracked copy behind
        raise
    models = settings.transform_dir / "models"
    features = [c.name for c in profile.columns if c.name not in {id_column, label, *sensitive}]
    written = [
        _write(models / "sources.yml", sources_yml(profile, raw_file.name, id_column)),
        _write(models / "staging" / f"stg_{profile.table}.sql", staging_sql(profile)),
        _write(models / "marts" / f"{MART}.sql", mart_sql(profile, id_column)),
        _write(
            models / "marts" / f"{MART}.yml",
            contract_yml(profile, _roles(profile, id_column, label, sensitive)),
        ),
    ]
    positive = _minority(profile.column(label))
    _edit_params(settings, profile, label, features, positive)
    written += [settings.params_file, settings.project_dir / "dvc.yaml"]
    return Adopted(profile, raw_file, written, removed, positive, features, sensitive)


def _demo_paths(settings: Settings) -> list[Path]:
    return [settings.transform_dir / name for name in DEMO_FILES] + [
        settings.raw_dir / name for name in DEMO_RAW
    ]


def _replaced_paths(settings: Settings) -> list[Path]:
    """What the new table replaces: the demo's files, and a table adopted before's staging models.

    The earlier table's raw file stays, still tracked (``uv run dvc remove`` drops it).
    """
    staging = settings.transform_dir / "models" / "staging"
    try:
        declared = raw_tables(settings.transform_dir)
    except (OSError, RawDataError):  # no dbt sources yet: nothing adopted before
        declared = []
    adopted = [staging / f"stg_{table.name}.sql" for table in declared]
    return list(dict.fromkeys(_demo_paths(settings) + adopted))  # once each, in order


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


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
    labels = profile.column(label)
    labelled = sum(labels.counts)  # validation sees these rows only
    validation["min_rows"] = max(1, min(int(validation.get("min_rows", 1000)), labelled // 2))
    _replace(
        validation,
        "max_null_share",
        {
            name: round(min(1.0, profile.column(name).nulls / profile.rows + 0.1), 2)
            for name in features
            if profile.column(name).nulls
        },
    )
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
    lower = _round(0.0 if low >= 0 else low - span / 2, up=False)
    upper = _round(high + span / 2, up=True)
    if not column.numeric or column.dbt_type == "double precision":
        return [lower, upper]
    return [math.floor(lower), math.ceil(upper)]  # whole numbers: whole bounds


def _round(value: float, *, up: bool) -> float:
    """`value` to four significant digits, rounded away from the data it bounds.

    A whole number comes back as an ``int``, so params.yaml says ``0``, not ``0.0``.
    """
    if value == 0:
        return 0
    scale = 10.0 ** (3 - math.floor(math.log10(abs(value))))
    rounded = (math.ceil if up else math.floor)(value * scale) / scale
    return int(rounded) if rounded.is_integer() else rounded


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
