"""The answers' validation: unit tests on the hook module, and bad answers through cookiecutter."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.prompt import prompt_for_config

from .conftest import TEMPLATE_DIR

sys.path.insert(0, str(TEMPLATE_DIR / "hooks"))
import template_hooks  # the hooks folder is not a package: cookiecutter runs its scripts

VALID = {
    "project_name": "Customer Quality",
    "project_slug": "customer-quality",
    "package_name": "customer_quality",
    "description": "Classify customers.",
    "author_name": "Data Science Team",
    "author_email": "ds@example.com",
    "python_version": "3.11",
    "ci_provider": "github",
    "license": "MIT",
}


DEFAULTS = json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text(encoding="utf-8"))


def default_answers(cookiecutter_json: dict[str, Any]) -> dict[str, Any]:
    """The answers `--no-input` gives for `cookiecutter_json` (derived ones rendered)."""
    sys.path.insert(0, str(TEMPLATE_DIR))  # cookiecutter loads `_extensions` from the template
    try:
        context = {"cookiecutter": OrderedDict(cookiecutter_json)}
        return dict(prompt_for_config(context, no_input=True))
    finally:
        sys.path.remove(str(TEMPLATE_DIR))


def test_the_defaults_are_valid() -> None:
    answers = default_answers(DEFAULTS)
    assert answers["project_slug"] == "customer-quality"
    assert answers["package_name"] == "customer_quality"
    assert template_hooks.validate_answers(answers) == []
    assert template_hooks.validate_answers(VALID) == []


@pytest.mark.parametrize(
    ("changed", "fields"),
    [
        # The slug and the package name are derived from the name: both inherit its flaw.
        ({"project_name": "Kunden Qualität"}, ["project_slug", "package_name"]),
        ({"package_name": "customer-quality"}, ["package_name"]),
        ({"author_email": "nobody"}, ["author_email"]),
    ],
)
def test_a_bad_default_in_cookiecutter_json_would_be_caught(
    changed: dict[str, str], fields: list[str]
) -> None:
    errors = template_hooks.validate_answers(default_answers({**DEFAULTS, **changed}))
    assert [error.field for error in errors] == fields


def test_every_choice_is_one_the_hooks_accept() -> None:
    defaults = DEFAULTS
    # Every choice offered by cookiecutter.json is one the hook accepts, and the other way round.
    assert tuple(defaults["python_version"]) == template_hooks.SUPPORTED_PYTHON_VERSIONS
    assert tuple(defaults["ci_provider"]) == template_hooks.CI_PROVIDERS
    assert tuple(defaults["license"]) == template_hooks.LICENSES
    assert set(defaults["__prompts__"]) == {k for k in defaults if not k.startswith("_")}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("project_slug", "Customer-Quality", "must start with a lowercase letter"),
        ("project_slug", "customer--quality", "single hyphens"),
        ("project_slug", "customer-", "single hyphens"),
        ("project_slug", "a" * 31, "31 characters, more than 30"),
        ("package_name", "customer-quality", "not a valid Python identifier"),
        ("package_name", "None", "is a Python keyword"),
        ("package_name", "lambda", "is a Python keyword"),
        ("package_name", "_private", "must start with a lowercase letter"),
        ("package_name", "great_expectations", "would shadow"),
        ("package_name", "os", "would shadow"),
        ("description", "   ", "is empty"),
        ("author_name", "", "is empty"),
        ("author_email", "ds@localhost", "is not an email address"),
        ("author_email", "two@@example.com", "is not an email address"),
        ("ci_provider", "jenkins", "is not one of github, gitlab, none"),
        ("license", "GPL", "is not one of MIT"),
    ],
)
def test_each_rule_names_the_field(field: str, value: str, message: str) -> None:
    errors = template_hooks.validate_answers({**VALID, field: value})
    assert [error.field for error in errors] == [field]
    assert message in errors[0].problem
    assert errors[0].example
    assert template_hooks.validate_answers({**VALID, field: errors[0].example}) == []


def test_the_message_lists_every_problem_and_says_nothing_was_written() -> None:
    errors = template_hooks.validate_answers({**VALID, "package_name": "1x", "author_email": "x"})
    message = template_hooks.format_errors(errors)
    assert "nothing was written" in message
    assert "package_name: '1x'" in message
    assert "author_email: 'x'" in message


# Bad answers given to the real cookiecutter command: each is refused with a message that names
# the field, the command exits non-zero, and the output folder is left exactly as it was (empty).
BAD_ANSWERS = [
    ({"project_slug": "my project"}, "project_slug: 'my project'"),
    ({"project_slug": "kundenqualität"}, "project_slug: 'kundenqualität' has non-ASCII"),
    ({"project_name": ""}, "project_name: is empty"),
    ({"project_slug": ""}, "project_slug: is empty"),
    ({"project_slug": "2fast"}, "project_slug: '2fast' must start with a lowercase letter"),
    ({"project_slug": "x" * 31}, "is 31 characters, more than 30"),
    ({"package_name": "2fast"}, "package_name: '2fast' is not a valid Python identifier"),
    ({"package_name": "class"}, "package_name: 'class' is a Python keyword"),
    ({"package_name": "match"}, "package_name: 'match' is a Python keyword"),
    ({"package_name": "café"}, "package_name: 'café' is not a valid Python identifier"),
    ({"package_name": "CustomerQuality"}, "package_name: 'CustomerQuality' must start"),
    ({"package_name": "mlflow"}, "package_name: 'mlflow' would shadow"),
    ({"package_name": "dbt"}, "package_name: 'dbt' would shadow"),
    ({"package_name": "dagster"}, "package_name: 'dagster' would shadow"),
    ({"package_name": "sklearn"}, "package_name: 'sklearn' would shadow"),
    ({"package_name": "pandas"}, "package_name: 'pandas' would shadow"),
    ({"package_name": "json"}, "package_name: 'json' would shadow"),
    ({"author_email": "not-an-email"}, "author_email: 'not-an-email' is not an email address"),
    ({"project_slug": "../escape"}, "project_slug: '../escape'"),
    ({"project_slug": "a/b"}, "project_slug: 'a/b'"),
    ({"project_slug": "/cookiecutter-mlops-abs"}, "project_slug: '/cookiecutter-mlops-abs'"),
    ({"python_version": "3.10"}, "3.10 provided for choice variable python_version"),
    ({"ci_provider": "jenkins"}, "jenkins provided for choice variable ci_provider"),
]


@pytest.mark.parametrize(("answers", "message"), BAD_ANSWERS, ids=[str(a) for a, _ in BAD_ANSWERS])
def test_a_bad_answer_is_refused_and_leaves_nothing(
    tmp_path: Path, answers: dict[str, str], message: str
) -> None:
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    before = set(tmp_path.rglob("*"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            str(TEMPLATE_DIR),
            "--output-dir",
            str(output_dir),
            *(f"{key}={value}" for key, value in answers.items()),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
    assert set(tmp_path.rglob("*")) == before
    assert not Path("/cookiecutter-mlops-abs").exists()


def test_a_template_given_as_a_relative_path_renders(tmp_path: Path) -> None:
    # `cookiecutter .` from the template folder (what `make demo` runs): the hooks run from the
    # new project folder, so they must not rely on cookiecutter's relative `_repo_dir`.
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", ".", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=TEMPLATE_DIR,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "customer-quality" / ".cruft.json").read_text("utf-8"))
    assert record["template"] == str(TEMPLATE_DIR)  # absolute: cruft runs from the project


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Template Tests", "-c", "user.email=tests@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def cruft(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "cruft"), *args]  # installed beside pytest
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def test_a_project_rendered_from_a_relative_path_is_updated_by_cruft(tmp_path: Path) -> None:
    template = tmp_path / "cookiecutter-mlops"
    shutil.copytree(
        TEMPLATE_DIR,
        template,
        ignore=shutil.ignore_patterns(".git", ".venv", "*_cache", "__pycache__"),
    )
    git("init", "--quiet", "--initial-branch=main", cwd=template)
    git("add", "--all", cwd=template)
    git("commit", "--quiet", "--message=template v1", cwd=template)
    subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "cookiecutter-mlops", "-o", "out"],
        cwd=tmp_path,
        capture_output=True,
        check=True,
    )
    project = tmp_path / "out" / "customer-quality"
    record = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    assert record["template"] == str(template)
    assert record["commit"] == git("rev-parse", "HEAD", cwd=template)
    assert cruft("check", cwd=project).returncode == 0
    diff = cruft("diff", "--exit-code", cwd=project)
    assert diff.returncode == 0, diff.stdout + diff.stderr
    git("add", "--all", cwd=project)
    git("commit", "--quiet", "--no-verify", "--message=the project as rendered", cwd=project)

    readme = template / "{{cookiecutter.project_slug | project_dir_name}}" / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\nA line of template v2.\n", "utf-8")
    git("commit", "--quiet", "--all", "--message=template v2", cwd=template)
    assert cruft("check", cwd=project).returncode != 0
    update = cruft("update", "--skip-apply-ask", cwd=project)  # apply without asking
    assert update.returncode == 0, update.stdout + update.stderr
    assert (project / "README.md").read_text(encoding="utf-8").endswith("A line of template v2.\n")
    assert cruft("check", cwd=project).returncode == 0
    changed = [line.split()[-1] for line in git("status", "--porcelain", cwd=project).splitlines()]
    assert changed == [".cruft.json", "README.md"]  # the new commit, and the change: nothing else
