"""The logic behind the template's hooks, importable so that it can be unit-tested.

Cookiecutter renders ``pre_gen_project.py`` and ``post_gen_project.py`` with Jinja and runs them
in a subprocess; those two files only pass the answers in and call :func:`validate_answers`,
:func:`prune` and :func:`finish` from here.
"""

from __future__ import annotations

import json
import keyword
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUPPORTED_PYTHON_VERSIONS = ("3.11", "3.12")
CI_PROVIDERS = ("github", "gitlab", "none")
LICENSES = ("MIT", "Apache-2.0", "BSD-3-Clause", "Proprietary")

# Every rule lives here once: (field, pattern, what it means, a valid example).
SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# The slug names Kubernetes objects, most with a prefix or a suffix, and a Service's name is at
# most 63 characters: the longest is the Dagster chart's code server, released as `dagster`,
# `dagster-dagster-user-deployments-<slug>` (tests/test_deploy.py checks them all at this length).
MAX_SLUG_LENGTH = 30
PACKAGE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")

# Import names the generated project depends on (or that Python ships): a package with one of
# these names would shadow the real one and break the project in confusing ways.
SHADOWED_NAMES = frozenset(
    {
        "dagster",
        "dagster_dbt",
        "dbt",
        "duckdb",
        "dvc",
        "fastapi",
        "great_expectations",
        "gx",
        "mlflow",
        "numpy",
        "pandas",
        "pydantic",
        "pydantic_settings",
        "pytest",
        "scipy",
        "sklearn",
        "test",
        "tests",
        "typer",
        "uvicorn",
        "yaml",
    }
)
STDLIB_NAMES = sys.stdlib_module_names

# The files that belong to one answer each; post-gen removes those of the answers not chosen.
CI_FILES = {"github": [".github"], "gitlab": [".gitlab-ci.yml"], "none": []}
LICENSE_FILES = {name: f"licenses/{name}.txt" for name in LICENSES}

# The answer file: cruft's format, so `cruft update` / `cruft diff` work on generated projects.
ANSWERS_FILE = ".cruft.json"


@dataclass(frozen=True)
class AnswerError:
    """One refused answer: which field, what is wrong with it, and an answer that would work."""

    field: str
    problem: str
    example: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem} (for example: {self.example!r})"


def _check_slug(slug: str) -> list[AnswerError]:
    example = "customer-quality"
    if not slug:
        return [AnswerError("project_slug", "is empty", example)]
    if not slug.isascii():
        return [AnswerError("project_slug", f"{slug!r} has non-ASCII characters", example)]
    if not SLUG_PATTERN.match(slug):
        return [
            AnswerError(
                "project_slug",
                f"{slug!r} must start with a lowercase letter and hold only lowercase letters, "
                "digits and single hyphens between them",
                example,
            )
        ]
    if len(slug) > MAX_SLUG_LENGTH:
        return [
            AnswerError(
                "project_slug",
                f"{slug!r} is {len(slug)} characters, more than {MAX_SLUG_LENGTH}: it names the "
                "Kubernetes objects of deploy/, whose names are limited",
                example,
            )
        ]
    return []


def _check_package(name: str) -> list[AnswerError]:
    example = "customer_quality"
    if not name:
        return [AnswerError("package_name", "is empty", example)]
    if not name.isascii() or not name.isidentifier():
        return [AnswerError("package_name", f"{name!r} is not a valid Python identifier", example)]
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return [AnswerError("package_name", f"{name!r} is a Python keyword", example)]
    if not PACKAGE_PATTERN.match(name):
        return [
            AnswerError(
                "package_name",
                f"{name!r} must start with a lowercase letter and hold only lowercase letters, "
                "digits and underscores (PEP 8)",
                example,
            )
        ]
    if name in SHADOWED_NAMES or name in STDLIB_NAMES:
        return [
            AnswerError(
                "package_name",
                f"{name!r} would shadow the {name!r} module that the project imports",
                f"{name}_model",
            )
        ]
    return []


def validate_answers(answers: dict[str, Any]) -> list[AnswerError]:
    """Check every answer; return what is wrong, in the order the questions are asked."""
    errors: list[AnswerError] = []
    if not str(answers.get("project_name", "")).strip():
        errors.append(AnswerError("project_name", "is empty", "Customer Quality"))
    errors += _check_slug(str(answers.get("project_slug", "")))
    errors += _check_package(str(answers.get("package_name", "")))
    if not str(answers.get("description", "")).strip():
        errors.append(AnswerError("description", "is empty", "Classify customers as good or bad."))
    if not str(answers.get("author_name", "")).strip():
        errors.append(AnswerError("author_name", "is empty", "Data Science Team"))
    email = str(answers.get("author_email", ""))
    if not EMAIL_PATTERN.match(email):
        errors.append(
            AnswerError("author_email", f"{email!r} is not an email address", "team@example.com")
        )
    for field, allowed in (
        ("python_version", SUPPORTED_PYTHON_VERSIONS),
        ("ci_provider", CI_PROVIDERS),
        ("license", LICENSES),
    ):
        value = str(answers.get(field, ""))
        if value not in allowed:
            errors.append(
                AnswerError(field, f"{value!r} is not one of {', '.join(allowed)}", allowed[0])
            )
    return errors


def format_errors(errors: list[AnswerError]) -> str:
    """The message a person sees when answers are refused."""
    lines = ["cookiecutter-mlops: the answers below cannot make a project; nothing was written."]
    lines += [f"  - {error}" for error in errors]
    lines.append("Run cookiecutter again with these answers fixed.")
    return "\n".join(lines)


def prune(project_dir: Path, answers: dict[str, Any]) -> None:
    """Remove the files that belong to options that are off, and place the chosen licence."""
    chosen_ci = answers["ci_provider"]
    for provider, paths in CI_FILES.items():
        if provider != chosen_ci:
            for relative in paths:
                _remove(project_dir / relative)

    licenses_dir = project_dir / "licenses"
    chosen_license = licenses_dir / Path(LICENSE_FILES[answers["license"]]).name
    if answers["license"] != "Proprietary":
        shutil.move(chosen_license, project_dir / "LICENSE")
    _remove(licenses_dir)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def template_commit(repo_dir: Path) -> str | None:
    """The template's git commit, when it is rendered from a git checkout (for `cruft update`)."""
    if not (repo_dir / ".git").exists():
        return None
    result = subprocess.run(
        ["git", "-C", str(repo_dir), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def template_location(template: str, template_dir: Path) -> str:
    """Where the template came from, as cruft must find it again from the project's folder.

    A remote template (``https://...``, ``git@...``, ``gh:...``) is kept as given. A local one is
    given relative to wherever cookiecutter ran (``.``, ``../cookiecutter-mlops``) and hooks run
    in the new project, so it is recorded as the template's absolute folder instead.
    """
    if "://" in template or template.startswith(("git@", "gh:", "gl:", "bb:")):
        return template
    return str(template_dir.resolve())


def record_answers(project_dir: Path, context: dict[str, Any], template_dir: Path) -> None:
    """Write the answers in cruft's format so the project can be updated from a newer template.

    Args:
        project_dir: The new project.
        context: Cookiecutter's context (the answers and its private ``_`` keys).
        template_dir: The template's folder on this machine (a clone, for a remote template).
    """
    template = template_location(str(context.get("_template", "")), template_dir)
    # Answers plus `_template`, as cruft keeps them; the other private keys are machine-specific.
    recorded = {
        key: value
        for key, value in context.items()
        if not key.startswith("_") or key in ("_template", "_copy_without_render")
    }
    recorded["_template"] = template
    commit = template_commit(template_dir)
    recorded["_commit"] = commit
    payload = {
        "template": template,
        "commit": commit,
        "checkout": context.get("_checkout"),
        "context": {"cookiecutter": recorded},
        "directory": None,
        # cruft manages .cruft.json itself; the others are what the project makes, not the template.
        "skip": [".cruft.json", ".git", "data", "mlruns", "mlflow.db"],
    }
    (project_dir / ANSWERS_FILE).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def git_init(project_dir: Path) -> None:
    """Make the project a git repository on `main` and commit nothing: the first commit is yours."""
    if (project_dir / ".git").exists() or shutil.which("git") is None:
        return
    subprocess.run(
        ["git", "init", "--quiet", "--initial-branch=main", str(project_dir)],
        check=True,
        capture_output=True,
    )


def finish(project_dir: Path, context: dict[str, Any], template_dir: Path) -> None:
    """Everything the post-gen hook does, in order."""
    prune(project_dir, context)
    record_answers(project_dir, context, template_dir)
    git_init(project_dir)
