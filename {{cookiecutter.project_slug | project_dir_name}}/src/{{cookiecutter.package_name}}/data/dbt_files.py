"""The dbt files that make an adopted table the project's data: source, staging model, mart.

Written as text, not dumped YAML, so that they read like the demo's hand-written ones. This file
is itself rendered once by cookiecutter, so dbt's Jinja braces are spelt out (:func:`_jinja`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..contract import Role
    from .profile import Profile

MART = "features"
"""The feature table's name in an adopted project (the contract is found by its roles)."""


def _jinja(expression: str) -> str:
    """A dbt Jinja expression (spelt out: this file is itself rendered once by cookiecutter)."""
    return "{" * 2 + f" {expression} " + "}" * 2


def _flow(body: str) -> str:
    """A YAML flow mapping ``{body}``."""
    return "{" + body + "}"


def sources_yml(profile: Profile, file_name: str, id_column: str) -> str:
    """The dbt source of the raw table: its file, columns and types, and the id's tests."""
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


def staging_sql(profile: Profile) -> str:
    """The staging model: the raw table, typed; where a team cleans or derives columns."""
    source = _jinja(f"source('raw', '{profile.table}')")
    return (
        f"-- {profile.table} as it arrived, typed. Clean or derive columns here; the mart picks "
        f"them up.\nselect\n{_casts(profile)}\nfrom {source}\n"
    )


def mart_sql(profile: Profile, id_column: str) -> str:
    """The feature mart: every column of the staging model, cast to its contract type."""
    staging = _jinja(f"ref('stg_{profile.table}')")
    return (
        f"-- The feature table: one row per {id_column}, what the model reads and the label it "
        "learns\n-- (empty while the outcome is not known: such rows are scored, never trained "
        f"on).\n-- Columns and types are fixed by the contract in {MART}.yml: change both "
        f"together.\nselect\n{_casts(profile)}\nfrom {staging}\n"
    )


def contract_yml(profile: Profile, roles: dict[str, Role]) -> str:
    """The mart's properties: its enforced contract, a role per column, tests from the data."""
    id_column = next(name for name, role in roles.items() if role == "id")
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
